/**
 * The neighbour scenario's flags and the {@link NeighbourOptions} they resolve to.
 *
 * @module
 */
import os from 'node:os';
import { type FlagSpec } from '../../harness/flags.js';
import { type ScenarioContext } from '../../harness/scenario.js';
import { type NeighbourOptions } from './types.js';

/** Hogs per CPU of the machine, by default. */
export const HOGS_PER_CPU = 3;

/** os.cpus() counts the machine's CPUs whatever this process is pinned to (availableParallelism does not). */
const machineCpus = (): number => Math.max(1, os.cpus().length);

export const flags = {
  hogs: {
    name: 'hogs',
    arg: 'N',
    help: "CPU-hungry neighbour processes (busy loops), on the server's CPU when pinned",
    defaultText: `${HOGS_PER_CPU} × CPUs: ${HOGS_PER_CPU * machineCpus()}`,
  },
  rate: {
    name: 'rate',
    arg: 'N',
    help: 'probes/s, each a new player: upgrade, connect, subscribe, history read',
    default: 20,
    min: 0.1,
  },
  duration: {
    name: 'duration',
    arg: 'S',
    help: 'seconds of probing per variant with the neighbours running',
    default: 20,
    quick: 5,
    min: 1,
  },
  connectLag: {
    name: 'connect-lag',
    arg: 'D',
    help: 'protection.shedding.connect_lag of both variants',
    defaultText: "50ms, the server's",
    default: '50ms',
  },
  readLag: {
    name: 'read-lag',
    arg: 'D',
    help: 'protection.shedding.read_lag of both variants',
    defaultText: "100ms, the server's",
    default: '100ms',
  },
} satisfies Record<string, FlagSpec>;

/** lagMs reads a shedding threshold given as "<n>ms" or "<n>s" (what both the flag and Bulwark accept). */
export function lagMs(flag: string, text: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s)$/.exec(text.trim());
  if (!m) throw new Error(`--${flag} must be a duration such as 50ms or 0.1s, got "${text}"`);
  const ms = Number(m[1]) * (m[2] === 's' ? 1000 : 1);
  if (!(ms > 0)) throw new Error(`--${flag} must be above 0, got "${text}"`);
  return ms;
}

/** neighbourOptions resolves the flags; the hogs go to `serverCpu` when the server is pinned. */
export function neighbourOptions(
  ctx: Pick<ScenarioContext, 'quick' | 'flags'>,
  serverCpu: number | undefined,
): NeighbourOptions {
  const f = ctx.flags;
  const connectLag = f.str(flags.connectLag).trim();
  const readLag = f.str(flags.readLag).trim();
  return {
    hogs: f.int(flags.hogs, HOGS_PER_CPU * machineCpus()),
    hogsCpu: serverCpu ?? null,
    rate: f.num(flags.rate),
    seconds: f.num(flags.duration),
    warmupSeconds: ctx.quick ? 1 : 2,
    settleMs: 500,
    connectLag,
    connectLagMs: lagMs(flags.connectLag.name, connectLag),
    readLag,
    readLagMs: lagMs(flags.readLag.name, readLag),
    historySize: 10,
    replyTimeoutMs: 10_000,
    settleProbesMs: 11_000,
  };
}
