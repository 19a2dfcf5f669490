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
import { countOccurrences, scanBenchMarkers, type BenchMarker } from '../../load/bench-markers.js';
import { CommandClient, type ReplyHead } from '../../load/command-client.js';
import { CpuSampler, cpuPercentPoints } from '../../harness/cpu-sampler.js';
import { connectionToken } from '../../harness/jwt.js';
import { runPaced, sendsBefore } from '../../load/pacing.js';
import { parseHistoryPosition } from '../../load/history-position.js';
import { PollSchedule, spreadOffsets } from '../../load/poll-schedule.js';
import { readIoBytes } from '../../harness/proc-io.js';
import { readCpuMicros, watchCpu, type CpuReading } from '../../harness/proc.js';
import { fmt, fmtCounts, formatTable } from '../../harness/format.js';
import { check, type Chart, type Check, type ScenarioContext, type Series } from '../../harness/scenario.js';
import {
  LatencyRecorder,
  roundSummary,
  SeqTracker,
  summarizeLoss,
  type LatencySummary,
  type LossSummary,
} from '../../harness/stats.js';
import { type RunningServer } from '../../harness/targets.js';
import { Timeline } from '../../harness/timeline.js';
import { mapLimit, nowMicros, round, sleep, tally, waitFor } from '../../harness/util.js';
import { flags } from './options.js';

/** BoardMode is how players read their board. */
export type BoardMode = 'push' | 'poll' | 'poll-since';

/** BoardOptions size the scenario. */
export interface BoardOptions {
  players: number;
  teamSize: number;
  /** Teams: ceil(players / teamSize); the last may be smaller. */
  teams: number;
  /** Seconds between two posts to one team's board. */
  postIntervalS: number;
  /** Bytes of each post's JSON data. */
  postBytes: number;
  /** Seconds of posting measured (after the warm-up). */
  seconds: number;
  /**
   * Seconds of posting before the measured window, so that it sees the steady state: every
   * poller has polled since posting began, and replies carry posts as they will throughout.
   */
  warmupS: number;
  /** Seconds between two polls of one player. */
  pollIntervalS: number;
  /** Publications per poll (history limit), and posts prefilled per board. */
  page: number;
  /** Publications the board keeps (namespace history_size). */
  historySize: number;
  /** Push delivery latency p99 must stay within this. */
  p99LimitMs: number;
  /** How long deliveries and poll replies may still arrive after their window. */
  graceMs: number;
  /** CPU sampling interval of the charts. */
  sampleMs: number;
  connectConcurrency: number;
  /** Modes run, in order, each on a fresh server. */
  modes: BoardMode[];
}

/** PollCounts tallies the polls of a poll mode. */
export interface PollCounts {
  sent: number;
  ok: number;
  /** Error replies by code (111: refused, the server shedding load). */
  errors: Record<string, number>;
  /** Polls without a reply when the grace period ended. */
  timeouts: number;
  /** Polls not sent because the player's connection was closed. */
  notSent: number;
  /** Publications carried per successful reply, on average (new or not). */
  postsPerReply: number;
  /** Posts a player saw for the first time, per successful reply, on average. */
  newPostsPerReply: number;
  replyLatencyMs: LatencySummary;
}

/** ModeResult is one mode's outcome. */
export interface ModeResult {
  mode: BoardMode;
  /** Posts published (sent to the API) over all teams. */
  published: number;
  apiErrors: number;
  apiSkipped: number;
  apiLastError?: string;
  /** Post × reader pairs owed: Σ over teams of posts × members. */
  owed: number;
  /** Owed pairs that arrived (push) or were seen in a poll reply (poll). */
  seen: number;
  /** Exact misses per player (push: lost deliveries; poll: posts never in a reply). */
  missing: LossSummary;
  /** push: delivery latency; poll: staleness (first reply containing the post − send time). */
  latencyMs: LatencySummary;
  polls?: PollCounts;
  /** Over the measured window (the posting after the warm-up). */
  window: CpuReading & {
    seconds: number;
    /** Post × reader pairs owed for the posts published in the window. */
    owed: number;
    serverBytesWritten: number;
    clientBytesReceived: number;
  };
  /** Server CPU per post × reader owed in the window, µs. */
  serverCpuMicrosPerPostReader: number;
  /** Server bytes written per post × reader owed in the window. */
  serverBytesPerPostReader: number;
  /** Players closed by the end, by close code. */
  disconnected: Record<string, number>;
}

/** BoardResult is the whole scenario's outcome. */
export interface BoardResult {
  push: ModeResult;
  poll: ModeResult;
  pollSince?: ModeResult;
  /** Server CPU over the window, ÷ push's. */
  cpuRatio: { poll: number; pollSince?: number };
  /** Server bytes written over the window, ÷ push's. */
  bytesRatio: { poll: number; pollSince?: number };
}

/** What a mode's run leaves for the charts. */
interface ModeTrace {
  timeline: Timeline;
  cpu: Array<[number, number]>;
}

/** Most poll intervals polling goes on after the last post, for posts a refused poll delayed. */
const POLL_TAIL_INTERVALS = 3;
/** Timeline buckets (rates and percentiles over time); CPU is sampled separately. */
const TIMELINE_BUCKET_MS = 1000;
/** A reply's publications each start with this (Bulwark encodes `{"data":…,"offset":N}`). */
const DATA_KEY = Buffer.from('{"data":');
const TEXT =
  'Rally at the east gate when the event opens. Tanks hold the bridge, healers stay behind the second line, ' +
  'scouts report the boss spawn in team chat. Save your stamina potions for the final wave and do not chase stragglers. ';

/** channelOf names team t's board. */
export const channelOf = (team: number): string => `board:team.${team}`;

/** teamOf is player i's team. */
export const teamOf = (player: number, teamSize: number): number => Math.floor(player / teamSize);

/** membersOf is how many players team t has. */
export function membersOf(team: number, opts: Pick<BoardOptions, 'players' | 'teamSize'>): number {
  return Math.max(0, Math.min(opts.teamSize, opts.players - team * opts.teamSize));
}

/**
 * postData encodes one board post of about `bytes` bytes: the bench markers first (when
 * `marker` is given; prefilled posts have none), then an author and text, as a real board entry.
 */
export function postData(
  bytes: number,
  author: string,
  marker?: Omit<BenchMarker, 'channel'> & { team: number },
): string {
  const head = marker
    ? `{"bch":${marker.team},"bseq":${marker.seq},"bts":${marker.sentAtMicros},"author":"${author}","text":"`
    : `{"author":"${author}","text":"`;
  const want = Math.max(0, bytes - head.length - 2);
  return `${head}${TEXT.repeat(Math.ceil(want / TEXT.length)).slice(0, want)}"}`;
}

/**
 * firstSightings marks the posts of one poll reply (`markers`) as seen by a player of `team`
 * (`seen`) and returns the staleness, ms, of those the player had not seen before: reply
 * receive time `atMs` − the post's send time (both on the clock of `performance.now()`),
 * oldest post first. Posts of another channel are ignored.
 */
export function firstSightings(
  seen: SeqTracker,
  team: number,
  markers: readonly BenchMarker[],
  atMs: number,
): number[] {
  const out: number[] = [];
  // Oldest first (a newest-first page is read in reverse), so that the tracker does not count
  // a page's order as reordering.
  for (const m of [...markers].sort((a, b) => a.seq - b.seq)) {
    if (m.channel !== team || seen.has(m.seq)) continue;
    seen.record(m.seq);
    out.push(atMs - m.sentAtMicros / 1000);
  }
  return out;
}

/** owedDeliveries is Σ over teams of posts published to it × its members. */
export function owedDeliveries(
  publishedPerTeam: readonly number[],
  opts: Pick<BoardOptions, 'players' | 'teamSize'>,
): number {
  return publishedPerTeam.reduce((n, posts, t) => n + posts * membersOf(t, opts), 0);
}

/**
 * judgeBoard applies the pass criteria: push within the latency limit and without loss, every
 * post seen by every poller, push cheaper in server CPU than polling the newest page (the
 * incident's lesson), and no post refused by the server API (which would make every mode's
 * counts wrong).
 */
export function judgeBoard(
  push: ModeResult,
  poll: ModeResult,
  pollSince: ModeResult | undefined,
  p99LimitMs: number,
): Check[] {
  const apiErrors = push.apiErrors + poll.apiErrors + (pollSince?.apiErrors ?? 0);
  return [
    check('push: delivery latency p99', push.latencyMs.p99, '<=', p99LimitMs, 'ms'),
    check('push: post × player deliveries lost', push.missing.missing, '==', 0),
    check('poll: post × player pairs never seen in a reply', poll.missing.missing, '==', 0),
    ...(pollSince
      ? [check('poll-since: post × player pairs never seen in a reply', pollSince.missing.missing, '==', 0)]
      : []),
    check(
      'server CPU: push below poll',
      push.window.serverCpuPercent,
      '<',
      poll.window.serverCpuPercent,
      '% of a core',
    ),
    check('posts the server API refused or lost (all modes)', apiErrors, '==', 0),
  ];
}

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
interface Player {
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
class Tallies {
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
async function withRetries<T>(attempts: number, fn: () => Promise<T>): Promise<T> {
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
async function prefill(api: ServerApi, opts: BoardOptions): Promise<void> {
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
async function connectPlayers(
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

async function connectSubscriber(server: RunningServer, team: number, user: string, t: Tallies): Promise<Player> {
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

async function connectPoller(
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
async function postLoop(
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

/** pollBody is the newest-page poll of team t's board (newest first). */
export const pollBody = (team: number, page: number): string =>
  `"history":{"channel":"${channelOf(team)}","limit":${page},"reverse":true}`;

/** pollSinceBody asks for what team t's board got after `offset` of `epoch`, oldest first. */
export const pollSinceBody = (team: number, page: number, offset: number, epoch: string): string =>
  `"history":{"channel":"${channelOf(team)}","limit":${page},"since":{"offset":${offset},"epoch":${JSON.stringify(epoch)}}}`;

/**
 * The polls of a poll mode, on each player's timer until `endMs` after t0, or until `caughtUp()`
 * (every player has seen every post) once posting is over.
 */
async function pollLoop(
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

function describe(r: ModeResult): string {
  const l = r.latencyMs;
  return (
    `${r.mode}: ${fmt(r.published)} posts, ${fmt(r.seen)}/${fmt(r.owed)} post × player seen; ` +
    `${r.mode === 'push' ? 'latency' : 'staleness'} p50 ${fmt(l.p50, 1)} / p99 ${fmt(l.p99, 1)} ms; ` +
    `server ${fmt(r.window.serverCpuPercent, 1)}% CPU, ${fmt(r.window.serverBytesWritten / 2 ** 20, 2)} MiB written`
  );
}

/** resolveOptions reads the scenario's flags. */
export function resolveOptions(ctx: ScenarioContext): BoardOptions {
  const f = ctx.flags;
  const players = f.int(flags.players);
  const teamSize = f.int(flags.teamSize);
  const opts: BoardOptions = {
    players,
    teamSize,
    teams: Math.ceil(players / teamSize),
    postIntervalS: f.num(flags.postInterval),
    postBytes: f.int(flags.postBytes),
    seconds: f.num(flags.duration),
    warmupS: 0,
    pollIntervalS: f.num(flags.pollInterval),
    page: f.int(flags.page),
    historySize: f.int(flags.historySize),
    p99LimitMs: f.num(flags.p99Limit),
    graceMs: ctx.quick ? 2000 : 3000,
    sampleMs: 500,
    connectConcurrency: 100,
    modes: f.bool(flags.noPollSince) ? ['push', 'poll'] : ['push', 'poll', 'poll-since'],
  };
  opts.warmupS = f.num(flags.warmup, opts.pollIntervalS);
  if (opts.players > 15_000) throw new Error('board-event: --players must be ≤ 15000 (one process holds them all)');
  if (opts.page > opts.historySize) throw new Error('board-event: --page must be ≤ --history-size');
  const postsPerPoll = opts.pollIntervalS / opts.postIntervalS;
  if (postsPerPoll > opts.page) {
    ctx.log(
      `board-event: ${round(postsPerPoll, 1)} posts arrive per poll interval but a page holds ${opts.page}: ` +
        'newest-page pollers will miss posts',
    );
  }
  return opts;
}

export type Runs = Partial<Record<BoardMode, { result: ModeResult; trace: ModeTrace }>>;

export function charts(runs: Runs): Chart[] {
  const polls = (['poll', 'poll-since'] as const).filter((m) => runs[m]);
  const each = (modes: readonly BoardMode[], fn: (t: Timeline, mode: BoardMode) => Series): Series[] =>
    modes.flatMap((m) => {
      const run = runs[m];
      return run ? [fn(run.trace.timeline, m)] : [];
    });
  const kib = (s: Series): Series => ({ label: s.label, points: s.points.map(([x, y]) => [x, round(y / 1024, 1)]) });
  const all: BoardMode[] = ['push', ...polls];
  return [
    {
      title: 'Server CPU over time (sampled every 500 ms)',
      xLabel: 's since event start',
      yLabel: '% of one core',
      series: all.flatMap((m) => {
        const run = runs[m];
        return run ? [{ label: m, points: run.trace.cpu }] : [];
      }),
    },
    {
      title: 'Push delivery latency and poll reply latency over time (p99)',
      xLabel: 's since event start',
      yLabel: 'ms',
      series: [
        ...each(['push'], (t) => t.quantile('latency', 99, 'push: delivery p99')),
        ...each(polls, (t, m) => t.quantile('reply', 99, `${m}: reply p99`)),
      ],
    },
    {
      title: 'Polls: staleness (post sent → first reply containing it), by post send time',
      xLabel: 's since event start',
      yLabel: 'ms',
      series: [
        ...each(polls, (t, m) => t.quantile('staleness', 50, `${m}: p50`)),
        ...each(polls, (t, m) => t.quantile('staleness', 99, `${m}: p99`)),
      ],
    },
    {
      title: 'Messages per second',
      xLabel: 's since event start',
      yLabel: 'per second',
      series: [
        ...each(['push'], (t) => t.rate('published', 'posts published')),
        ...each(['push'], (t) => t.rate('deliveries', 'push: deliveries')),
        ...each(polls, (t, m) => t.rate('replies', `${m}: replies`)),
        ...each(polls, (t, m) => t.rate('seen', `${m}: posts seen first time`)),
      ],
    },
    {
      title: 'Bytes received by the players',
      xLabel: 's since event start',
      yLabel: 'KiB/s',
      series: each(all, (t, m) => kib(t.rate('bytes', m))),
    },
  ];
}

/** boardTable renders the report. */
export function boardTable(opts: BoardOptions, r: BoardResult): string {
  const modes = [r.push, r.poll, ...(r.pollSince ? [r.pollSince] : [])];
  const lat = (l: LatencySummary) => `${fmt(l.p50, 1)} / ${fmt(l.p99, 1)} / ${fmt(l.max, 1)}`;
  const vsPush = (m: ModeResult, v: number, base: number, digits: number) =>
    m.mode === 'push' || !(base > 0) ? fmt(v, digits) : `${fmt(v, digits)} (${fmt(v / base, 1)}×)`;
  const row = (label: string, f: (m: ModeResult) => string): string[] => [label, ...modes.map(f)];
  const poll = (f: (p: PollCounts) => string) => (m: ModeResult) => (m.polls ? f(m.polls) : '-');
  const rows: string[][] = [
    [
      'metric',
      'push',
      `poll: newest ${opts.page} every ${opts.pollIntervalS} s`,
      ...(r.pollSince ? [`poll-since: new posts every ${opts.pollIntervalS} s`] : []),
    ],
    row('posts published (API errors)', (m) => `${fmt(m.published)} (${fmt(m.apiErrors)})`),
    row('post × player seen / owed', (m) => `${fmt(m.seen)} / ${fmt(m.owed)}`),
    row('missed (players with misses)', (m) => `${fmt(m.missing.missing)} (${fmt(m.missing.subscribersWithLoss)})`),
    row('latency | staleness p50 / p99 / max (ms)', (m) => lat(m.latencyMs)),
    row(
      'polls sent / ok / refused (111) / timed out',
      poll((p) => `${fmt(p.sent)} / ${fmt(p.ok)} / ${fmt(p.errors['111'] ?? 0)} / ${fmt(p.timeouts)}`),
    ),
    row(
      'poll reply p50 / p99 (ms)',
      poll((p) => `${fmt(p.replyLatencyMs.p50, 1)} / ${fmt(p.replyLatencyMs.p99, 1)}`),
    ),
    row(
      'posts per reply (new to the player)',
      poll((p) => `${fmt(p.postsPerReply, 1)} (${fmt(p.newPostsPerReply, 2)})`),
    ),
    row('server CPU, % of one core (÷ push)', (m) =>
      vsPush(m, m.window.serverCpuPercent, r.push.window.serverCpuPercent, 1),
    ),
    row('server CPU per post × player, µs (÷ push)', (m) =>
      vsPush(m, m.serverCpuMicrosPerPostReader, r.push.serverCpuMicrosPerPostReader, 2),
    ),
    row('server bytes written, MiB (÷ push)', (m) =>
      vsPush(m, m.window.serverBytesWritten / 2 ** 20, r.push.window.serverBytesWritten / 2 ** 20, 2),
    ),
    row('server bytes per post × player', (m) => fmt(m.serverBytesPerPostReader)),
    row('players received (MiB)', (m) => fmt(m.window.clientBytesReceived / 2 ** 20, 2)),
    row('load generator CPU (%)', (m) => fmt(m.window.loadgenCpuPercent, 1)),
    row('players disconnected', (m) => fmtCounts(m.disconnected)),
  ];
  return [
    `board-event: ${fmt(opts.players)} players in ${fmt(opts.teams)} teams of ≤ ${opts.teamSize} (board:team.<t>); ` +
      `1 post of ${fmt(opts.postBytes)} B per team every ${opts.postIntervalS} s for ${opts.seconds} s through the server API; ` +
      `boards keep ${opts.historySize}, prefilled with ${opts.page}; fresh server per mode`,
    `  CPU and bytes over ${opts.seconds} s of posting after ${opts.warmupS} s of warm-up; ` +
      'staleness = post sent → first poll reply containing it',
    formatTable(rows),
  ].join('\n');
}
