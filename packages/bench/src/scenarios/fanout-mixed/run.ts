/**
 * The mixed fan-out scenario: the channel mix of a live game rather than a few equal channels.
 * Every player holds one connection subscribed to three channels:
 *
 * - a personal channel `bench:user.<i>` (1-to-1 notifications: one subscriber each),
 * - a team channel `bench:team.<t>` (players 50t … 50t+49: 50 subscribers each),
 * - the world channel `bench:world` (every player).
 *
 * One publisher connection (a game backend) publishes open-loop for a fixed time: the world
 * channel at `--world-rate`, every team channel at `--team-rate` (round-robin over the teams),
 * and `--personal-rate` publications per second in all, each to a player drawn at random. Each
 * publication carries the bench markers `{"bch":<channel index>,"bseq":<seq>,"bts":<µs>}` as in
 * `fanout`: the publisher numbers every channel's publications 1, 2, 3, …, so one
 * {@link SeqTracker} per player and class gives exact loss per class, and `bts` gives the
 * end-to-end latency (publisher and subscribers share this process's clock).
 *
 * Default rates, and why: at 5,000 players the world channel at 3/s is 15,000 deliveries/s, the
 * 100 team channels at 2/s each are 10,000/s, and 2,000 personal publications/s (0.4/s per
 * player) are 2,000/s: ~27,000 deliveries/s from ~2,200 publications/s. World and team traffic
 * are of the same order, so neither hides the other's latency, while the personal class makes
 * 91% of the publications (per-publication cost: many small channels) and 7% of the deliveries.
 *
 * Reported per class: deliveries, deliveries/s against the expected rate, latency p50/p99/max and
 * exact loss; per server: CPU per delivery (all classes), and the load generator's CPU and
 * event-loop delay (a stall there delays every delivery it holds up). Checks per class: zero
 * loss, p99 ≤ `--p99-limit`, delivered rate ≥ 95 % of the expected rate.
 *
 * Reading the latencies: one world publication is 5,000 pushes that the server writes and this
 * process reads one socket after the other, so the world class's latencies spread over the time
 * both take for 5,000 sockets (its p50 is about half of that spread) even on an idle server; the
 * raw reference server's run shows that floor for the same load.
 *
 * @module
 */
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { benchData, LeanClient } from '../../load/lean-client.js';
import { connectionToken } from '../../harness/jwt.js';
import { runPaced, sendsBefore, type PacedStream } from '../../load/pacing.js';
import { diffKernelNetCounters, readKernelNetCounters, readTreeCpuMicros } from '../../harness/proc.js';
import { fmt } from '../../harness/format.js';
import { LatencyRecorder, SeqTracker, roundSummary, summarizeLoss } from '../../harness/stats.js';
import { Timeline } from '../../harness/timeline.js';
import { mapLimit, nowMicros, round, sleep, waitFor } from '../../harness/util.js';
import {
  type MixedLayout,
  type FanoutMixedOptions,
  type ChannelClass,
  type MixedServer,
  type MixedHooks,
  type FanoutMixedResult,
  type MixedRunDetail,
  CLASSES,
  WORLD,
  TEAM,
  PERSONAL,
  type ClassResult,
} from './types.js';

/** mixedLayout lays out `players` in teams of `teamSize` (see {@link MixedLayout}). */
export function mixedLayout(players: number, teamSize: number): MixedLayout {
  const teams = Math.ceil(players / teamSize);
  const teamChannel = (t: number) => 1 + t;
  const personalChannel = (i: number) => 1 + teams + i;
  return {
    players,
    teamSize,
    teams,
    channelsOf: (i) => [personalChannel(i), teamChannel(Math.floor(i / teamSize)), 0],
    teamChannel,
    personalChannel,
    teamMembers: (t) => Math.max(0, Math.min(teamSize, players - t * teamSize)),
    channelName: (index) =>
      index === 0 ? 'bench:world' : index <= teams ? `bench:team.${index - 1}` : `bench:user.${index - 1 - teams}`,
    channelCount: 1 + teams + players,
  };
}

/** expectedDeliveryRates is each class's deliveries per second the options ask for. */
export function expectedDeliveryRates(o: FanoutMixedOptions): Record<ChannelClass, number> {
  const { teams } = mixedLayout(o.players, o.teamSize);
  return {
    personal: o.personalRate,
    // Every player is in exactly one team, so all teams together have `players` subscribers.
    team: teams > 0 ? o.teamRate * o.players : 0,
    world: o.worldRate * o.players,
  };
}

export interface Player {
  index: number;
  /** Channel index per class (personal, team, world). */
  ch: [number, number, number];
  client: LeanClient | undefined;
  trackers: [SeqTracker, SeqTracker, SeqTracker];
  wrong: number;
  dead: boolean;
}

export interface ClassState {
  recorder: LatencyRecorder;
  delivered: number;
}

/**
 * runFanoutMixed runs the scenario's measurement against a started server: sets up the
 * players, publishes (an unmeasured warm-up, then the measured window), waits for the last
 * deliveries, and measures. Everything it opens it closes.
 */
export async function runFanoutMixed(
  server: MixedServer,
  opts: FanoutMixedOptions,
  hooks: MixedHooks = {},
): Promise<{ result: FanoutMixedResult; detail: MixedRunDetail }> {
  const log = hooks.log ?? (() => undefined);
  const layout = mixedLayout(opts.players, opts.teamSize);
  const pad = 'x'.repeat(opts.padBytes);
  const seqNext = new Array<number>(layout.channelCount).fill(1);
  const players: Player[] = [];
  let classes: ClassState[] = [];
  let lastDeliveryMicros = 0;
  const timeline = new Timeline(1000);
  const resetClasses = () => {
    classes = CLASSES.map(() => ({ recorder: new LatencyRecorder(), delivered: 0 }));
  };
  resetClasses();

  const openPlayer = async (p: Player): Promise<void> => {
    const client = new LeanClient({
      url: server.wsUrl,
      protocol: server.protocol,
      onPush: (ch, seq, sentAt) => {
        const cls = ch === p.ch[WORLD] ? WORLD : ch === p.ch[TEAM] ? TEAM : ch === p.ch[PERSONAL] ? PERSONAL : -1;
        if (cls === -1) {
          p.wrong++;
          return;
        }
        const tracker = p.trackers[cls] as SeqTracker;
        tracker.record(seq);
        // A straggler of the warm-up is counted as stale by the tracker, and nowhere else.
        if (seq < tracker.first) return;
        const now = nowMicros();
        const latency = (now - sentAt) / 1000;
        const st = classes[cls] as ClassState;
        st.delivered++;
        st.recorder.add(latency);
        lastDeliveryMicros = now;
        const name = CLASSES[cls] as ChannelClass;
        timeline.count(name, 1, now / 1000);
        timeline.sample(name, latency, now / 1000);
      },
      onClose: () => {
        p.dead = true;
      },
    });
    p.client = client;
    await client.open();
    p.dead = false;
    const token = connectionToken(`player-${p.index}`, server.tokenSecret);
    const names = p.ch.map((c) => layout.channelName(c));
    if (server.protocol === 'centrifugo') {
      await client.connect(token);
      await Promise.all(names.map((n) => client.subscribe(n)));
    } else {
      // The raw server authenticates the first subscribe of a connection; the three are sent in
      // this order at once, and it reads them in order.
      await Promise.all(names.map((n, i) => client.subscribe(n, i === 0 ? token : undefined)));
    }
  };

  /**
   * Bulwark refuses upgrades with HTTP 503 while its event loop lags (load shedding), e.g. on a
   * busy machine during the connect burst. Setup is not what is measured, so a refused player
   * retries like a well-behaved client, with growing jittered backoff (~0.25 s, 0.5 s, … 4 s),
   * and the refusals are reported.
   */
  let refusedUpgrades = 0;
  const openWithRetry = async (p: Player): Promise<void> => {
    for (let attempt = 0; ; attempt++) {
      try {
        await openPlayer(p);
        return;
      } catch (err) {
        if (attempt >= 5 || !/Unexpected server response: 503/.test((err as Error).message)) throw err;
        refusedUpgrades++;
        p.client?.terminate();
        await sleep(250 * 2 ** attempt * (0.5 + Math.random()));
      }
    }
  };

  const publisher = new LeanClient({ url: server.wsUrl, protocol: server.protocol });
  try {
    // Setup: every player connects and subscribes its three channels, `concurrency` at a time.
    hooks.progress?.begin(`fanout-mixed / ${server.name}: setting up`);
    const t0 = performance.now();
    for (let i = 0; i < opts.players; i++) {
      players.push({
        index: i,
        ch: layout.channelsOf(i),
        client: undefined,
        trackers: [new SeqTracker(), new SeqTracker(), new SeqTracker()],
        wrong: 0,
        dead: true,
      });
    }
    const failures: string[] = [];
    let ready = 0;
    await mapLimit(
      players.length,
      opts.concurrency,
      async (i) => {
        await openWithRetry(players[i] as Player);
        ready++;
        hooks.progress?.update(
          ready / opts.players,
          `${fmt(ready)}/${fmt(opts.players)} players, ${fmt(ready * 3)} subscribes`,
        );
      },
      (_i, err) => failures.push((err as Error).message),
    );
    if (failures.length > 0) {
      throw new Error(`${failures.length}/${opts.players} players failed to set up; first: ${failures[0]}`);
    }
    await publisher.open();
    if (server.protocol === 'centrifugo')
      await publisher.connect(connectionToken('bench-publisher', server.tokenSecret));
    const setupSeconds = (performance.now() - t0) / 1000;
    log(
      `  ${fmt(opts.players)} players (${fmt(opts.players * 3)} subscribes) + publisher set up in ${setupSeconds.toFixed(1)} s` +
        (refusedUpgrades > 0 ? ` (${fmt(refusedUpgrades)} upgrades refused with 503 and retried)` : ''),
    );
    await sleep(300);

    let teamNext = 0;
    /** Publishes `count` publications of class `cls`, picking channels as the class does. */
    const send = (cls: number, count: number) => {
      for (let k = 0; k < count; k++) {
        let ch: number;
        if (cls === WORLD) ch = 0;
        else if (cls === TEAM) {
          ch = layout.teamChannel(teamNext);
          teamNext = teamNext + 1 === layout.teams ? 0 : teamNext + 1;
        } else ch = layout.personalChannel(Math.floor(Math.random() * opts.players));
        const seq = seqNext[ch] as number;
        seqNext[ch] = seq + 1;
        publisher.publish(layout.channelName(ch), benchData(ch, seq, nowMicros(), pad));
      }
    };

    /** One publishing phase; returns what was published per channel and when it ended. */
    const phase = async (seconds: number, label: string) => {
      const first = seqNext.slice();
      for (const p of players) {
        p.trackers = [
          new SeqTracker(first[p.ch[PERSONAL]] as number),
          new SeqTracker(first[p.ch[TEAM]] as number),
          new SeqTracker(first[p.ch[WORLD]] as number),
        ];
        p.wrong = 0;
      }
      resetClasses();
      lastDeliveryMicros = 0;
      const windowMs = seconds * 1000;
      // Indexed like CLASSES: personal, team, world.
      const rates = [opts.personalRate, opts.teamRate * layout.teams, opts.worldRate];
      const streams: PacedStream[] = rates.map((rate) => ({
        rate,
        offsetMs: 0,
        total: sendsBefore(windowMs, rate, 0),
        sent: 0,
      }));
      const start = performance.now();
      timeline.restart(start);
      hooks.progress?.begin(`fanout-mixed / ${server.name}: ${label}`);
      const ticker = setInterval(() => {
        const elapsed = performance.now() - start;
        const d = classes.map((c) => fmt(c.delivered)).join(' / ');
        hooks.progress?.update(Math.min(1, elapsed / windowMs), `delivered personal / team / world: ${d}`);
      }, 200);
      let elapsedMs: number;
      try {
        elapsedMs = await runPaced(streams, windowMs, send);
      } finally {
        clearInterval(ticker);
      }
      const published = seqNext.map((n, c) => n - (first[c] as number));
      return { start, elapsedMs, published, streams };
    };

    if (opts.warmupSeconds > 0) {
      const w = await phase(opts.warmupSeconds, 'warm-up');
      const expected = expectedTotal(players, w.published);
      await waitFor(() => classes.reduce((a, c) => a + c.delivered, 0) >= expected, opts.drainTimeoutMs, 5);
      log(`  warm-up (not measured): ${opts.warmupSeconds} s`);
    }

    // The measured window: server CPU, our CPU and loop delay, kernel counters.
    const alive0 = players.filter((p) => !p.dead).length;
    const errors0 = publisher.publishErrors;
    const acks0 = publisher.publishAcks;
    const cpu0 = readTreeCpuMicros(server.pid);
    const own0 = process.cpuUsage();
    const net0 = readKernelNetCounters();
    const loop = monitorEventLoopDelay({ resolution: 10 });
    loop.enable();
    const run = await phase(opts.seconds, 'measuring');
    const expected = expectedTotal(players, run.published);
    const drained = await waitFor(
      () => classes.reduce((a, c) => a + c.delivered, 0) >= expected,
      opts.drainTimeoutMs,
      5,
    );
    const sent = run.streams.reduce((a, s) => a + s.sent, 0);
    if (server.protocol === 'centrifugo') {
      // Publish replies trickle in after the deliveries; bounded.
      await waitFor(() => publisher.publishAcks - acks0 + publisher.publishErrors - errors0 >= sent, 1000, 5);
    }
    const end = performance.now();
    const cpu1 = readTreeCpuMicros(server.pid);
    const own = process.cpuUsage(own0);
    loop.disable();
    const kernel = diffKernelNetCounters(net0, readKernelNetCounters());

    const publishSeconds = run.elapsedMs / 1000;
    const lastMs = lastDeliveryMicros / 1000;
    const deliverySeconds = Math.max(opts.seconds, publishSeconds, (lastMs - run.start) / 1000);
    const expectedRates = expectedDeliveryRates(opts);
    const perClass = (cls: number): ClassResult => {
      const name = CLASSES[cls] as ChannelClass;
      const trackers = players.map((p) => p.trackers[cls] as SeqTracker);
      const loss = summarizeLoss(trackers, (i) => run.published[(players[i] as Player).ch[cls] as number] as number);
      const st = classes[cls] as ClassState;
      const channels = cls === WORLD ? 1 : cls === TEAM ? layout.teams : opts.players;
      return {
        channels,
        subscribersPerChannel: round(opts.players / channels, 2),
        publications: run.streams[cls]?.sent ?? 0,
        expectedDeliveries: loss.expected,
        deliveries: st.delivered,
        deliveriesPerSec: round(st.delivered / deliverySeconds, 1),
        expectedDeliveriesPerSec: round(expectedRates[name], 1),
        latencyMs: roundSummary(st.recorder.summary(), 3),
        loss,
      };
    };
    const delivered = classes.reduce((a, c) => a + c.delivered, 0);
    const serverCpu = cpu1 - cpu0;
    const wallMicros = (end - run.start) * 1000;
    const result: FanoutMixedResult = {
      target: server.name,
      players: opts.players,
      teams: layout.teams,
      teamSize: opts.teamSize,
      setup: {
        seconds: round(setupSeconds, 2),
        connections: opts.players + 1,
        subscribes: opts.players * 3,
        refusedUpgrades,
      },
      publishSeconds: round(publishSeconds, 2),
      deliverySeconds: round(deliverySeconds, 2),
      classes: { personal: perClass(PERSONAL), team: perClass(TEAM), world: perClass(WORLD) },
      wrongChannel: players.reduce((a, p) => a + p.wrong, 0),
      publishErrors: publisher.publishErrors - errors0,
      disconnects: alive0 - players.filter((p) => !p.dead).length,
      drained,
      serverCpuMicrosPerDelivery: round(delivered > 0 ? serverCpu / delivered : Number.NaN, 3),
      serverCpuPercent: round((serverCpu / wallMicros) * 100, 1),
      loadgenCpuPercent: round(((own.user + own.system) / wallMicros) * 100, 1),
      loadgenLoopDelayMs: { p99: round(loop.percentile(99) / 1e6, 1), max: round(loop.max / 1e6, 1) },
      kernel,
    };
    return {
      result,
      detail: { layout, trackers: players.map((p) => p.trackers), published: run.published, timeline },
    };
  } finally {
    publisher.terminate();
    for (const p of players) p.client?.terminate();
  }
}

/** Σ over players of what was published to each of their three channels. */
export function expectedTotal(players: readonly Player[], published: readonly number[]): number {
  let n = 0;
  for (const p of players) for (const c of p.ch) n += published[c] as number;
  return n;
}
