/**
 * Tests of the pure parts of the board-event scenario: reading the bench markers of a history
 * page, staleness of first sightings, the pollers' schedule, CPU points, /proc/<pid>/io, what
 * the boards owe, and the verdict.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { countOccurrences, scanBenchMarkers } from '../src/load/bench-markers.js';
import { cpuPercentPoints } from '../src/harness/cpu-sampler.js';
import { PollSchedule, spreadOffsets } from '../src/load/poll-schedule.js';
import { parseProcIo } from '../src/harness/proc-io.js';
import { SeqTracker, type LatencySummary, type LossSummary } from '../src/harness/stats.js';
import {
  firstSightings,
  membersOf,
  owedDeliveries,
  postData,
  pollBody,
  pollSinceBody,
  teamOf,
} from '../src/scenarios/board-event/boards.js';
import { judgeBoard } from '../src/scenarios/board-event/verdict.js';
import { type BoardMode, type ModeResult } from '../src/scenarios/board-event/types.js';
import { parseHistoryPosition } from '../src/load/history-position.js';

/** A history reply as Bulwark encodes it: `{"id":N,"history":{"publications":[…],"epoch":…,"offset":…}}`. */
function historyReply(id: number, datas: string[]): Buffer {
  const pubs = datas.map((d, i) => `{"data":${d},"offset":${i + 1}}`).join(',');
  return Buffer.from(`{"id":${id},"history":{"publications":[${pubs}],"epoch":"abc","offset":${datas.length}}}`);
}

describe('postData', () => {
  it('is valid JSON of about the asked size, markers first', () => {
    const d = postData(1500, 'player-7', { team: 3, seq: 12, sentAtMicros: 123456789 });
    assert.ok(Math.abs(Buffer.byteLength(d) - 1500) <= 1, `size ${Buffer.byteLength(d)}`);
    assert.ok(d.startsWith('{"bch":3,"bseq":12,"bts":123456789,'));
    const parsed = JSON.parse(d) as Record<string, unknown>;
    assert.equal(parsed.author, 'player-7');
  });

  it('has no markers without a marker, so prefilled posts are never counted', () => {
    const d = postData(800, 'player-1');
    assert.doesNotThrow(() => JSON.parse(d));
    assert.deepEqual(scanBenchMarkers(Buffer.from(d)), []);
  });
});

describe('scanBenchMarkers', () => {
  it('reads every publication of a history page, in order, and skips unmarked ones', () => {
    const reply = historyReply(9, [
      postData(300, 'a', { team: 2, seq: 5, sentAtMicros: 1000 }),
      postData(300, 'b'),
      postData(300, 'c', { team: 2, seq: 4, sentAtMicros: 900 }),
    ]);
    assert.deepEqual(scanBenchMarkers(reply), [
      { channel: 2, seq: 5, sentAtMicros: 1000 },
      { channel: 2, seq: 4, sentAtMicros: 900 },
    ]);
    assert.equal(countOccurrences(reply, Buffer.from('{"data":')), 3);
  });

  it('stays within [start, end) of a frame holding several replies', () => {
    const a = historyReply(1, [postData(100, 'a', { team: 0, seq: 1, sentAtMicros: 10 })]);
    const b = historyReply(2, [postData(100, 'b', { team: 0, seq: 2, sentAtMicros: 20 })]);
    const frame = Buffer.concat([a, Buffer.from('\n'), b]);
    assert.deepEqual(scanBenchMarkers(frame, 0, a.length), [{ channel: 0, seq: 1, sentAtMicros: 10 }]);
    assert.deepEqual(scanBenchMarkers(frame, a.length + 1), [{ channel: 0, seq: 2, sentAtMicros: 20 }]);
    assert.equal(countOccurrences(frame, Buffer.from('{"data":'), 0, a.length), 1);
  });

  it('skips a marker that is not followed at once by the other two', () => {
    const buf = Buffer.from('{"bch":1,"x":2,"bseq":3,"bts":4} {"bch":1,"bseq":3} {"bch":7,"bseq":8,"bts":9}');
    assert.deepEqual(scanBenchMarkers(buf), [{ channel: 7, seq: 8, sentAtMicros: 9 }]);
  });
});

describe('firstSightings', () => {
  it('returns the staleness of posts the player had not seen, once each', () => {
    const seen = new SeqTracker();
    const m = (seq: number, sentMs: number) => ({ channel: 4, seq, sentAtMicros: sentMs * 1000 });
    // A newest-first page: reported oldest first.
    assert.deepEqual(firstSightings(seen, 4, [m(2, 1000), m(1, 500)], 3000), [2500, 2000]);
    // The next poll returns the same page plus a newer post: only the new one counts.
    assert.deepEqual(firstSightings(seen, 4, [m(3, 4000), m(2, 1000), m(1, 500)], 8000), [4000]);
    assert.equal(seen.missing(3), 0);
    assert.equal(seen.duplicates, 0);
    assert.equal(seen.outOfOrder, 0);
  });

  it("ignores another team's posts", () => {
    const seen = new SeqTracker();
    assert.deepEqual(firstSightings(seen, 1, [{ channel: 2, seq: 1, sentAtMicros: 0 }], 10), []);
    assert.equal(seen.missing(1), 1);
  });
});

describe('history polls', () => {
  it('ask for the newest page, or for what came after an offset', () => {
    assert.deepEqual(JSON.parse(`{${pollBody(3, 20)}}`), {
      history: { channel: 'board:team.3', limit: 20, reverse: true },
    });
    assert.deepEqual(JSON.parse(`{${pollSinceBody(3, 20, 41, 'ep"x')}}`), {
      history: { channel: 'board:team.3', limit: 20, since: { offset: 41, epoch: 'ep"x' } },
    });
  });
});

describe('parseHistoryPosition', () => {
  const reply = (pubOffsets: number[], epoch: string, top: number) => {
    const pubs = pubOffsets.map(
      (o) => `{"data":${postData(200, 'a', { team: 0, seq: o, sentAtMicros: 1 })},"offset":${o}}`,
    );
    const parts = [...(pubs.length ? [`"publications":[${pubs.join(',')}]`] : []), `"epoch":"${epoch}"`];
    if (top) parts.push(`"offset":${top}`);
    return Buffer.from(`{"id":5,"history":{${parts.join(',')}}}`);
  };

  it('continues from the newest publication of a newest-first page', () => {
    assert.deepEqual(parseHistoryPosition(reply([40, 39, 38], 'abc', 40)), {
      epoch: 'abc',
      top: 40,
      publications: 3,
      next: 40,
    });
  });

  it('continues from the last publication of a full page that does not reach the top', () => {
    assert.deepEqual(parseHistoryPosition(reply([21, 22], 'e', 30)), {
      epoch: 'e',
      top: 30,
      publications: 2,
      next: 22,
    });
  });

  it('continues from the top when nothing is new, and reads an empty stream as offset 0', () => {
    assert.deepEqual(parseHistoryPosition(reply([], 'e', 30)), { epoch: 'e', top: 30, publications: 0, next: 30 });
    assert.deepEqual(parseHistoryPosition(reply([], 'e', 0)), { epoch: 'e', top: 0, publications: 0, next: 0 });
  });

  it('reads one reply of a frame holding two, and nothing from a non-history reply', () => {
    const a = reply([7], 'one', 7);
    const b = reply([9], 'two', 9);
    const frame = Buffer.concat([a, Buffer.from('\n'), b]);
    assert.equal(parseHistoryPosition(frame, 0, a.length)?.epoch, 'one');
    assert.equal(parseHistoryPosition(frame, 0, a.length)?.next, 7);
    assert.equal(parseHistoryPosition(frame, a.length + 1)?.next, 9);
    assert.equal(parseHistoryPosition(Buffer.from('{"id":3,"presence":{}}')), undefined);
  });
});

describe('teams', () => {
  it('splits players into teams, the last one smaller', () => {
    const opts = { players: 120, teamSize: 50 };
    assert.deepEqual(
      [0, 49, 50, 119].map((i) => teamOf(i, 50)),
      [0, 0, 1, 2],
    );
    assert.deepEqual(
      [0, 1, 2, 3].map((t) => membersOf(t, opts)),
      [50, 50, 20, 0],
    );
  });

  it('owes each post to every member of its team', () => {
    assert.equal(owedDeliveries([3, 2, 5], { players: 120, teamSize: 50 }), 3 * 50 + 2 * 50 + 5 * 20);
  });
});

describe('spreadOffsets and PollSchedule', () => {
  it('spreads first polls over one interval, evenly', () => {
    const offsets = spreadOffsets(1000, 5000);
    assert.ok(offsets.every((o) => o >= 0 && o < 5000));
    // Every tenth of the interval holds about a tenth of the clients.
    const perTenth = new Array<number>(10).fill(0);
    for (const o of offsets) perTenth[Math.floor(o / 500)]! += 1;
    assert.ok(
      perTenth.every((n) => n >= 90 && n <= 110),
      perTenth.join(','),
    );
    // A team's 50 consecutive players are spread too, not bunched together.
    const team = offsets.slice(50, 100);
    assert.ok(Math.max(...team) - Math.min(...team) > 4000);
  });

  it('hands out each client once per interval, in time order, only before the end', () => {
    const offsets = [300, 0, 700];
    const s = new PollSchedule(offsets, 1000, 2500);
    // Due: 0 (client 1), 300 (0), 700 (2), 1000 (1), 1300 (0), 1700 (2), 2000 (1), 2300 (0).
    assert.equal(s.total, 8);
    const got: number[] = [];
    assert.equal(
      s.due(299, (c) => got.push(c)),
      1,
    );
    assert.equal(
      s.due(1000, (c) => got.push(c)),
      3,
    );
    assert.equal(s.done, false);
    // A stalled generator catches up at once, and nothing at or after the end is handed out.
    assert.equal(
      s.due(10_000, (c) => got.push(c)),
      4,
    );
    assert.deepEqual(got, [1, 0, 2, 1, 0, 2, 1, 0]);
    assert.equal(s.done, true);
    assert.equal(
      s.due(20_000, (c) => got.push(c)),
      0,
    );
  });

  it('with many clients, each polls once per interval', () => {
    const s = new PollSchedule(spreadOffsets(37, 2000), 2000, 6000);
    const perClient = new Array<number>(37).fill(0);
    s.due(5999, (c) => (perClient[c]! += 1));
    assert.ok(perClient.every((n) => n === 3));
    assert.equal(s.total, 37 * 3);
  });
});

describe('cpuPercentPoints', () => {
  it('turns cumulative readings into % of one core per interval', () => {
    const points = cpuPercentPoints(
      [
        { atMs: 1000, cpuMicros: 0 },
        { atMs: 1500, cpuMicros: 250_000 },
        { atMs: 2000, cpuMicros: 260_000 },
        { atMs: 2000, cpuMicros: 270_000 },
      ],
      1000,
    );
    assert.deepEqual(points, [
      [0, 50],
      [0.5, 2],
    ]);
  });
});

describe('parseProcIo', () => {
  it('reads rchar and wchar', () => {
    const text = 'rchar: 6976\nwchar: 1000008\nsyscr: 10\nsyscw: 3\nread_bytes: 0\nwrite_bytes: 0\n';
    assert.deepEqual(parseProcIo(text), { readBytes: 6976, writtenBytes: 1000008 });
  });

  it('throws on a text without them', () => {
    assert.throws(() => parseProcIo('syscr: 1\n'), /rchar/);
  });
});

describe('judgeBoard', () => {
  const lat = (p99: number): LatencySummary => ({ count: 10, mean: p99, p50: p99, p90: p99, p99, p999: p99, max: p99 });
  const loss = (missing: number): LossSummary => ({
    expected: 100,
    missing,
    subscribersWithLoss: missing > 0 ? 1 : 0,
    maxMissingPerSubscriber: missing,
    duplicates: 0,
    outOfOrder: 0,
    stale: 0,
  });
  const mode = (m: BoardMode, cpu: number, p99: number, missing = 0, apiErrors = 0): ModeResult => ({
    mode: m,
    published: 10,
    apiErrors,
    apiSkipped: 0,
    owed: 100,
    seen: 100 - missing,
    missing: loss(missing),
    latencyMs: lat(p99),
    window: {
      seconds: 10,
      owed: 100,
      serverCpuPercent: cpu,
      loadgenCpuPercent: 5,
      loadgenLoopDelayMs: { p99: 1, max: 2 },
      serverBytesWritten: 1000,
      clientBytesReceived: 1000,
    },
    serverCpuMicrosPerPostReader: cpu,
    serverBytesPerPostReader: 10,
    disconnected: {},
  });
  const failed = (checks: ReturnType<typeof judgeBoard>) => checks.filter((c) => !c.pass).map((c) => c.name);

  it('passes a fast, lossless push that costs less than polling', () => {
    assert.deepEqual(failed(judgeBoard(mode('push', 3, 20), mode('poll', 30, 2600), undefined, 100)), []);
  });

  it('fails a slow push, a lost delivery, a poller miss, an API error, and push costing more', () => {
    assert.deepEqual(failed(judgeBoard(mode('push', 3, 150), mode('poll', 30, 2600), undefined, 100)), [
      'push: delivery latency p99',
    ]);
    assert.deepEqual(failed(judgeBoard(mode('push', 3, 20, 1), mode('poll', 30, 2600), undefined, 100)), [
      'push: post × player deliveries lost',
    ]);
    assert.deepEqual(failed(judgeBoard(mode('push', 3, 20), mode('poll', 30, 2600, 2), undefined, 100)), [
      'poll: post × player pairs never seen in a reply',
    ]);
    assert.deepEqual(failed(judgeBoard(mode('push', 30, 20), mode('poll', 30, 2600), undefined, 100)), [
      'server CPU: push below poll',
    ]);
    assert.deepEqual(failed(judgeBoard(mode('push', 3, 20, 0, 1), mode('poll', 30, 2600), undefined, 100)), [
      'posts the server API refused or lost (all modes)',
    ]);
  });

  it('checks poll-since misses and counts its API errors, when it ran', () => {
    const push = mode('push', 3, 20);
    const poll = mode('poll', 30, 2600);
    assert.deepEqual(failed(judgeBoard(push, poll, mode('poll-since', 8, 2600), 100)), []);
    assert.deepEqual(failed(judgeBoard(push, poll, mode('poll-since', 8, 2600, 3), 100)), [
      'poll-since: post × player pairs never seen in a reply',
    ]);
    assert.deepEqual(failed(judgeBoard(push, poll, mode('poll-since', 8, 2600, 0, 2), 100)), [
      'posts the server API refused or lost (all modes)',
    ]);
  });

  it('fails when no push latency was measured', () => {
    assert.ok(failed(judgeBoard(mode('push', 3, Number.NaN), mode('poll', 30, 2600), undefined, 100)).length > 0);
  });
});
