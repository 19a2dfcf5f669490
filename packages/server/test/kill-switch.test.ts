/**
 * Kill switches over real sockets: set through the server API, each refuses exactly what it
 * names with error 108 and the operator's reason (or, for connect, HTTP 503 with the reason
 * and Retry-After), leaves everything else working, is listed and counted, and turns off
 * again. Switches from config are on from start. Cross-node delivery is tested with the
 * Redis engine (cluster-redis.test.ts, redis-outage.test.ts).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { KillSwitches } from '../src/protection/kill-switches.js';
import { asRaw, type RawJSON } from '../src/protocol/types.js';
import { assertRetryAfterIn, connectClient, rejectionsMetric, upgradeAttempt } from './helpers/protection.js';
import { startTestServer } from './helpers/server.js';

const disabled = (reason: string) => ({ code: 108, message: `disabled: ${reason}` });

describe('kill switches', () => {
  it('publish: refuses client publishing in one namespace only; server publishing goes on', async (t) => {
    const srv = await startTestServer();
    t.after(() => srv.close());
    const a = await connectClient(srv, 'alice', 'chat:room');
    const b = await connectClient(srv, 'bob', 'open:lobby');

    const set = await srv.api('kill_switch_set', { kind: 'publish', target: 'chat', reason: 'chat spam wave' });
    assert.equal(set.status, 200);
    assert.deepEqual(
      { ...set.body.result.switch, since: 0 },
      { kind: 'publish', target: 'chat', reason: 'chat spam wave', since: 0 },
    );

    const refused = await a.call('publish', { channel: 'chat:room', data: { text: 'hi' } });
    assert.deepEqual(refused.error, disabled('chat spam wave'));
    const other = await b.call('publish', { channel: 'open:lobby', data: { text: 'hi' } });
    assert.equal(other.error, undefined, 'another namespace is not switched off');
    const api = await srv.api('publish', { channel: 'chat:room', data: { text: 'from the server' } });
    assert.equal(api.status, 200);
    assert.equal(api.body.error, undefined, 'server API publishing is not switched off');
    await a.waitFor((m) => (m.push?.pub?.data as { text?: string } | undefined)?.text === 'from the server');
    assert.equal(await rejectionsMetric(srv.httpUrl, 'kill_switch_publish'), 1);

    const list = await srv.api('kill_switch_list', {});
    assert.equal(list.body.result.switches.length, 1);
    const removed = await srv.api('kill_switch_remove', { kind: 'publish', target: 'chat' });
    assert.deepEqual(removed.body.result, { removed: true });
    const again = await a.call('publish', { channel: 'chat:room', data: { text: 'back' } });
    assert.equal(again.error, undefined, JSON.stringify(again));
    assert.deepEqual((await srv.api('kill_switch_list', {})).body.result, { switches: [] });
  });

  it('target "*" switches off every namespace, channels without one included', async (t) => {
    const srv = await startTestServer({ channel: { without_namespace: { allow_publish_for_client: true } } });
    t.after(() => srv.close());
    const a = await connectClient(srv, 'alice', 'open:x');
    await srv.api('kill_switch_set', { kind: 'publish', reason: 'maintenance' });
    for (const channel of ['open:x', 'plain']) {
      const reply = await a.call('publish', { channel, data: {} });
      assert.deepEqual(reply.error, disabled('maintenance'), channel);
    }
  });

  it('rpc: refuses one method; other methods answer', async (t) => {
    const srv = await startTestServer();
    t.after(() => srv.close());
    srv.node.rpc('inventory.get', () => ({ items: 3 }));
    srv.node.rpc('ping', () => 'pong');
    const a = await connectClient(srv, 'alice', 'chat:room');
    await srv.api('kill_switch_set', { kind: 'rpc', target: 'inventory.get', reason: 'inventory service degraded' });
    const refused = await a.call('rpc', { method: 'inventory.get', data: {} });
    assert.deepEqual(refused.error, disabled('inventory service degraded'));
    const ok = await a.call('rpc', { method: 'ping', data: {} });
    assert.deepEqual(ok.rpc, { data: 'pong' });
    assert.equal(await rejectionsMetric(srv.httpUrl, 'kill_switch_rpc'), 1);
  });

  it('read: refuses history, presence and presence_stats in a namespace; subscribing still works', async (t) => {
    const srv = await startTestServer();
    t.after(() => srv.close());
    const a = await connectClient(srv, 'alice', 'chat:room');
    await srv.api('kill_switch_set', { kind: 'read', target: 'chat', reason: 'board polling storm' });
    for (const [method, body] of [
      ['history', { channel: 'chat:room', limit: 5 }],
      ['presence', { channel: 'chat:room' }],
      ['presence_stats', { channel: 'chat:room' }],
    ] as const) {
      const reply = await a.call(method, body);
      assert.deepEqual(reply.error, disabled('board polling storm'), method);
    }
    const sub = await a.call('subscribe', { channel: 'chat:other' });
    assert.ok(sub.subscribe, JSON.stringify(sub));
    assert.equal(await rejectionsMetric(srv.httpUrl, 'kill_switch_read'), 3);
  });

  it('connect: new upgrades get 503 with the reason and Retry-After; connected clients stay', async (t) => {
    const srv = await startTestServer({ protection: { retry_after_min: '2s', retry_after_max: '3s' } });
    t.after(() => srv.close());
    const a = await connectClient(srv, 'alice', 'chat:room');
    await srv.api('kill_switch_set', { kind: 'connect', reason: 'login queue full' });
    const refused = await upgradeAttempt(srv.url);
    assertRetryAfterIn(refused, 2, 3);
    assert.equal(refused.body, 'disabled: login queue full\n');
    assert.equal(await rejectionsMetric(srv.httpUrl, 'kill_switch'), 1);
    const reply = await a.call('publish', { channel: 'chat:room', data: {} });
    assert.equal(reply.error, undefined, 'connected clients keep working');
    await srv.api('kill_switch_remove', { kind: 'connect' });
    assert.equal((await upgradeAttempt(srv.url)).status, 101);
  });

  it('switches in protection.kill_switches are on from start and show in the metric', async (t) => {
    const srv = await startTestServer({
      protection: { kill_switches: [{ kind: 'publish', target: 'chat', reason: 'read-only event' }] },
    });
    t.after(() => srv.close());
    const a = await connectClient(srv, 'alice', 'chat:room');
    const reply = await a.call('publish', { channel: 'chat:room', data: {} });
    assert.deepEqual(reply.error, disabled('read-only event'));
    const metrics = await (await fetch(`${srv.httpUrl}/metrics`)).text();
    assert.match(metrics, /^bulwark_kill_switches\{[^}]*\} 1$/m);
  });

  it('the API validates kind and reason and changes nothing on a bad body', async (t) => {
    const srv = await startTestServer();
    t.after(() => srv.close());
    const badKind = await srv.api('kill_switch_set', { kind: 'everything', reason: 'x' });
    assert.equal(badKind.body.error.code, 107);
    const noReason = await srv.api('kill_switch_set', { kind: 'publish', target: 'chat' });
    assert.equal(noReason.body.error.code, 107);
    assert.deepEqual((await srv.api('kill_switch_list', {})).body.result, { switches: [] });
    const removeMissing = await srv.api('kill_switch_remove', { kind: 'rpc', target: 'nope' });
    assert.deepEqual(removeMissing.body.result, { removed: false });
  });

  it('a malformed control message from another node is dropped, not thrown', async (t) => {
    const srv = await startTestServer();
    t.after(() => srv.close());
    for (const data of ['not json', '{"type":"kill_switch_set","from":"x"}', '{"type":"reboot","from":"x"}']) {
      assert.doesNotThrow(() => srv.node.control.receive(data as RawJSON));
    }
    assert.equal(srv.node.killSwitches.size, 0);
    // A valid message from another node takes effect.
    srv.node.control.receive(
      asRaw({
        type: 'kill_switch_set',
        from: 'other-node',
        switch: { kind: 'rpc', target: 'x', reason: 'r', since: 1 },
      }),
    );
    assert.equal(srv.node.killSwitches.find('rpc', 'x')?.reason, 'r');
  });
});

describe('KillSwitches: the latest change wins, whatever arrives when', () => {
  it("a node that missed a removal learns it from another node's state", () => {
    const a = new KillSwitches();
    const b = new KillSwitches();
    const sw = a.set('publish', 'chat', 'spam', 1000);
    assert.ok(sw);
    b.set('publish', 'chat', 'spam', 1000);
    a.remove('publish', 'chat', 2000); // b never hears of it
    const { on, off } = b.merge(a.state());
    assert.deepEqual(on, []);
    assert.deepEqual(off, [{ kind: 'publish', target: 'chat', at: 2000 }]);
    assert.equal(b.find('publish', 'chat'), undefined);
  });

  it('a stale set arriving after a later removal stays off; a later set turns it on again', () => {
    const k = new KillSwitches();
    k.remove('rpc', 'inventory.get', 2000);
    assert.equal(k.set('rpc', 'inventory.get', 'old', 1500), undefined);
    assert.equal(k.find('rpc', 'inventory.get'), undefined);
    assert.equal(k.set('rpc', 'inventory.get', 'new', 2500)?.reason, 'new');
    assert.equal(k.remove('rpc', 'inventory.get', 2400), undefined, 'an older removal does not undo it');
    assert.equal(k.find('rpc', 'inventory.get')?.reason, 'new');
  });

  it('a change made here is stamped after every change known, even with a clock behind', () => {
    const k = new KillSwitches();
    const future = Date.now() + 60_000;
    k.set('read', 'board', 'from a node whose clock runs ahead', future);
    const removal = k.remove('read', 'board');
    assert.ok(removal && removal.at > future);
    assert.equal(k.isOn('read', 'board'), false);
  });

  it('a switch from config (time 0) yields to a runtime removal known elsewhere', () => {
    const k = new KillSwitches();
    k.set('publish', 'chat', 'from config', 0);
    k.merge({ switches: [], removed: [{ kind: 'publish', target: 'chat', at: 5 }] });
    assert.equal(k.isOn('publish', 'chat'), false);
  });
});
