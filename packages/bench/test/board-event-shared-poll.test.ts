/**
 * Tests of the pure parts of board-event's shared-poll mode: the track signature (accepted by
 * Bulwark's own verifier), the track command, the keys a player tracks, the board origin's
 * refresh answers (over HTTP too), the origin counts per cycle and batch, `--modes`, and the
 * shared-poll verdict.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { scanBenchMarkers } from '../src/load/bench-markers.js';
import { trackCommand } from '../src/load/shared-poll-client.js';
import { signTrack } from '../src/load/track-signature.js';
import { answerRefresh, BoardOrigin, parseRefresh } from '../src/servers/board-origin.js';
import { postData } from '../src/scenarios/board-event/boards.js';
import { parseModes } from '../src/scenarios/board-event/options.js';
import { boardKeys, originCounts, postsPerBoard, windowCycles } from '../src/scenarios/board-event/shared-poll-run.js';
import type { ModeResult } from '../src/scenarios/board-event/types.js';
import { judgeSharedPoll } from '../src/scenarios/board-event/verdict.js';

type Verify = (
  secrets: { current: string; previous: string; previousValidUntil: number },
  signature: string,
  user: string,
  channel: string,
  keys: readonly string[],
) => { ok: boolean };

// Compiled to packages/bench/dist/test/: the server's build is packages/server/dist/.
const verifierUrl = new URL('../../../server/dist/src/auth/shared-poll-signature.js', import.meta.url);
const { verifyTrackSignature } = (await import(verifierUrl.href)) as { verifyTrackSignature: Verify };

describe('signTrack', () => {
  const secrets = { current: 'board-secret', previous: '', previousValidUntil: 0 };
  const keys = ['old:1', 'post:1', 'post:2'];

  it('makes signatures Bulwark accepts, for that user, channel and keys in that order only', () => {
    const sig = signTrack('board-secret', 'player-3', 'board:team.0', keys, 0);
    assert.match(sig, /^\d+:0:[0-9a-f]{64}$/);
    assert.equal(verifyTrackSignature(secrets, sig, 'player-3', 'board:team.0', keys).ok, true);
    assert.equal(verifyTrackSignature(secrets, sig, 'player-4', 'board:team.0', keys).ok, false);
    assert.equal(verifyTrackSignature(secrets, sig, 'player-3', 'board:team.1', keys).ok, false);
    assert.equal(verifyTrackSignature(secrets, sig, 'player-3', 'board:team.0', [...keys].reverse()).ok, false);
  });

  it('expires ttl seconds after it was made', () => {
    assert.match(signTrack('s', 'u', 'c', keys, 60, 1000), /^1000:1060:/);
  });
});

describe('trackCommand', () => {
  it('is a sub_refresh of type 1 with every key at version 0', () => {
    const cmd = JSON.parse(trackCommand(3, 'board:team.2', [{ signature: 'sig', keys: ['a', 'b'] }])) as unknown;
    assert.deepEqual(cmd, {
      id: 3,
      sub_refresh: {
        channel: 'board:team.2',
        type: 1,
        track: [
          {
            signature: 'sig',
            items: [
              { key: 'a', version: 0 },
              { key: 'b', version: 0 },
            ],
          },
        ],
      },
    });
  });
});

describe('boardKeys', () => {
  it('are the prefilled posts and a slot for every post of the warm-up and window, one spare', () => {
    const opts = { page: 2, warmupS: 5, seconds: 30, postIntervalS: 2 };
    assert.equal(postsPerBoard(opts), 19);
    const keys = boardKeys(opts);
    assert.deepEqual(keys.slice(0, 3), ['old:1', 'old:2', 'post:1']);
    assert.equal(keys.at(-1), 'post:19');
    assert.equal(keys.length, 21);
  });
});

describe('the board origin', () => {
  const board = new Map([
    ['post:1', { data: '{"a":1}', version: 1 }],
    ['post:2', { data: '{"a":2}', version: 3 }],
  ]);

  it('answers only posts newer than the version asked, data embedded as written', () => {
    const r = answerRefresh(board, [
      { key: 'post:1', version: 1 },
      { key: 'post:2', version: 2 },
      { key: 'post:3', version: 0 },
    ]);
    assert.equal(r.answered, 1);
    assert.deepEqual(JSON.parse(r.body), { result: { items: [{ key: 'post:2', data: { a: 2 }, version: 3 }] } });
    assert.deepEqual(JSON.parse(answerRefresh(undefined, [{ key: 'x', version: 0 }]).body), { result: { items: [] } });
  });

  it('reads refresh requests, versions missing as 0, and refuses anything else', () => {
    assert.deepEqual(parseRefresh('{"channel":"c","items":[{"key":"a"},{"key":"b","version":2}]}'), {
      channel: 'c',
      items: [
        { key: 'a', version: 0 },
        { key: 'b', version: 2 },
      ],
    });
    assert.equal(parseRefresh('{"channel":"c"}'), undefined);
    assert.equal(parseRefresh('{"channel":"c","items":[{"version":1}]}'), undefined);
    assert.equal(parseRefresh('not json'), undefined);
  });

  it('serves the posts written to it over HTTP and counts requests and items', async () => {
    const origin = await BoardOrigin.start();
    try {
      const data = postData(300, 'player-1', { team: 4, seq: 1, sentAtMicros: 77 });
      origin.post('board:team.4', 'post:1', data);
      const ask = async (body: unknown) =>
        (await fetch(origin.url, { method: 'POST', body: JSON.stringify(body) })).text();
      const text = await ask({
        channel: 'board:team.4',
        items: [
          { key: 'post:1', version: 0 },
          { key: 'post:2', version: 0 },
        ],
      });
      assert.deepEqual(scanBenchMarkers(Buffer.from(text)), [{ channel: 4, seq: 1, sentAtMicros: 77 }]);
      assert.equal(
        await ask({ channel: 'board:team.4', items: [{ key: 'post:1', version: 1 }] }),
        '{"result":{"items":[]}}',
      );
      const s = origin.stats();
      assert.deepEqual([s.requests, s.itemsAsked, s.itemsAnswered, s.malformed], [2, 3, 1, 0]);
      origin.reset();
      assert.equal(origin.stats().requests, 0);
    } finally {
      await origin.close();
    }
  });
});

describe('originCounts', () => {
  it('counts the most cycles a window holds, and requests per cycle and batch', () => {
    assert.equal(windowCycles(30, 5), 7);
    assert.equal(windowCycles(4, 5), 1);
    assert.equal(windowCycles(0.3, 0.1), 4);
    const opts = { teams: 40, refreshIntervalS: 5, refreshBatchSize: 30 };
    // 45 keys a board in batches of 30: 2 batches a board a cycle, 80 for 40 boards.
    const stats = { requests: 560, itemsAsked: 560 * 22, itemsAnswered: 600, bytesAnswered: 1, malformed: 0 };
    const c = originCounts(stats, 30, opts, 45, 12);
    assert.equal(c.batchesPerCycle, 80);
    assert.equal(c.cycles, 7);
    assert.equal(c.requestsPerCycleBatch, 1);
    assert.equal(c.requestsPerSecond, 18.67);
    assert.equal(c.itemsPerRequest, 22);
    assert.equal(c.requestsAtConnect, 12);
  });
});

describe('parseModes', () => {
  it('keeps the run order, always runs push and poll, and drops poll-since with --no-poll-since', () => {
    assert.deepEqual(parseModes('shared-poll', false), ['push', 'poll', 'shared-poll']);
    assert.deepEqual(parseModes('shared-poll,poll-since,push', false), ['push', 'poll', 'poll-since', 'shared-poll']);
    assert.deepEqual(parseModes('push,poll,poll-since,shared-poll', true), ['push', 'poll', 'shared-poll']);
    assert.throws(() => parseModes('push,sse', false), /unknown mode "sse"/);
  });
});

describe('judgeSharedPoll', () => {
  const result = (requestsPerCycleBatch: number, p99: number, missing: number): ModeResult =>
    ({
      mode: 'shared-poll',
      latencyMs: { count: 10, mean: p99, p50: p99, p90: p99, p99, p999: p99, max: p99 },
      missing: { missing },
      origin: { requestsPerCycleBatch },
    }) as unknown as ModeResult;
  const opts = { refreshIntervalS: 5, stalenessMarginMs: 1000 };
  const failed = (r: ModeResult) =>
    judgeSharedPoll(r, opts)
      .filter((c) => !c.pass)
      .map((c) => c.name);

  it('passes about one request per cycle and batch, staleness within an interval, nothing missed', () => {
    assert.deepEqual(failed(result(0.9, 4900, 0)), []);
  });

  it('fails a request per player, a late post, a missed one, and a run without origin counts', () => {
    assert.deepEqual(failed(result(50, 4900, 0)), ['shared-poll: origin requests per refresh cycle and batch']);
    assert.deepEqual(failed(result(1, 6500, 0)), ['shared-poll: staleness p99']);
    assert.deepEqual(failed(result(1, 4900, 2)), ['shared-poll: post × player pairs never received']);
    const noOrigin = { ...result(1, 4900, 0), origin: undefined };
    assert.deepEqual(failed(noOrigin), ['shared-poll: origin requests per refresh cycle and batch']);
  });
});
