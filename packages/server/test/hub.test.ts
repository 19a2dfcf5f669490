/**
 * The Hub on its own, with fake Subscribers: the session, user and channel indexes, their
 * counts, and fan-out (one encoding per broadcast, the same Buffer to every subscriber;
 * join/leave only to subscribers that asked for them).
 */
import assert from 'node:assert/strict';
import { jsonCodec } from '../src/protocol/json-codec.js';
import { describe, it } from 'node:test';
import { Hub } from '../src/client/hub.js';
import type { SubState, Subscriber } from '../src/client/subscriber.js';
import { encodeJoinPush, encodeLeavePush, encodePublicationPush } from '../src/protocol/encode.js';
import { EMPTY_PROFILE, profileOf, type ClientProfile } from '../src/protocol/publication-variants.js';
import { compileFilter, matches } from '../src/protocol/tags-filter.js';
import { asRaw, type ClientInfo, type Publication } from '../src/protocol/types.js';

/** FakeSub records what the hub hands it. */
class FakeSub implements Subscriber {
  static #n = 0;
  readonly id = `client-${++FakeSub.#n}`;
  readonly codec = jsonCodec;
  profile: ClientProfile = EMPTY_PROFILE;
  readonly user: string;
  readonly pubs: Array<{ state: SubState; pub: Publication; frame: Buffer; epoch: string | undefined }> = [];
  readonly events: Array<{ state: SubState; frame: Buffer }> = [];

  constructor(user: string) {
    this.user = user;
  }

  deliverPublication(state: SubState, pub: Publication, frame: Buffer, epoch?: string): boolean {
    // A subscription takes what its tags filter lets through, as a session's does.
    if (state.filter !== undefined && !matches(state.filter, pub.tags)) return false;
    this.pubs.push({ state, pub, frame, epoch });
    return true;
  }

  deliverEvent(state: SubState, frame: Buffer): void {
    this.events.push({ state, frame });
  }
}

function subState(channel: string, joinLeave = false): SubState {
  return {
    channel,
    joinLeave,
    positioned: false,
    recoverable: false,
    presence: false,
    joinLeaveEnabled: joinLeave,
    buffer: undefined,
    offset: 0,
    epoch: '',
    expireAt: 0,
    chanInfo: undefined,
    subRefreshProxy: undefined,
    refreshing: false,
    filter: undefined,
    serverFilter: undefined,
  };
}

describe('Hub: sessions and users', () => {
  it('indexes one session per user', () => {
    const hub = new Hub<FakeSub>();
    const a = new FakeSub('alice');
    hub.addSession(a);
    assert.equal(hub.session(a.id), a);
    assert.equal(hub.userConnectionCount('alice'), 1);
    assert.deepEqual([...hub.userSessions('alice')], [a]);
    assert.equal(hub.userConnectionCount('nobody'), 0);
    assert.equal(hub.userSessions('nobody').size, 0);
    assert.equal(hub.numClients, 1);
    assert.equal(hub.numUsers, 1);
  });

  it('indexes several sessions of one user, and back to one as they leave', () => {
    const hub = new Hub<FakeSub>();
    const [a1, a2, a3] = [new FakeSub('alice'), new FakeSub('alice'), new FakeSub('alice')];
    const b = new FakeSub('bob');
    for (const s of [a1, a2, a3, b]) hub.addSession(s);
    hub.addSession(a2); // again: no double count
    assert.equal(hub.userConnectionCount('alice'), 3);
    assert.deepEqual(new Set(hub.userSessions('alice')), new Set([a1, a2, a3]));
    assert.equal(hub.numClients, 4);
    assert.equal(hub.numUsers, 2);
    hub.removeSession(a1);
    hub.removeSession(a1); // again: no-op
    assert.equal(hub.userConnectionCount('alice'), 2);
    hub.removeSession(a3);
    assert.equal(hub.userConnectionCount('alice'), 1);
    assert.deepEqual([...hub.userSessions('alice')], [a2]);
    hub.removeSession(a2);
    assert.equal(hub.userConnectionCount('alice'), 0);
    assert.equal(hub.session(a2.id), undefined);
    assert.equal(hub.numClients, 1);
    assert.equal(hub.numUsers, 1);
    assert.deepEqual([...hub.sessions()], [b]);
  });

  it('removeSession ignores a session it does not hold under that id', () => {
    const hub = new Hub<FakeSub>();
    const a = new FakeSub('alice');
    hub.addSession(a);
    hub.removeSession(new FakeSub('alice'));
    assert.equal(hub.userConnectionCount('alice'), 1);
    assert.equal(hub.numClients, 1);
  });

  it('tracks connecting sessions until they connect or close', () => {
    const hub = new Hub<FakeSub>();
    const a = new FakeSub('a');
    const b = new FakeSub('b');
    hub.addConnecting(a);
    hub.addConnecting(b);
    assert.deepEqual(new Set(hub.connecting()), new Set([a, b]));
    assert.equal(hub.numClients, 0, 'connecting sessions are not clients yet');
    hub.addSession(a);
    hub.removeConnecting(b);
    assert.deepEqual([...hub.connecting()], []);
    assert.equal(hub.numClients, 1);
  });
});

describe('Hub: subscriptions', () => {
  it('addSub tells the first subscription of a channel, removeSub the last', () => {
    const hub = new Hub<FakeSub>();
    const a = new FakeSub('a');
    const b = new FakeSub('b');
    assert.equal(hub.addSub('ch', a, subState('ch')), true, 'first on this node');
    assert.equal(hub.addSub('ch', b, subState('ch')), false);
    assert.equal(hub.addSub('ch', b, subState('ch')), false, 'again: replaces its state');
    assert.equal(hub.numSubs, 2);
    assert.equal(hub.removeSub('ch', a), false, 'b is still there');
    assert.equal(hub.removeSub('ch', a), false, 'not subscribed any more');
    assert.equal(hub.removeSub('other', a), false, 'unknown channel');
    assert.equal(hub.numSubs, 1);
    assert.equal(hub.removeSub('ch', b), true, 'the last one');
    assert.equal(hub.hasSubscribers('ch'), false);
    assert.equal(hub.numSubs, 0);
    assert.equal(hub.numChannels, 0);
  });

  it('counts clients, users, channels and subscriptions', () => {
    const hub = new Hub<FakeSub>();
    const a1 = new FakeSub('alice');
    const a2 = new FakeSub('alice');
    const b = new FakeSub('bob');
    for (const s of [a1, a2, b]) hub.addSession(s);
    hub.addSub('x', a1, subState('x'));
    hub.addSub('x', b, subState('x'));
    hub.addSub('y', a2, subState('y'));
    hub.addSub('y', a1, subState('y'));
    hub.addSub('z', b, subState('z'));
    assert.equal(hub.numClients, 3);
    assert.equal(hub.numUsers, 2);
    assert.equal(hub.numChannels, 3);
    assert.equal(hub.numSubs, 5);
    assert.deepEqual(
      new Map(hub.channels()),
      new Map([
        ['x', 2],
        ['y', 2],
        ['z', 1],
      ]),
    );
    const ys = [...hub.subscriptions('y')];
    assert.deepEqual(
      ys.map(([s, st]) => [s, st.channel]),
      [
        [a2, 'y'],
        [a1, 'y'],
      ],
    );
    assert.deepEqual([...hub.subscriptions('none')], []);
  });
});

describe('Hub: fan-out', () => {
  it('hands each subscriber the variant its profile selects, encoded once per variant, and counts them', () => {
    const hub = new Hub<FakeSub>();
    const old = profileOf('android', '5.1.9');
    const fresh = profileOf('android', '5.2', ['animated_stickers']);
    const subs = [old, fresh, old, EMPTY_PROFILE, fresh].map((p, i) => {
      const s = new FakeSub(`u${i}`);
      s.profile = p;
      hub.addSub('ch', s, subState('ch'));
      return s;
    });
    const counts: number[][] = [];
    hub.onVariantDeliveries = (c) => counts.push([...c]);
    const pub: Publication = {
      offset: 1,
      data: asRaw({ sticker: 'anim' }),
      variants: [
        { when: { lacks: 'animated_stickers', version_below: '5.2' }, data: asRaw({ text: 'please upgrade' }) },
        { when: { name: 'ios' }, data: asRaw('never') },
      ],
    };
    assert.equal(hub.broadcastPublication('ch', pub, 'e'), 5);
    const got = subs.map((s) => s.pubs[0]!.pub.data);
    const upgrade = asRaw({ text: 'please upgrade' });
    assert.deepEqual(got, [upgrade, pub.data, upgrade, upgrade, pub.data], 'a client without a version is the oldest');
    for (const s of subs) assert.equal(s.pubs[0]!.pub.variants, undefined, 'a client never sees the other variants');
    assert.equal(subs[0]!.pubs[0]!.frame, subs[2]!.pubs[0]!.frame, 'one encoding per variant');
    assert.equal(subs[1]!.pubs[0]!.frame, subs[4]!.pubs[0]!.frame);
    assert.deepEqual(counts, [[2, 3, 0]]);
  });

  it('counts a variant delivery only when the tags filter of the subscription lets the publication through', () => {
    const hub = new Hub<FakeSub>();
    const limits = { maxDepth: 8, maxNodes: 64, maxValues: 128, maxValueLength: 256 };
    const eu = { ...subState('ch'), filter: compileFilter({ key: 'region', cmp: 'eq', val: 'eu' }, limits) };
    const us = { ...subState('ch'), filter: compileFilter({ key: 'region', cmp: 'eq', val: 'us' }, limits) };
    hub.addSub('ch', new FakeSub('a'), eu);
    hub.addSub('ch', new FakeSub('b'), us);
    const counts: number[][] = [];
    hub.onVariantDeliveries = (c) => counts.push([...c]);
    const v = [{ when: { has: 'x' }, data: asRaw(1) }];
    hub.broadcastPublication('ch', { offset: 0, data: asRaw(0), tags: { region: 'eu' }, variants: v });
    assert.deepEqual(counts, [[1, 0]]);
  });

  it('broadcastPublication encodes once and hands the same Buffer to every subscriber', () => {
    const hub = new Hub<FakeSub>();
    const subs = [new FakeSub('a'), new FakeSub('b'), new FakeSub('c')];
    const states = subs.map(() => subState('ch'));
    subs.forEach((s, i) => hub.addSub('ch', s, states[i] as SubState));
    const other = new FakeSub('d');
    hub.addSub('other', other, subState('other'));
    const pub: Publication = { offset: 7, data: asRaw({ hello: 'world' }) };
    assert.equal(hub.broadcastPublication('ch', pub, 'epoch-1'), 3);
    const frame = subs[0]?.pubs[0]?.frame as Buffer;
    assert.equal(frame.toString(), encodePublicationPush('ch', pub));
    subs.forEach((s, i) => {
      assert.equal(s.pubs.length, 1);
      const got = s.pubs[0];
      assert.equal(got?.frame, frame, 'the very same Buffer');
      assert.equal(got?.pub, pub);
      assert.equal(got?.state, states[i], 'with its own subscription state');
      assert.equal(got?.epoch, 'epoch-1');
    });
    assert.equal(other.pubs.length, 0, 'other channels get nothing');
    assert.equal(hub.broadcastPublication('nobody-here', pub), 0);
    // A second broadcast is a new frame (encoded per publication).
    hub.broadcastPublication('ch', { offset: 8, data: asRaw(2) });
    assert.notEqual(subs[0]?.pubs[1]?.frame, frame);
    assert.equal(subs[0]?.pubs[1]?.frame, subs[2]?.pubs[1]?.frame);
  });

  it('join and leave go only to subscribers that asked for join/leave, as one shared frame', () => {
    const hub = new Hub<FakeSub>();
    const wants = [new FakeSub('a'), new FakeSub('b')];
    const quiet = new FakeSub('c');
    for (const s of wants) hub.addSub('ch', s, subState('ch', true));
    hub.addSub('ch', quiet, subState('ch', false));
    const info: ClientInfo = { user: 'joiner', client: 'cid' };
    hub.broadcastJoin('ch', info);
    hub.broadcastLeave('ch', info);
    hub.broadcastJoin('nobody-here', info);
    assert.equal(quiet.events.length, 0);
    for (const s of wants) assert.equal(s.events.length, 2);
    const [join, leave] = [wants[0]?.events[0]?.frame, wants[0]?.events[1]?.frame];
    assert.equal(join?.toString(), encodeJoinPush('ch', info));
    assert.equal(leave?.toString(), encodeLeavePush('ch', info));
    assert.equal(wants[1]?.events[0]?.frame, join, 'the same join Buffer');
    assert.equal(wants[1]?.events[1]?.frame, leave, 'the same leave Buffer');
    assert.equal(quiet.pubs.length, 0);
  });
});
