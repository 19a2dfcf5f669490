/**
 * board-event's `shared-poll` mode (issue 15): the same players and posts, the boards served by
 * shared poll. The posts go to the game's backend — a {@link BoardOrigin} in the bench — and
 * Bulwark asks it, once per refresh cycle for the whole node and per batch, for the items the
 * players track, then pushes what is new to the players tracking it.
 *
 * - Config: namespace `board` with `subscription_type: shared_poll` (mode `versioned`: a post
 *   is written once, at version 1, and the backend answers only what is newer than the version
 *   Bulwark holds), `refresh_interval` = `--refresh-interval`, the refresh proxy pointing at
 *   the origin, and the HMAC secret the bench signs tracks with.
 * - Items: a board's `page` prefilled posts are `old:<k>` (no markers, not measured) and its
 *   posts `post:<seq>`, seq from 1 as the other modes number them. A player opens the board by
 *   tracking the board's keys — the prefilled ones and the slots of every post the event will
 *   bring (keys are sequential per board, so its backend signs them ahead) — in one signed
 *   batch ({@link boardKeys}).
 * - Players: raw-WebSocket JSON clients ({@link SharedPollClient}). Staleness of a post for a
 *   player = the receipt of the first frame carrying it (the track reply or a push) − its
 *   write to the backend; expected ≈ uniform over one refresh interval.
 * - The origin counts refresh requests and items asked over the measured window (the same
 *   window as the other modes: `seconds` of posting after the warm-up); requests at connect
 *   (the players' tracks fetching keys nobody has a value of yet) are counted apart.
 *
 * @module
 */
import { randomBytes } from 'node:crypto';
import { CpuSampler, cpuPercentPoints } from '../../harness/cpu-sampler.js';
import { fmt } from '../../harness/format.js';
import { readIoBytes } from '../../harness/proc-io.js';
import { readCpuMicros, watchCpu, type CpuReading } from '../../harness/proc.js';
import { type ScenarioContext } from '../../harness/scenario.js';
import { roundSummary, SeqTracker, summarizeLoss } from '../../harness/stats.js';
import { onFreshBulwark, type RunningServer } from '../../harness/targets.js';
import { mapLimit, nowMicros, round, sleep, tally, waitFor } from '../../harness/util.js';
import { runPaced, sendsBefore } from '../../load/pacing.js';
import { SharedPollClient } from '../../load/shared-poll-client.js';
import { signTrack } from '../../load/track-signature.js';
import { BoardOrigin, type BoardOriginStats } from '../../servers/board-origin.js';
import { channelOf, firstSightings, membersOf, owedDeliveries, postData, teamOf } from './boards.js';
import { describe } from './report.js';
import { Tallies, withRetries, type Player } from './run.js';
import type { BoardOptions, ModeResult, ModeTrace, OriginCounts } from './types.js';

/** postsPerBoard is the most posts one board gets over the warm-up and the window. */
export function postsPerBoard(opts: Pick<BoardOptions, 'warmupS' | 'seconds' | 'postIntervalS'>): number {
  return Math.ceil((opts.warmupS + opts.seconds) / opts.postIntervalS) + 1;
}

/** boardKeys are the keys a player of any board tracks: the prefilled posts, then every post's slot. */
export function boardKeys(opts: Pick<BoardOptions, 'page' | 'warmupS' | 'seconds' | 'postIntervalS'>): string[] {
  const old = Array.from({ length: opts.page }, (_, k) => `old:${k + 1}`);
  return [...old, ...Array.from({ length: postsPerBoard(opts) }, (_, k) => `post:${k + 1}`)];
}

/** sharedPollConfig is the Bulwark config of the shared-poll mode. */
export function sharedPollConfig(
  opts: BoardOptions,
  originUrl: string,
  trackSecret: string,
  keysPerBoard: number,
): Record<string, unknown> {
  return {
    shared_poll: { hmac_secret_key: trackSecret },
    channel: {
      proxy: { shared_poll_refresh: { endpoint: originUrl, timeout: '2s' } },
      namespaces: [
        {
          name: 'board',
          subscription_type: 'shared_poll',
          allow_subscribe_for_client: true,
          shared_poll: {
            mode: 'versioned',
            refresh_interval: `${Math.round(opts.refreshIntervalS * 1000)}ms`,
            refresh_batch_size: opts.refreshBatchSize,
            max_keys_per_connection: Math.max(5000, keysPerBoard),
          },
        },
      ],
    },
  };
}

/**
 * windowCycles is the most refresh cycles that can start in a window of `seconds`: one every
 * interval, and one more where the window's edges cut two cycles short.
 */
export function windowCycles(seconds: number, refreshIntervalS: number): number {
  return Math.floor(seconds / refreshIntervalS + 1e-9) + 1;
}

/**
 * originCounts turns the origin's counters over the window into the report's: requests per
 * second and per item, and requests per cycle and batch (at most 1 when the node asks once per
 * batch per cycle, whatever the number of players; see {@link windowCycles}).
 */
export function originCounts(
  window: BoardOriginStats,
  seconds: number,
  opts: Pick<BoardOptions, 'teams' | 'refreshIntervalS' | 'refreshBatchSize'>,
  keysPerBoard: number,
  requestsAtConnect: number,
): OriginCounts {
  const cycles = windowCycles(seconds, opts.refreshIntervalS);
  const batchesPerCycle = opts.teams * Math.ceil(keysPerBoard / opts.refreshBatchSize);
  return {
    requests: window.requests,
    requestsPerSecond: round(window.requests / seconds, 2),
    itemsAsked: window.itemsAsked,
    itemsPerRequest: round(window.itemsAsked / window.requests, 1),
    itemsAnswered: window.itemsAnswered,
    bytesAnswered: window.bytesAnswered,
    cycles,
    batchesPerCycle,
    requestsPerCycleBatch: round(window.requests / (cycles * batchesPerCycle), 3),
    requestsAtConnect,
  };
}

/** connectTracker connects one player, subscribes to its board and tracks the board's keys. */
async function connectTracker(
  server: RunningServer,
  team: number,
  user: string,
  keys: readonly string[],
  trackSecret: string,
  t: Tallies,
): Promise<Player> {
  const seen = new SeqTracker();
  const client = new SharedPollClient(server.wsUrl, (markers, now) => {
    const fresh = firstSightings(seen, team, markers, now);
    for (const ms of fresh) {
      t.latency.add(ms);
      // Charted by when the post was written: the staleness of posts written at x.
      t.timeline.sample('staleness', ms, now - ms);
    }
    t.seen += fresh.length;
    t.timeline.count('seen', fresh.length, now);
  });
  const channel = channelOf(team);
  try {
    await client.connect(user, server.tokenSecret);
    await client.subscribe(channel);
    await client.track(channel, [{ signature: signTrack(trackSecret, user, channel, keys, 0), keys }]);
  } catch (err) {
    client.terminate();
    throw err;
  }
  return {
    team,
    seen,
    bytesReceived: () => client.bytesReceived,
    closeCode: () => client.closeCode,
    isOpen: () => client.isOpen,
    terminate: () => client.terminate(),
    pending: new Map(),
  };
}

/** The posts, written to the backend: one stream per team, staggered evenly, for `durationMs`. */
async function postToOrigin(
  origin: BoardOrigin,
  opts: BoardOptions,
  seqNext: number[],
  t: Tallies,
  t0: number,
  durationMs: number,
): Promise<void> {
  const rate = 1 / opts.postIntervalS;
  const max = postsPerBoard(opts);
  const streams = Array.from({ length: opts.teams }, (_, team) => {
    const offsetMs = (team * opts.postIntervalS * 1000) / opts.teams;
    return { rate, offsetMs, total: sendsBefore(durationMs, rate, offsetMs), sent: 0 };
  });
  await runPaced(streams, durationMs, (team, count) => {
    for (let k = 0; k < count; k++) {
      const seq = seqNext[team] as number;
      // Only slots the players track (postsPerBoard leaves a spare one for timer jitter).
      if (seq > max) return;
      const author = `player-${team * opts.teamSize + (seq % membersOf(team, opts))}`;
      const data = postData(opts.postBytes, author, { team, seq, sentAtMicros: nowMicros() });
      origin.post(channelOf(team), `post:${seq}`, data);
      seqNext[team] = seq + 1;
      t.timeline.count('published');
    }
  });
  await sleep(Math.max(0, t0 + durationMs - performance.now()));
}

/** runSharedPollMode starts the board's backend and a fresh Bulwark for it, and runs the mode. */
export async function runSharedPollMode(
  opts: BoardOptions,
  ctx: ScenarioContext,
): Promise<{ result: ModeResult; trace: ModeTrace }> {
  const origin = await BoardOrigin.start();
  const trackSecret = randomBytes(24).toString('hex');
  const keys = boardKeys(opts);
  try {
    for (let team = 0; team < opts.teams; team++) {
      for (let k = 1; k <= opts.page; k++) {
        const author = `player-${team * opts.teamSize + (k % membersOf(team, opts))}`;
        origin.post(channelOf(team), `old:${k}`, postData(opts.postBytes, author));
      }
    }
    const config = sharedPollConfig(opts, origin.url, trackSecret, keys.length);
    return await onFreshBulwark(ctx.bulwark, config, 'board-event / shared-poll', ctx.log, (server) =>
      runOn(server, origin, trackSecret, keys, opts, ctx),
    );
  } finally {
    await origin.close();
  }
}

async function runOn(
  server: RunningServer,
  origin: BoardOrigin,
  trackSecret: string,
  keys: readonly string[],
  opts: BoardOptions,
  ctx: ScenarioContext,
): Promise<{ result: ModeResult; trace: ModeTrace }> {
  const players: Player[] = [];
  const t = new Tallies();
  try {
    ctx.progress.begin('board-event / shared-poll: connecting');
    const failures: string[] = [];
    await mapLimit(
      opts.players,
      opts.connectConcurrency,
      async (i) => {
        const team = teamOf(i, opts.teamSize);
        players.push(await withRetries(3, () => connectTracker(server, team, `player-${i}`, keys, trackSecret, t)));
        ctx.progress.update(players.length / opts.players, `${players.length}/${opts.players} players`);
      },
      (_i, err) => failures.push((err as Error).message),
    );
    ctx.progress.end();
    if (failures.length) throw new Error(`${failures.length}/${opts.players} players failed; first: ${failures[0]}`);
    ctx.log(
      `  ${opts.teams} boards of ${opts.page} posts at the backend; ${players.length} players track ${keys.length} keys each`,
    );
    // Let the connect burst's work (and its cold-key fetches) settle first.
    await sleep(500);
    const requestsAtConnect = origin.stats().requests;

    const seqNext = new Array<number>(opts.teams).fill(1);
    const warmupMs = opts.warmupS * 1000;
    const postMs = warmupMs + opts.seconds * 1000;
    const refreshMs = opts.refreshIntervalS * 1000;
    ctx.progress.begin('board-event / shared-poll: event');
    t.measuring = true;
    const t0 = performance.now();
    t.timeline.restart(t0);
    let originRequests = 0;
    origin.onRequest = (atMs, items) => {
      originRequests++;
      t.timeline.count('origin', 1, atMs);
      t.timeline.count('items', items, atMs);
    };
    const sampler = new CpuSampler(server.pid, opts.sampleMs);
    let ticking = true;
    const ticker = (async () => {
      while (ticking) {
        const elapsed = performance.now() - t0;
        const published = seqNext.reduce((n, s) => n + s - 1, 0);
        ctx.progress.update(
          Math.min(1, elapsed / postMs),
          `${elapsed < warmupMs ? 'warm-up: ' : ''}${fmt(published)} posts, ` +
            `${fmt(originRequests)} origin requests, ${fmt(t.seen)} seen`,
        );
        await sleep(100);
      }
    })();
    let cpuPoints: Array<[number, number]> = [];
    let measured: {
      cpu: CpuReading;
      cpuMicros: number;
      serverBytesWritten: number;
      clientBytes: number;
      owed: number;
      origin: BoardOriginStats;
    };
    const bytesNow = () => players.reduce((n, p) => n + p.bytesReceived(), 0);
    try {
      const posting = postToOrigin(origin, opts, seqNext, t, t0, postMs);
      await sleep(Math.max(0, t0 + warmupMs - performance.now()));
      const cpuDone = watchCpu(server.pid);
      const cpu0 = readCpuMicros(server.pid);
      const io0 = readIoBytes(server.pid);
      const bytes0 = bytesNow();
      const seqAt0 = seqNext.slice();
      origin.reset();
      await posting;
      measured = {
        cpu: cpuDone(),
        cpuMicros: readCpuMicros(server.pid) - cpu0,
        serverBytesWritten: readIoBytes(server.pid).writtenBytes - io0.writtenBytes,
        clientBytes: bytesNow() - bytes0,
        owed: owedDeliveries(
          seqNext.map((s, team) => s - (seqAt0[team] as number)),
          opts,
        ),
        origin: origin.stats(),
      };
      // The last posts arrive at the next cycle: wait up to two intervals and the grace.
      const owedAll = owedDeliveries(
        seqNext.map((s) => s - 1),
        opts,
      );
      await waitFor(() => t.seen >= owedAll, 2 * refreshMs + opts.graceMs);
    } finally {
      ticking = false;
      await ticker;
      ctx.progress.end();
      cpuPoints = cpuPercentPoints(sampler.stop(), t0);
    }
    const publishedPerTeam = seqNext.map((s) => s - 1);
    const result: ModeResult = {
      mode: 'shared-poll',
      published: publishedPerTeam.reduce((a, b) => a + b, 0),
      apiErrors: 0,
      apiSkipped: 0,
      owed: owedDeliveries(publishedPerTeam, opts),
      seen: t.seen,
      missing: summarizeLoss(
        players.map((p) => p.seen),
        (i) => publishedPerTeam[(players[i] as Player).team] as number,
      ),
      latencyMs: roundSummary(t.latency.summary(), 2),
      origin: originCounts(measured.origin, opts.seconds, opts, keys.length, requestsAtConnect),
      window: {
        seconds: opts.seconds,
        owed: measured.owed,
        ...measured.cpu,
        serverBytesWritten: measured.serverBytesWritten,
        clientBytesReceived: measured.clientBytes,
      },
      serverCpuMicrosPerPostReader: round(measured.cpuMicros / measured.owed, 2),
      serverBytesPerPostReader: round(measured.serverBytesWritten / measured.owed, 1),
      disconnected: tally(players.map((p) => p.closeCode())),
    };
    ctx.log(`  ${describe(result)}`);
    return { result, trace: { timeline: t.timeline, cpu: cpuPoints } };
  } finally {
    ctx.progress.end();
    origin.onRequest = undefined;
    for (const p of players) p.terminate();
  }
}
