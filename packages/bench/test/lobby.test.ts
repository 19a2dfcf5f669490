/**
 * Tests of the lobby scenario (issue 15): the map mirror (state pages, stream catch-up, the live
 * reply, live changes and what it counts as anomalies), the map client against a scripted
 * server (the paged subscribe on the wire, a write lost with 113, an own write timed to its
 * push), the slot vocabulary and choice, the end-state judge, the verdict, the config and the
 * Redis refusal; and one tiny run of the whole scenario on a real Bulwark when it is built.
 */
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { describe, it } from 'node:test';
import { WebSocketServer } from 'ws';
import { readFlags } from '../src/harness/flags.js';
import { Progress } from '../src/harness/progress.js';
import type { ScenarioContext } from '../src/harness/scenario.js';
import { bulwarkAvailable } from '../src/harness/targets.js';
import { waitFor } from '../src/harness/util.js';
import { MapClient } from '../src/load/map-client.js';
import { MapMirror } from '../src/load/map-mirror.js';
import { judgeExactness, type PlayerView, type ServerLobby } from '../src/scenarios/lobby/exactness.js';
import { lobbyScenario } from '../src/scenarios/lobby/index.js';
import { parsePick } from '../src/scenarios/lobby/options.js';
import { lobbyConfig, REDIS_MAP_REFUSAL } from '../src/scenarios/lobby/run.js';
import {
  freeSlots,
  lobbyOf,
  pickLobby,
  pickSlot,
  readSlotValue,
  slotIndex,
  slotKey,
} from '../src/scenarios/lobby/slots.js';
import type { LobbyOptions, LobbyResult } from '../src/scenarios/lobby/types.js';
import { judgeLobby } from '../src/scenarios/lobby/verdict.js';

const opts: LobbyOptions = {
  nodes: 1,
  players: 10,
  lobbies: 2,
  slots: 4,
  durationSeconds: 1,
  rampSeconds: 0.1,
  holdMinSeconds: 0.1,
  holdMaxSeconds: 0.2,
  pauseSeconds: 0.05,
  rejoinPercent: 80,
  pageSize: 2,
  pick: 'lowest',
  settleSeconds: 3,
  p99LimitMs: 250,
  redisUrl: 'redis://127.0.0.1:6379',
  connectConcurrency: 10,
};

const obj = (m: ReadonlyMap<string, unknown>) => Object.fromEntries([...m].sort(([a], [b]) => (a < b ? -1 : 1)));

describe('the map mirror', () => {
  it('builds state pages, the stream catch-up and the live reply into one map, last write winning', () => {
    const m = new MapMirror();
    m.addState(
      [
        { key: 'a', data: 1, offset: 3 },
        { key: 'b', data: 2, offset: 4 },
      ],
      { offset: 5, epoch: 'E' },
    );
    assert.deepEqual([m.offset, m.epoch, m.phase], [5, 'E', 'state']);
    m.addState([{ key: 'c', data: 3, offset: 5 }]);
    assert.equal(m.offset, 5, 'later pages keep the first page’s position');
    m.addStream([{ key: 'a', data: 10, offset: 6 }], 6);
    assert.equal(m.phase, 'stream');
    m.goLive({
      offset: 8,
      epoch: 'E',
      publications: [
        { key: 'b', removed: true, offset: 7 },
        { key: 'd', data: 4, offset: 8 },
      ],
    });
    assert.equal(m.phase, 'live');
    assert.deepEqual(obj(m.entries), { a: 10, c: 3, d: 4 });
    assert.equal(m.offset, 8);
    assert.deepEqual(m.anomalies, { gaps: 0, stale: 0, overwrites: 0 });
  });

  it('applies live changes in order, and counts repeats, gaps and sets of a held key', () => {
    const m = new MapMirror();
    m.addState([{ key: 'slot-1', data: 'p1' }], { offset: 1, epoch: 'E' });
    m.goLive({ offset: 1, epoch: 'E' });
    assert.equal(m.applyLive({ key: 'slot-2', data: 'p2', offset: 2 }), true);
    assert.equal(m.applyLive({ key: 'slot-2', data: 'p2', offset: 2 }), false, 'a repeat is dropped');
    assert.equal(m.applyLive({ key: 'slot-1', removed: true, offset: 3 }), true);
    assert.equal(m.applyLive({ key: 'slot-2', data: 'p9', offset: 5 }), true, 'applied: the mirror follows');
    assert.deepEqual(m.anomalies, { gaps: 1, stale: 1, overwrites: 1 });
    assert.deepEqual(obj(m.entries), { 'slot-2': 'p9' });
    assert.equal(m.offset, 5);
  });

  it('keeps pushes that come before the live reply and drops those the reply carried', () => {
    const m = new MapMirror();
    m.addState([], { offset: 0, epoch: 'E' });
    assert.equal(m.applyLive({ key: 'a', data: 1, offset: 1 }), false);
    assert.equal(m.applyLive({ key: 'b', data: 2, offset: 2 }), false);
    m.goLive({ offset: 1, epoch: 'E', publications: [{ key: 'a', data: 1, offset: 1 }] });
    assert.deepEqual(obj(m.entries), { a: 1, b: 2 });
    assert.deepEqual([m.offset, m.anomalies.stale, m.anomalies.gaps], [2, 1, 0]);
  });

  it('applies an ephemeral map’s changes without offsets, and starts over from nothing', () => {
    const m = new MapMirror();
    m.goLive({ state: [{ key: 'a', data: 1 }], publications: [{ key: 'a', data: 2 }] });
    m.applyLive({ key: 'b', data: 3 });
    assert.deepEqual(obj(m.entries), { a: 2, b: 3 });
    assert.deepEqual(m.anomalies, { gaps: 0, stale: 0, overwrites: 0 });
    m.restart();
    assert.deepEqual([m.entries.size, m.phase, m.offset, m.epoch], [0, 'state', 0, '']);
  });
});

describe('the map client against a scripted server', () => {
  it('pages a subscribe through state and stream to live, and times its own writes', async (t) => {
    const wss = new WebSocketServer({ port: 0, host: '127.0.0.1' });
    await new Promise<void>((r) => wss.once('listening', () => r()));
    t.after(() => wss.close());
    const subs: Array<Record<string, unknown>> = [];
    wss.on('connection', (ws) => {
      ws.on('message', (raw: Buffer) => {
        const msg = JSON.parse(raw.toString()) as {
          id: number;
          connect?: unknown;
          subscribe?: Record<string, unknown>;
          publish?: { key: string; data?: unknown; removed?: boolean };
        };
        const reply = (body: string) => ws.send(`{"id":${msg.id},${body}}`);
        if (msg.connect) reply('"connect":{"client":"c1"}');
        const s = msg.subscribe;
        if (s) {
          subs.push(s);
          if (s.phase === 2 && !s.cursor) {
            reply(
              '"subscribe":{"type":1,"phase":2,"state":[{"key":"slot-1","data":{"player":"x"},"offset":1}],"cursor":"slot-1","offset":2,"epoch":"E"}',
            );
          } else if (s.phase === 2) {
            reply(
              '"subscribe":{"type":1,"phase":2,"state":[{"key":"slot-2","data":{"player":"y"},"offset":2}],"offset":2,"epoch":"E"}',
            );
          } else if (s.phase === 1 && s.offset === 2) {
            reply(
              '"subscribe":{"type":1,"phase":1,"publications":[{"key":"slot-1","removed":true,"offset":3}],"offset":3,"epoch":"E"}',
            );
          } else {
            // Live, then a push that came in meanwhile (the server's buffer), and a ping.
            ws.send(
              `{"id":${msg.id},"subscribe":{"type":1,"offset":4,"epoch":"E","publications":[{"key":"slot-3","data":{"player":"z"},"offset":4}]}}\n{}`,
            );
          }
        }
        const p = msg.publish;
        if (p && p.key === 'slot-2') reply('"error":{"code":113,"message":"conflict"}');
        else if (p) {
          ws.send(
            `{"push":{"channel":"lobby:1","pub":{"key":"${p.key}","data":${JSON.stringify(p.data)},"offset":5}}}`,
          );
          reply('"publish":{}');
        }
      });
    });
    const port = (wss.address() as { port: number }).port;
    const own: number[] = [];
    const changes: string[] = [];
    const c = new MapClient({
      url: `ws://127.0.0.1:${port}`,
      user: 'u1',
      secret: 's',
      onOwnDelivery: (_ch, _e, ms) => own.push(ms),
      onChange: (_ch, e) => changes.push(e.key),
    });
    await c.connect();
    const info = await c.subscribe('lobby:1', 1);
    assert.deepEqual(
      subs.map((s) => [s.phase, s.cursor ?? '', s.offset ?? '', s.epoch ?? '']),
      [
        [2, '', '', ''],
        [2, 'slot-1', 2, 'E'],
        [1, '', 2, 'E'],
        [1, '', 3, 'E'],
      ],
    );
    assert.equal(subs[0]!.type, 1);
    assert.equal(subs[0]!.limit, 1);
    assert.deepEqual([info.entries, info.requests, info.restarts], [2, 4, 0]);
    assert.ok(info.bytes > 300);
    const m = c.mirror('lobby:1')!;
    assert.deepEqual(obj(m.entries), { 'slot-2': { player: 'y' }, 'slot-3': { player: 'z' } });
    assert.equal(m.offset, 4);
    assert.equal((await c.publish('lobby:1', 'slot-2', { player: 'u1' })).code, 113);
    assert.equal(c.ownPending, 0, 'a lost write waits for no push');
    assert.equal((await c.publish('lobby:1', 'slot-4', { player: 'u1' })).code, 0);
    await waitFor(() => own.length === 1, 1000);
    assert.equal(own.length, 1);
    assert.deepEqual(changes, ['slot-4']);
    assert.equal(m.entries.size, 3);
    assert.deepEqual(c.anomalies(), { gaps: 0, stale: 0, overwrites: 0 });
    c.terminate();
  });
});

describe('slots and lobbies', () => {
  it('names lobbies and slots, and reads them back', () => {
    assert.equal(lobbyOf('lobby:12'), 12);
    assert.equal(lobbyOf('chat:12'), -1);
    assert.equal(slotKey(3), 'slot-3');
    assert.equal(slotIndex('slot-3', 8), 3);
    assert.equal(slotIndex('slot-9', 8), -1);
    assert.equal(slotIndex('seat-1', 8), -1);
    assert.deepEqual(readSlotValue({ player: 'p1', t: 1.5 }), { player: 'p1', t: 1.5 });
    assert.equal(readSlotValue({ player: 'p1' }), undefined);
  });

  it('chooses a free slot the mirror shows, the lowest or at random, never one tried', () => {
    const held = new Map<string, unknown>([
      ['slot-1', 1],
      ['slot-3', 1],
    ]);
    assert.deepEqual(freeSlots(held, 4, new Set()), [2, 4]);
    assert.deepEqual(freeSlots(held, 4, new Set([2])), [4]);
    assert.equal(pickSlot([2, 4], 'lowest'), 2);
    assert.equal(
      pickSlot([2, 4], 'random', () => 0.99),
      4,
    );
    assert.equal(pickLobby(1, 0), 0);
    let i = 0;
    const seq = [0.1, 0.1, 0.6];
    assert.equal(
      pickLobby(2, 0, () => seq[i++]!),
      1,
      'another lobby than the last',
    );
    assert.equal(parsePick('random'), 'random');
    assert.throws(() => parsePick('first'));
  });
});

describe('the end state', () => {
  const server = new Map<string, ServerLobby>([
    [
      'lobby:0',
      {
        entries: new Map<string, unknown>([
          ['slot-1', { player: 'a', t: 1 }],
          ['slot-2', { player: 'b', t: 2 }],
        ]),
        offset: 7,
        epoch: 'E',
      },
    ],
  ]);
  const mirrorOf = (lobby: ServerLobby, offset = lobby.offset) => ({
    entries: new Map(lobby.entries),
    offset,
    epoch: lobby.epoch,
  });

  it('passes mirrors equal to the server with every slot believed by its holder', () => {
    const l = server.get('lobby:0')!;
    const players: PlayerView[] = [
      { user: 'a', channel: 'lobby:0', held: 'slot-1', mirror: mirrorOf(l) },
      { user: 'b', channel: 'lobby:0', held: 'slot-2', mirror: mirrorOf(l) },
      { user: 'c' },
    ];
    const r = judgeExactness(players, server, 4);
    assert.deepEqual(
      [r.mirrors, r.equal, r.atPosition, r.slotsHeld, r.doubleHeld, r.strangers, r.phantoms, r.malformed],
      [2, 2, 2, 2, 0, 0, 0, 0],
    );
  });

  it('finds a stale mirror, a mirror behind, a stranger in a slot and a phantom holder', () => {
    const l = server.get('lobby:0')!;
    const stale = mirrorOf(l, 6);
    stale.entries.delete('slot-2');
    const players: PlayerView[] = [
      { user: 'a', channel: 'lobby:0', held: 'slot-1', mirror: mirrorOf(l) },
      { user: 'b', channel: 'lobby:0', mirror: stale },
      { user: 'c', channel: 'lobby:0', held: 'slot-3', mirror: mirrorOf(l) },
    ];
    const r = judgeExactness(players, server, 4);
    assert.deepEqual([r.mirrors, r.equal, r.atPosition], [3, 2, 2]);
    assert.match(r.examples[0]!, /b in lobby:0: slot-2: mirror absent, server/);
    assert.equal(r.strangers, 1, 'b holds slot-2 without believing it');
    assert.equal(r.phantoms, 1, 'c believes in slot-3');
  });

  it('counts a player the server lists in two slots', () => {
    const two = new Map<string, ServerLobby>([
      ['lobby:0', server.get('lobby:0')!],
      ['lobby:1', { entries: new Map([['slot-1', { player: 'a', t: 3 }]]), offset: 1, epoch: 'F' }],
    ]);
    const r = judgeExactness([{ user: 'a', channel: 'lobby:0', held: 'slot-1' }], two, 4);
    assert.deepEqual([r.doubleHeld, r.strangers, r.slotsHeld], [1, 2, 3]);
  });
});

/** cleanResult is a run without a defect. */
function cleanResult(): LobbyResult {
  const s = { count: 10, mean: 2, p50: 1, p90: 3, p99: 5, p999: 6, max: 7 };
  return {
    engine: 'memory',
    seconds: 1,
    joins: {
      attempts: 10,
      subscribed: 10,
      succeeded: 8,
      fullOnArrival: 1,
      fullAfterConflict: 1,
      subscribeErrors: {},
      writeErrors: {},
    },
    conflicts: { total: 2, lastSlot: 1, perSlotTaken: 0.25 },
    leaves: { ok: 5, errors: {} },
    players: { gotSlot: 10, sawFree: 10, starved: 0, gone: 1 },
    latencyMs: { own: s, others: s, writeReply: s, subscribe: s },
    ownTakes: { ok: 8, delivered: 8 },
    snapshot: { entries: s, bytes: s, requests: s, restarts: 0 },
    stream: { gaps: 0, stale: 0, overwrites: 0 },
    exactness: {
      mirrors: 3,
      equal: 3,
      atPosition: 3,
      examples: [],
      slotsHeld: 3,
      doubleHeld: 0,
      strangers: 0,
      phantoms: 0,
      malformed: 0,
    },
    settleMs: 10,
    cpu: {
      serverPercent: [10],
      serverWaitPercent: [1],
      loadgenPercent: 10,
      loadgenWaitPercent: 1,
      loadgenLoopDelayMs: { p99: 1, max: 2 },
    },
    disconnected: {},
    bulwark: { writes: { publish: 8, remove: 5 }, suppressed: { key_exists: 2 }, catchUpTimeouts: 0 },
    ownDropped: 0,
    serverUnsubscribes: 0,
    bytesReceived: 100,
  };
}

describe('the lobby verdict', () => {
  const failed = (r: LobbyResult) =>
    judgeLobby(r, opts)
      .filter((c) => !c.pass)
      .map((c) => c.name);

  it('passes a clean run', () => {
    assert.deepEqual(failed(cleanResult()), []);
  });

  it('fails each defect on its own check', () => {
    const cases: Array<[(r: LobbyResult) => void, RegExp]> = [
      [(r) => (r.exactness.equal = 2), /exactness/],
      [(r) => (r.exactness.atPosition = 2), /stream position/],
      [(r) => (r.exactness.doubleHeld = 1), /two slots/],
      [(r) => (r.exactness.strangers = 1), /does not believe/],
      [(r) => (r.exactness.phantoms = 1), /does not give/],
      [(r) => (r.stream.overwrites = 1), /if_new broken/],
      [(r) => (r.stream.gaps = 1), /lost or doubled/],
      [(r) => (r.players.starved = 1), /never got one/],
      [(r) => (r.ownTakes.delivered = 7), /never seen by the writer/],
      [(r) => (r.joins.writeErrors = { '106': 1 }), /other than 113/],
      [(r) => (r.disconnected = { '3001': 1 }), /disconnected/],
      [(r) => (r.latencyMs.own = { ...r.latencyMs.own, p99: 300 }), /delivery p99/],
      [(r) => (r.bulwark!.suppressed = { key_exists: 3 }), /key_exists suppressions/],
      [(r) => (r.bulwark!.writes = { publish: 9, remove: 5 }), /applied client sets/],
    ];
    for (const [spoil, name] of cases) {
      const r = cleanResult();
      spoil(r);
      const f = failed(r);
      assert.equal(f.length, 1, `${name}: ${f.join(', ')}`);
      assert.match(f[0]!, name);
    }
    const none = cleanResult();
    none.exactness.mirrors = 0;
    none.exactness.equal = 0;
    none.exactness.atPosition = 0;
    assert.ok(
      failed(none).some((n) => /exactness/.test(n)),
      'no mirror to compare is no exactness',
    );
  });
});

describe('the lobby config', () => {
  it('makes the lobby namespace a durable map with if_new client writes, bounded by the slots', () => {
    const c = lobbyConfig(opts, 'p') as {
      channel: { namespaces: Array<{ name: string; subscription_type: string; map: Record<string, unknown> }> };
      engine?: unknown;
    };
    const ns = c.channel.namespaces[0]!;
    assert.equal(ns.name, 'lobby');
    assert.equal(ns.subscription_type, 'map');
    assert.equal(ns.map.mode, 'durable');
    assert.equal(ns.map.client_key_mode, 'if_new');
    assert.equal(ns.map.max_keys, 4);
    assert.equal(c.engine, undefined);
    const redis = lobbyConfig({ ...opts, nodes: 3 }, 'bench-lobby-x') as { engine: { type: string } };
    assert.equal(redis.engine.type, 'redis');
  });

  it('recognises the server’s refusal of map namespaces on the Redis engine', () => {
    const out =
      'bulwark exited before becoming ready\n  server output:\n    config: channel.namespaces.0: map channels need engine.type memory for now: the redis engine has no map broker yet\n    [process exited]';
    assert.match(
      REDIS_MAP_REFUSAL.exec(out)?.[0] ?? '',
      /^map channels need engine\.type memory for now: the redis engine/,
    );
  });
});

describe('the lobby scenario on a real Bulwark', { skip: !bulwarkAvailable() && 'Bulwark is not built' }, () => {
  it('passes every check on a tiny run', async () => {
    const values = {
      players: '16',
      lobbies: '2',
      slots: '4',
      duration: '1.5',
      ramp: '0.2',
      'hold-min': '0.2',
      'hold-max': '0.5',
      pause: '0.1',
      // Correctness, not speed: the test machine may be busy with other work.
      'p99-limit': '5000',
    };
    const quiet = new Writable({ write: (_c, _e, done) => done() }) as unknown as NodeJS.WriteStream;
    const ctx: ScenarioContext = {
      quick: true,
      flags: readFlags(values, true),
      log: () => undefined,
      progress: new Progress(quiet),
      bulwark: {},
      targets: ['bulwark'],
      workers: 1,
      loadgenCpu: null,
    };
    const out = await lobbyScenario.run(ctx);
    assert.deepEqual(
      out.checks.filter((c) => !c.pass),
      [],
    );
    const r = out.results as LobbyResult;
    assert.ok(r.joins.succeeded > 0);
    assert.ok(r.exactness.mirrors > 0);
    assert.ok(r.snapshot.requests.max >= 2, 'pages of 4 with up to 4 slots: state then stream');
  });
});
