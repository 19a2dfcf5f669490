/**
 * The board-event scenario (incident 1: the team bulletin board that polled). At the start of a
 * battle event every team's board receives posts; the same players read them either by push
 * (subscribed to their team's board) or by polling the board's history every few seconds, as
 * the AJAX board of the incident did. Each mode runs on a fresh Bulwark with the same config,
 * players and posts; the report compares server CPU, bytes and latency.
 *
 * - Players: P connections in teams of `teamSize`; team t reads `board:team.<t>`. The `board`
 *   namespace keeps history (`historySize` posts, 5 min TTL); every board is prefilled with
 *   `page` older posts (no bench markers: not measured), as a live board has content when the
 *   event starts. The per-connection and per-user read rate limits are lifted: the pollers are
 *   the load being measured, not abusers to throttle.
 * - Posts: through the server HTTP API, one post of `postBytes` per team every `postIntervalS`
 *   (teams staggered evenly), for `seconds`. Each carries the bench markers (team, sequence
 *   number per team, send time in µs of this process's clock).
 * - push: each player subscribes to its board. Latency = receive time − send time; loss is
 *   exact per player ({@link SeqTracker}).
 * - poll: each player sends `history {channel, limit: page, reverse: true}` (the newest page,
 *   what the incident's AJAX board fetched) every `pollIntervalS`, the first at an offset spread
 *   evenly over one interval (client timers), until every player has seen every post (a poll
 *   refused by load shedding delays a post to the next poll), at most 3 intervals after the
 *   last post.
 *   Staleness of a post for a player = the receive time of the first reply that contained it −
 *   its send time ({@link firstSightings}); poll reply latency is measured too. Posts a player
 *   never saw are misses.
 * - poll-since (unless --no-poll-since): the same, but each player loads the newest page once
 *   before the event (not measured), then asks only for what is new: `history {channel, limit:
 *   page, since: {offset, epoch}}` from the last offset it saw — the way Bulwark serves clients
 *   that can only poll (from in-memory history, by offset). Same staleness, far fewer bytes;
 *   what remains is the cost of a request per player per interval.
 * - Server CPU (/proc, % of one core) and bytes the server wrote (/proc/<pid>/io wchar) over
 *   the measured window: `seconds` of posting after `warmupS` of posting (by then every poller
 *   has polled since posting began, so the window sees the steady state), the same in every
 *   mode; also per post × reader owed in the window (posts × team members), and CPU sampled
 *   every `sampleMs` for the charts. Latency, staleness and misses count every post.
 *
 * Bulwark only: the raw-ws reference server has no history.
 *
 * @module
 */
import { LeanClient } from '../../load/lean-client.js';
import { ServerApi } from '../../harness/api.js';
import { countOccurrences, scanBenchMarkers } from '../../load/bench-markers.js';
import { CommandClient, type ReplyHead } from '../../load/command-client.js';
import { CpuSampler, cpuPercentPoints } from '../../harness/cpu-sampler.js';
import { connectionToken } from '../../harness/jwt.js';
import { runPaced, sendsBefore } from '../../load/pacing.js';
import { parseHistoryPosition } from '../../load/history-position.js';
import { PollSchedule, spreadOffsets } from '../../load/poll-schedule.js';
import { readIoBytes } from '../../harness/proc-io.js';
import { readCpuMicros, watchCpu, type CpuReading } from '../../harness/proc.js';
import { fmt } from '../../harness/format.js';
import { type ScenarioContext } from '../../harness/scenario.js';
import { LatencyRecorder, roundSummary, SeqTracker, summarizeLoss } from '../../harness/stats.js';
import { type RunningServer } from '../../harness/targets.js';
import { Timeline } from '../../harness/timeline.js';
import { mapLimit, nowMicros, round, sleep, tally, waitFor } from '../../harness/util.js';
import {
  membersOf,
  channelOf,
  postData,
  teamOf,
  DATA_KEY,
  firstSightings,
  pollBody,
  pollSinceBody,
  owedDeliveries,
} from './boards.js';
import { describe } from './report.js';
import type { BoardOptions, BoardMode, ModeResult, ModeTrace } from './types.js';

/** Most poll intervals polling goes on after the last post, for posts a refused poll delayed. */
export const POLL_TAIL_INTERVALS = 3;
/** Timeline buckets (rates and percentiles over time); CPU is sampled separately. */
export const TIMELINE_BUCKET_MS = 1000;
/** boardConfig is the Bulwark config of every mode. */
export function boardConfig(opts: BoardOptions): Record<string, unknown> {
  return {
    channel: {
      namespaces: [
        {
          name: 'board',
          history_size: opts.historySize,
          history_ttl: '300s',
          allow_history_for_client: true,
          allow_subscribe_for_client: true,
        },
      ],
    },
    client: { history_max_publication_limit: Math.max(300, opts.page) },
    protection: { rate_limit: { connection: { read: { rate: 0 } }, user: { read: { rate: 0 } } } },
  };
}

/** A connected player of either mode. */
export interface Player {
  team: number;
  seen: SeqTracker;
  bytesReceived(): number;
  closeCode(): number | undefined;
  isOpen(): boolean;
  terminate(): void;
  /** Poll modes: the connection and the send time (performance.now()) of each unanswered poll, by id. */
  poller?: CommandClient;
  pending: Map<number, number>;
  /** poll-since: where the next poll continues (from the latest reply). */
  position?: { offset: number; epoch: string };
}

/** What the handlers of one mode's run write to. */
export class Tallies {
  /** Off until the event starts: replies before it (poll-since's first page) are not counted. */
  measuring = false;
  readonly timeline = new Timeline(TIMELINE_BUCKET_MS);
  readonly latency = new LatencyRecorder();
  readonly replyLatency = new LatencyRecorder();
  seen = 0;
  pollsSent = 0;
  pollsOk = 0;
  pollsNotSent = 0;
  postsCarried = 0;
  newPosts = 0;
  readonly pollErrors = new Map<number, number>();
}

/** Retries `fn` up to `attempts` times, waiting a little longer each time (a loaded machine may refuse a connect). */
export async function withRetries<T>(attempts: number, fn: () => Promise<T>): Promise<T> {
  for (let i = 1; ; i++) {
    try {
      return await fn();
    } catch (err) {
      if (i >= attempts) throw err;
      await sleep(200 * i);
    }
  }
}

/** prefill posts `page` older posts (without markers) to every board. */
export async function prefill(api: ServerApi, opts: BoardOptions): Promise<void> {
  const failures: string[] = [];
  await mapLimit(
    opts.teams * opts.page,
    16,
    (k) => {
      const team = k % opts.teams;
      const author = `player-${team * opts.teamSize + (k % membersOf(team, opts))}`;
      return api.publish(channelOf(team), postData(opts.postBytes, author));
    },
    (_k, err) => failures.push((err as Error).message),
  );
  if (failures.length) throw new Error(`prefill: ${failures.length} posts failed; first: ${failures[0]}`);
}

/** connectPlayers connects every player (into `players`, so the caller closes whatever connected). */
export async function connectPlayers(
  server: RunningServer,
  mode: BoardMode,
  opts: BoardOptions,
  tallies: Tallies,
  players: Player[],
  ctx: ScenarioContext,
): Promise<void> {
  ctx.progress.begin(`board-event / ${mode}: connecting`);
  const failures: string[] = [];
  let done = 0;
  await mapLimit(
    opts.players,
    opts.connectConcurrency,
    async (i) => {
      const team = teamOf(i, opts.teamSize);
      const user = `player-${i}`;
      const player = await withRetries(3, () =>
        mode === 'push'
          ? connectSubscriber(server, team, user, tallies)
          : connectPoller(server, mode, team, user, opts, tallies),
      );
      players.push(player);
      ctx.progress.update(++done / opts.players, `${done}/${opts.players} players`);
    },
    (_i, err) => failures.push((err as Error).message),
  );
  ctx.progress.end();
  if (failures.length) throw new Error(`${failures.length}/${opts.players} players failed; first: ${failures[0]}`);
}

export async function connectSubscriber(
  server: RunningServer,
  team: number,
  user: string,
  t: Tallies,
): Promise<Player> {
  let bytes = 0;
  const seen = new SeqTracker();
  const client = new LeanClient({
    url: server.wsUrl,
    protocol: 'centrifugo',
    onPush: (ch, seq, sentAt) => {
      if (ch !== team || seen.has(seq)) return;
      seen.record(seq);
      const now = performance.now();
      const ms = now - sentAt / 1000;
      t.latency.add(ms);
      t.seen++;
      t.timeline.sample('latency', ms, now);
      t.timeline.count('deliveries', 1, now);
    },
  });
  client.ws.on('message', (data: Buffer) => {
    bytes += data.length;
    t.timeline.count('bytes', data.length);
  });
  try {
    await client.open();
    await client.connect(connectionToken(user, server.tokenSecret));
    await client.subscribe(channelOf(team));
  } catch (err) {
    client.terminate();
    throw err;
  }
  return {
    team,
    seen,
    bytesReceived: () => bytes,
    closeCode: () => client.closeCode,
    isOpen: () => client.isOpen,
    terminate: () => client.terminate(),
    pending: new Map(),
  };
}

export async function connectPoller(
  server: RunningServer,
  mode: BoardMode,
  team: number,
  user: string,
  opts: BoardOptions,
  t: Tallies,
): Promise<Player> {
  const onReply = (head: ReplyHead, buf: Buffer, start: number, end: number) => {
    const sentAt = player.pending.get(head.id);
    if (sentAt === undefined) return;
    player.pending.delete(head.id);
    if (mode === 'poll-since' && head.errorCode === 0) {
      const pos = parseHistoryPosition(buf, start, end);
      if (pos && !(player.position && player.position.offset > pos.next)) {
        player.position = { offset: pos.next, epoch: pos.epoch };
      }
    }
    if (!t.measuring) return;
    const now = performance.now();
    t.timeline.count('bytes', end - start, now);
    if (head.errorCode !== 0) {
      t.pollErrors.set(head.errorCode, (t.pollErrors.get(head.errorCode) ?? 0) + 1);
      return;
    }
    t.pollsOk++;
    t.replyLatency.add(now - sentAt);
    t.timeline.sample('reply', now - sentAt, now);
    t.timeline.count('replies', 1, now);
    t.postsCarried += countOccurrences(buf, DATA_KEY, start, end);
    const fresh = firstSightings(player.seen, team, scanBenchMarkers(buf, start, end), now);
    for (const ms of fresh) {
      t.latency.add(ms);
      // Charted by when the post was sent: the staleness of posts sent at x.
      t.timeline.sample('staleness', ms, now - ms);
    }
    t.seen += fresh.length;
    t.newPosts += fresh.length;
    t.timeline.count('seen', fresh.length, now);
  };
  const client = new CommandClient(server.wsUrl, onReply);
  const player: Player = {
    team,
    seen: new SeqTracker(),
    bytesReceived: () => client.bytesReceived,
    closeCode: () => client.closeCode,
    isOpen: () => client.isOpen,
    terminate: () => client.terminate(),
    poller: client,
    pending: new Map(),
  };
  try {
    await client.connect(user, server.tokenSecret);
    if (mode === 'poll-since') {
      // The board's newest page once, as the client opens the board: the position to poll from.
      player.pending.set(client.send(pollBody(team, opts.page)), performance.now());
      if (!(await waitFor(() => player.position !== undefined, 15_000))) throw new Error('no first history page');
    }
  } catch (err) {
    client.terminate();
    throw err;
  }
  return player;
}

/** The posts: one stream per team, staggered evenly, for `durationMs` after t0 (resolves then). */
export async function postLoop(
  api: ServerApi,
  opts: BoardOptions,
  seqNext: number[],
  t: Tallies,
  t0: number,
  durationMs: number,
): Promise<void> {
  const rate = 1 / opts.postIntervalS;
  const streams = Array.from({ length: opts.teams }, (_, team) => {
    const offsetMs = (team * opts.postIntervalS * 1000) / opts.teams;
    return { rate, offsetMs, total: sendsBefore(durationMs, rate, offsetMs), sent: 0 };
  });
  await runPaced(streams, durationMs, (team, count) => {
    for (let k = 0; k < count; k++) {
      const seq = seqNext[team] as number;
      const author = `player-${team * opts.teamSize + (seq % membersOf(team, opts))}`;
      const data = postData(opts.postBytes, author, { team, seq, sentAtMicros: nowMicros() });
      if (api.tryPublish(channelOf(team), data)) {
        seqNext[team] = seq + 1;
        t.timeline.count('published');
      }
    }
  });
  await sleep(Math.max(0, t0 + durationMs - performance.now()));
}

/**
 * The polls of a poll mode, on each player's timer until `endMs` after t0, or until `caughtUp()`
 * (every player has seen every post) once posting is over.
 */
export async function pollLoop(
  players: readonly Player[],
  opts: BoardOptions,
  t: Tallies,
  t0: number,
  endMs: number,
  caughtUp: () => boolean,
) {
  const bodies = Array.from({ length: opts.teams }, (_, team) => pollBody(team, opts.page));
  const intervalMs = opts.pollIntervalS * 1000;
  const schedule = new PollSchedule(spreadOffsets(players.length, intervalMs), intervalMs, endMs);
  const hardStop = endMs * 1.5 + 2000;
  const send = (i: number) => {
    const p = players[i] as Player;
    if (!p.poller || !p.isOpen()) {
      t.pollsNotSent++;
      return;
    }
    const body = p.position
      ? pollSinceBody(p.team, opts.page, p.position.offset, p.position.epoch)
      : (bodies[p.team] as string);
    p.pending.set(p.poller.send(body), performance.now());
    t.pollsSent++;
    t.timeline.count('polls');
  };
  while (!schedule.done && !caughtUp() && performance.now() - t0 < hardStop) {
    schedule.due(performance.now() - t0, send);
    await sleep(2);
  }
}

/** runMode runs one mode on a fresh server and returns its result and trace. */
export async function runMode(
  server: RunningServer,
  mode: BoardMode,
  opts: BoardOptions,
  ctx: ScenarioContext,
): Promise<{ result: ModeResult; trace: ModeTrace }> {
  const api = new ServerApi(server);
  const players: Player[] = [];
  const t = new Tallies();
  try {
    await prefill(api, opts);
    await connectPlayers(server, mode, opts, t, players, ctx);
    ctx.log(
      `  ${opts.teams} boards prefilled with ${opts.page} posts; ${players.length} players connected` +
        (mode === 'push' ? ' and subscribed' : mode === 'poll-since' ? ' and loaded their board once' : ''),
    );
    // Let the connect burst's work (and the server's smoothed event-loop lag) settle first.
    await sleep(500);

    const seqNext = new Array<number>(opts.teams).fill(1);
    const warmupMs = opts.warmupS * 1000;
    const postMs = warmupMs + opts.seconds * 1000;
    // Every player polls at least once in the interval after the last post (+1 s for the API call
    // to land). A refused poll (shedding) only delays a post to the next poll, as for a real
    // client: polling goes on for up to POLL_TAIL_INTERVALS intervals, until every post was seen.
    const pollEndMs = postMs + POLL_TAIL_INTERVALS * opts.pollIntervalS * 1000 + 1000;
    let postingDone = false;
    const caughtUp = () =>
      postingDone &&
      t.seen >=
        owedDeliveries(
          seqNext.map((q) => q - 1),
          opts,
        );
    const bytesNow = () => players.reduce((n, p) => n + p.bytesReceived(), 0);
    const errors0 = api.errors;
    const skipped0 = api.skipped;
    ctx.progress.begin(`board-event / ${mode}: event`);
    t.measuring = true;
    const t0 = performance.now();
    t.timeline.restart(t0);
    const sampler = new CpuSampler(server.pid, opts.sampleMs);
    let ticking = true;
    const ticker = (async () => {
      const total = mode === 'push' ? postMs : pollEndMs;
      while (ticking) {
        const elapsed = performance.now() - t0;
        const published = seqNext.reduce((n, s) => n + s - 1, 0);
        ctx.progress.update(
          Math.min(1, elapsed / total),
          (elapsed < warmupMs ? 'warm-up: ' : '') +
            (mode === 'push'
              ? `${fmt(published)} posts, ${fmt(t.seen)} delivered`
              : `${fmt(published)} posts, ${fmt(t.pollsSent)} polls, ${fmt(t.pollsOk)} answered, ${fmt(t.seen)} seen`),
        );
        await sleep(100);
      }
    })();
    let cpuPoints: Array<[number, number]> = [];
    let measured: { cpu: CpuReading; cpuMicros: number; serverBytesWritten: number; clientBytes: number; owed: number };
    try {
      const polling = mode === 'push' ? Promise.resolve() : pollLoop(players, opts, t, t0, pollEndMs, caughtUp);
      const posting = postLoop(api, opts, seqNext, t, t0, postMs);
      // The measured window starts once every poller has polled since posting began (steady state).
      await sleep(Math.max(0, t0 + warmupMs - performance.now()));
      const cpuDone = watchCpu(server.pid);
      const cpu0 = readCpuMicros(server.pid);
      const io0 = readIoBytes(server.pid);
      const bytes0 = bytesNow();
      const seqAt0 = seqNext.slice();
      await posting;
      postingDone = true;
      const cpu = cpuDone();
      measured = {
        cpu,
        cpuMicros: readCpuMicros(server.pid) - cpu0,
        serverBytesWritten: readIoBytes(server.pid).writtenBytes - io0.writtenBytes,
        clientBytes: bytesNow() - bytes0,
        owed: owedDeliveries(
          seqNext.map((s, team) => s - (seqAt0[team] as number)),
          opts,
        ),
      };
      await polling;
      const owedAll = owedDeliveries(
        seqNext.map((s) => s - 1),
        opts,
      );
      if (mode === 'push') await waitFor(() => t.seen >= owedAll, opts.graceMs);
      else await waitFor(() => players.every((p) => p.pending.size === 0), opts.graceMs);
    } finally {
      ticking = false;
      await ticker;
      ctx.progress.end();
      cpuPoints = cpuPercentPoints(sampler.stop(), t0);
    }
    const publishedPerTeam = seqNext.map((s) => s - 1);
    const owed = owedDeliveries(publishedPerTeam, opts);
    const { cpu, cpuMicros, serverBytesWritten } = measured;
    const result: ModeResult = {
      mode,
      published: publishedPerTeam.reduce((a, b) => a + b, 0),
      apiErrors: api.errors - errors0,
      apiSkipped: api.skipped - skipped0,
      ...(api.lastError ? { apiLastError: api.lastError } : {}),
      owed,
      seen: t.seen,
      missing: summarizeLoss(
        players.map((p) => p.seen),
        (i) => publishedPerTeam[(players[i] as Player).team] as number,
      ),
      latencyMs: roundSummary(t.latency.summary(), 2),
      ...(mode !== 'push'
        ? {
            polls: {
              sent: t.pollsSent,
              ok: t.pollsOk,
              errors: Object.fromEntries(t.pollErrors),
              timeouts: players.reduce((n, p) => n + p.pending.size, 0),
              notSent: t.pollsNotSent,
              postsPerReply: round(t.postsCarried / t.pollsOk, 2),
              newPostsPerReply: round(t.newPosts / t.pollsOk, 3),
              replyLatencyMs: roundSummary(t.replyLatency.summary(), 2),
            },
          }
        : {}),
      window: {
        seconds: opts.seconds,
        owed: measured.owed,
        ...cpu,
        serverBytesWritten,
        clientBytesReceived: measured.clientBytes,
      },
      serverCpuMicrosPerPostReader: round(cpuMicros / measured.owed, 2),
      serverBytesPerPostReader: round(serverBytesWritten / measured.owed, 1),
      disconnected: tally(players.map((p) => p.closeCode())),
    };
    ctx.log(`  ${describe(result)}`);
    return { result, trace: { timeline: t.timeline, cpu: cpuPoints } };
  } finally {
    ctx.progress.end();
    for (const p of players) p.terminate();
    api.close();
  }
}
