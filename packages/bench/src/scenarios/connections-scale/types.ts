/**
 * The connections-scale scenario's shapes: its options and limits, the result, the gauges sampled.
 *
 * @module
 */
import { type KernelNetCounters } from '../../harness/proc.js';
import { type LatencySummary } from '../../harness/stats.js';

/** ConnectionsScaleOptions size the scenario. */
export interface ConnectionsScaleOptions {
  connections: number;
  workers: number;
  loadProcesses: number;
  sourceIps: number;
  /** First three octets of the source addresses, e.g. "127.31.7". */
  sourcePrefix: string;
  /** Connects in flight at once, all load processes together. */
  concurrency: number;
  channels: number;
  holdSeconds: number;
  /** Idle time before the baseline reading, and after the connects before the next one, ms. */
  baselineMs: number;
  settleMs: number;
  /** Longest wait for each of handshake, connect reply and subscribe reply, ms. */
  timeoutMs: number;
  /** Retries of a connection refused with HTTP 503. */
  retries: number;
  /** Longest connect phase, seconds: then the run goes on with what connected. */
  connectBudgetSeconds: number;
  redis: string;
  redisPrefix: string;
  capacity: FdCapacity;
  limits: ConnectionsScaleLimits;
}

/** ConnectionsScaleLimits are the pass/fail thresholds. */
export interface ConnectionsScaleLimits {
  /** Most server RSS per idle connection, KiB. */
  rssPerConnectionKiB: number;
  /** Highest handshake p99, ms. */
  handshakeP99Ms: number;
}

/** ConnectionsScaleResult is everything one run measured. */
export interface ConnectionsScaleResult {
  requested: number;
  connected: number;
  failed: number;
  /** HTTP 503 refusals (admission) that were retried. */
  rejectedRetried: number;
  /** Final errors by kind. */
  errors: Record<string, number>;
  /** Load processes that died before being told to stop. */
  loadProcessDeaths: string[];
  connectSeconds: number;
  /** Connects per second over the whole connect phase. */
  connectRate: number;
  /** Highest connects in one second. */
  peakConnectRate: number;
  /** Socket opened → subscribe confirmed, per connection (successful attempt only). */
  handshakeMs: LatencySummary;
  server: {
    processes: number;
    /** Clients per worker from the info API at the end of the hold. */
    clientsPerWorker: number[];
    rssBeforeBytes: number;
    rssAfterConnectBytes: number;
    rssAfterHoldBytes: number;
    /** (RSS after the hold − RSS before) / connected. */
    rssPerConnectionBytes: number;
    cpuMicrosPerConnect: number;
    /** The primary's share: it accepts every connection and hands it to a worker (round-robin). */
    primaryCpuMicrosPerConnect: number;
    /** Tree CPU over the connect phase, % of one core. */
    cpuPercent: number;
    /** Tree CPU over the idle hold, % of one core: what holding the connections costs (pings). */
    holdCpuPercent: number;
  };
  loadgen: {
    processes: number;
    /** All load processes' RSS before connecting. */
    rssBeforeBytes: number;
    /** Each load process's RSS at the end of the hold. */
    rssBytes: number[];
    /** (RSS after the hold − RSS before) / connected, all load processes. */
    rssPerConnectionBytes: number;
    cpuMicrosPerConnect: number;
  };
  hold: {
    seconds: number;
    /** Established connections closed before the hold began (during connects and settle). */
    closedBefore: number;
    openAtStart: number;
    openAtEnd: number;
    closedDuring: number;
    closeCodes: Record<string, number>;
    /** Connections that answered at least one server ping / pings answered. */
    pinged: number;
    pings: number;
  };
  teardown: {
    /** Time for the load processes to destroy every socket and exit. */
    closeMs: number;
    killedLoadProcesses: number;
    /** Server processes still running after the server was stopped, SIGKILLed. */
    killedServerProcesses: number;
  };
  kernel: KernelNetCounters;
}

/** Gauges sampled once a second for the charts (x = seconds since the connects began). */
export interface Gauges {
  serverRssMiB: Array<[number, number]>;
  loadRssMiB: Array<[number, number]>;
  serverCpuPercent: Array<[number, number]>;
}

/** FdCapacity is how many connections one Bulwark worker may hold, and the workers N needs. */
export interface FdCapacity {
  /** Open-file limit of the server processes (Node raises the soft limit to the hard one). */
  openFileLimit: number;
  fdHeadroom: number;
  /** floor((openFileLimit − 64) / fdHeadroom): the connection limit Bulwark sets itself. */
  perWorkerCap: number;
  /** Workers whose caps hold the connections with 10 % to spare. */
  workersNeeded: number;
}
