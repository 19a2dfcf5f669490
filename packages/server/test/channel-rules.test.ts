import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ChannelRules, hasSpaceOrControl } from '../src/channel-rules.js';
import { loadConfig } from '../src/config/load.js';
import { ProtocolError } from '../src/protocol/codes.js';

const config = loadConfig({
  object: {
    client: { insecure: true },
    http_api: { insecure: true },
    channel: {
      max_length: 32,
      namespaces: [
        { name: 'chat', history_size: 10, history_ttl: '60s' },
        { name: 'dm', allow_user_limited_channels: true },
        { name: 'room', channel_regex: '^[a-z0-9]+$' },
        { name: 'meta', history_size: 1, history_ttl: '1s', history_meta_ttl: '5m' },
      ],
    },
  },
});
const rules = new ChannelRules(config.channel);

function codeOf(fn: () => unknown): number | undefined {
  try {
    fn();
  } catch (err) {
    if (err instanceof ProtocolError) return err.code;
    throw err;
  }
  return undefined;
}

describe('ChannelRules', () => {
  it('resolves namespaces and channels without one', () => {
    const rc = rules.resolve('chat:lobby');
    assert.equal(rc.namespace, 'chat');
    assert.equal(rc.name, 'lobby');
    assert.equal(rc.options.history_size, 10);
    assert.equal(rules.resolve('lobby').namespace, '');
  });

  it('recognises private channels and their namespace', () => {
    const rc = rules.resolve('$chat:secret');
    assert.equal(rc.isPrivate, true);
    assert.equal(rc.namespace, 'chat');
  });

  it('answers 102 for an unknown namespace and 107 for invalid names', () => {
    assert.equal(
      codeOf(() => rules.resolve('nope:x')),
      102,
    );
    assert.equal(
      codeOf(() => rules.resolve('')),
      107,
    );
    assert.equal(
      codeOf(() => rules.resolve('x'.repeat(33))),
      107,
    );
    assert.equal(
      codeOf(() => rules.resolve('a b')),
      107,
    );
    assert.equal(
      codeOf(() => rules.resolve('a\u0000b')),
      107,
    );
    assert.equal(
      codeOf(() => rules.resolve('x'.repeat(32))),
      undefined,
    );
  });

  it('measures the length limit in bytes, not characters', () => {
    assert.equal(
      codeOf(() => rules.resolve('é'.repeat(17))),
      107,
    );
  });

  it('applies channel_regex to the name without the namespace', () => {
    assert.equal(
      codeOf(() => rules.resolve('room:abc1')),
      undefined,
    );
    // Centrifugo answers a name its channel_regex rejects with 107 (bad request), not 102.
    assert.equal(
      codeOf(() => rules.resolve('room:ABC')),
      107,
    );
  });

  it('lists users of user-limited channels only where the namespace allows them', () => {
    assert.deepEqual(rules.allowedUsers(rules.resolve('dm:pair#alice,bob')), ['alice', 'bob']);
    assert.equal(rules.allowedUsers(rules.resolve('dm:open')), undefined);
    assert.equal(rules.allowedUsers(rules.resolve('chat:x#alice')), undefined);
  });

  it('uses the namespace meta TTL when set, else the global one', () => {
    assert.equal(rules.historyMetaTtlMs(rules.resolve('meta:x').options), 300_000);
    assert.equal(rules.historyMetaTtlMs(rules.resolve('chat:x').options), 720 * 3_600_000);
    assert.equal(ChannelRules.hasHistory(rules.resolve('chat:x').options), true);
    assert.equal(ChannelRules.hasHistory(rules.resolve('x').options), false);
  });

  it('refuses names with space or control characters: every UTF-16 unit as the RegExp it replaced', () => {
    const re = /[\s\p{Cc}]/u;
    const differ: number[] = [];
    for (let c = 0; c <= 0xffff; c++) {
      const s = `a${String.fromCharCode(c)}b`;
      if (hasSpaceOrControl(s) !== re.test(s)) differ.push(c);
    }
    assert.deepEqual(differ, []);
    assert.equal(hasSpaceOrControl('chat:\u{1F600}'), false);
    assert.equal(
      codeOf(() => rules.resolve('chat:a b')),
      107,
    );
    assert.equal(
      codeOf(() => rules.resolve('chat:a\u0085')),
      107,
    );
  });

  it("counts a name's length in UTF-8 bytes against max_length", () => {
    assert.equal(
      codeOf(() => rules.resolve(`chat:${'x'.repeat(27)}`)),
      undefined,
    );
    assert.equal(
      codeOf(() => rules.resolve(`chat:${'x'.repeat(28)}`)),
      107,
    );
    // Past a third of the limit in characters, so counted in bytes: 17 fit, 35 do not.
    assert.equal(
      codeOf(() => rules.resolve(`chat:${'é'.repeat(6)}`)),
      undefined,
    );
    assert.equal(
      codeOf(() => rules.resolve(`chat:${'€'.repeat(10)}`)),
      107,
    );
  });

  it('answers a channel resolved before the same, from memory, and refuses a bad name every time', () => {
    const fresh = new ChannelRules(config.channel);
    const first = fresh.resolve('chat:again');
    assert.equal(fresh.resolve('chat:again'), first);
    assert.deepEqual(first, {
      channel: 'chat:again',
      namespace: 'chat',
      name: 'again',
      options: first.options,
      isPrivate: false,
    });
    for (let i = 0; i < 2; i++) {
      assert.equal(
        codeOf(() => fresh.resolve('nope:x')),
        102,
      );
      assert.equal(
        codeOf(() => fresh.resolve('room:ABC')),
        107,
      );
    }
    // Bounded: past its size it starts over, and answers alike.
    for (let i = 0; i < 5000; i++) fresh.resolve(`chat:n${i}`);
    assert.deepEqual(fresh.resolve('chat:again'), first);
    assert.equal(fresh.resolve('chat:n4999').name, 'n4999');
  });
});
