/**
 * The capacity model: turns a launch forecast (forecast.ts) and measured per-core costs
 * (coefficients.ts) into machines, processes, memory and Redis shards. It is arithmetic on
 * purpose — every figure in a plan can be traced to one line of docs/CAPACITY.md — and
 * conservative where the forecast is silent:
 *
 * - CPU is sized for the worse of two moments: the steady peak (deliveries, publishes, idle
 *   connections) and a deploy (every player reconnecting within the window while the game goes
 *   on), each at `target_cpu` of a core;
 * - one process per core (Node.js runs JavaScript on one thread), and no process holds more
 *   connections than its open-file limit allows (as admission enforces);
 * - memory fills at most 80 % of a machine;
 * - Redis load counts the commands of publishes, of fan-out to every node holding subscribers,
 *   of presence refreshes and of subscribes during a deploy.
 *
 * @module
 */
import type { Coefficients } from './coefficients.js';
import type { Forecast } from './forecast.js';

/** MEMORY_FILL is the share of a machine's memory a plan may use (the rest: OS, page cache, spikes). */
export const MEMORY_FILL = 0.8;
/** Redis commands of one publish into history (the engine's script: stream add, trim, expire, meta, publish). */
export const REDIS_COMMANDS_PER_HISTORY_PUBLISH = 5;
/** Redis commands of one presence refresh (the engine's script: sorted set and hash). */
export const REDIS_COMMANDS_PER_PRESENCE_UPDATE = 2;

/** HEAP_WARNING_MIB: above this per process, Node.js's default heap limit (about 4 GiB) comes near. */
export const HEAP_WARNING_MIB = 3072;

/** Load is what the forecast asks of the cluster per second at the peak. */
export interface Load {
  connectsPerSecond: number;
  subscriptions: number;
  publicationsPerSecond: number;
  deliveriesPerSecond: number;
}

/** CoreDemand is the cores (fully busy) each kind of work needs. */
export interface CoreDemand {
  deliveries: number;
  publishes: number;
  idleConnections: number;
  connects: number;
  /** deliveries + publishes + idle connections. */
  steady: number;
  /** steady + connects: a deploy's reconnects while the game goes on. */
  deploy: number;
}

/** Plan is the model's answer. */
export interface Plan {
  forecast: Forecast;
  load: Load;
  /** Cores kept fully busy by each kind of work. */
  cores: CoreDemand;
  /** Processes (one per core) needed for CPU and for open files, and how many the plan runs. */
  processes: { forCpu: number; forOpenFiles: number; total: number };
  /** Connections one process may hold under the open-file limit. */
  connectionsPerProcessLimit: number;
  memory: { perProcessMib: number; totalGib: number };
  /** Machines: for the peak, plus the spares. */
  nodes: { forPeak: number; spare: number; total: number; processesPerNode: number };
  /** Redis commands per second and shards (0 for the memory engine). */
  redis: { commandsPerSecond: number; shards: number };
  /** Why the plan cannot run as asked (the memory engine on more than one process), if so. */
  problems: string[];
  /** The reasoning a reader should check against their own game. */
  assumptions: string[];
}

/** plan computes a {@link Plan} for `f` from the costs `c`. */
export function plan(f: Forecast, c: Coefficients): Plan {
  const connectsPerSecond = f.connects_per_second > 0 ? f.connects_per_second : f.peak_ccu / f.reconnect_window;
  const publicationsPerSecond = (f.peak_ccu * f.messages_per_player_per_minute) / 60 + f.api_publishes_per_second;
  const load: Load = {
    connectsPerSecond,
    subscriptions: f.peak_ccu * f.subscriptions_per_player,
    publicationsPerSecond,
    deliveriesPerSecond: publicationsPerSecond * f.audience,
  };

  const perDeliveryUs = c.cpuPerDeliveryUs.value * (f.engine === 'redis' ? c.redisDeliveryFactor.value : 1);
  const perConnectUs = c.cpuPerConnectUs.value + (f.subscriptions_per_player - 1) * c.cpuPerExtraSubscribeUs.value;
  const deliveries = (load.deliveriesPerSecond * perDeliveryUs) / 1e6;
  const publishes = (publicationsPerSecond * c.cpuPerApiPublishUs.value) / 1e6;
  const idleConnections = (f.peak_ccu * c.cpuPerIdleConnectionUsPerS.value) / 1e6;
  const connects = (connectsPerSecond * perConnectUs) / 1e6;
  const steady = deliveries + publishes + idleConnections;
  const cores: CoreDemand = { deliveries, publishes, idleConnections, connects, steady, deploy: steady + connects };

  const connectionsPerProcessLimit = Math.floor((f.fd_limit - 64) / f.fd_headroom);
  const forCpu = Math.max(1, Math.ceil(cores.deploy / f.target_cpu));
  const forOpenFiles = Math.ceil(f.peak_ccu / connectionsPerProcessLimit);
  const connectionKib =
    c.memoryPerConnectionKib.value + (f.subscriptions_per_player - 1) * c.memoryPerExtraSubscriptionKib.value;
  const connectionsGib = (f.peak_ccu * connectionKib) / 1024 / 1024;
  const clustered = f.engine === 'redis';
  // Every machine runs one process per core; the connections' memory is shared among them all.
  const processesPerNode = clustered ? f.cores_per_node : 1;
  const usableGib = f.memory_per_node * MEMORY_FILL;
  const baselineGib = (processesPerNode * c.memoryPerProcessMib.value) / 1024;
  if (baselineGib >= usableGib) {
    throw new RangeError(
      `memory_per_node ${f.memory_per_node} GiB cannot hold ${processesPerNode} idle processes of ${c.memoryPerProcessMib.value} MiB`,
    );
  }
  const forCpuAndFiles = Math.ceil(Math.max(forCpu, forOpenFiles) / processesPerNode);
  const forMemory = Math.ceil(connectionsGib / (usableGib - baselineGib));
  const forPeak = Math.max(1, forCpuAndFiles, forMemory);
  const everyProcess = clustered ? forPeak * processesPerNode : 1;
  const processes = { forCpu, forOpenFiles, total: everyProcess };
  const memory = {
    perProcessMib: c.memoryPerProcessMib.value + (connectionsGib * 1024) / everyProcess,
    totalGib: connectionsGib + (everyProcess * c.memoryPerProcessMib.value) / 1024,
  };

  const problems: string[] = [];
  const needs = Math.max(forCpu, forOpenFiles, clustered ? 1 : forMemory);
  if (!clustered && (needs > 1 || f.spare_nodes > 0)) {
    problems.push(
      `the memory engine runs one process without spares; the peak needs ${needs} process(es)${f.spare_nodes > 0 ? ` and ${f.spare_nodes} spare machine(s)` : ''}: use engine "redis"`,
    );
  }
  if (memory.perProcessMib > HEAP_WARNING_MIB) {
    problems.push(
      `each process would hold ${Math.round(memory.perProcessMib)} MiB, past Node.js's default heap limit: more cores_per_node or nodes, or NODE_OPTIONS=--max-old-space-size`,
    );
  }
  const nodes = {
    forPeak: clustered ? forPeak : 1,
    spare: clustered ? f.spare_nodes : 0,
    total: clustered ? forPeak + f.spare_nodes : 1,
    processesPerNode,
  };

  const redis = clustered ? redisLoad(f, load, everyProcess, c) : { commandsPerSecond: 0, shards: 0 };
  return {
    forecast: f,
    load,
    cores,
    processes,
    connectionsPerProcessLimit,
    memory,
    nodes,
    redis,
    problems,
    assumptions: assumptions(f, connectsPerSecond),
  };
}

/** redisLoad counts the Redis commands per second of the peak and of a deploy, and the shards they need. */
function redisLoad(f: Forecast, load: Load, processes: number, c: Coefficients): Plan['redis'] {
  const perPublish = f.history ? REDIS_COMMANDS_PER_HISTORY_PUBLISH : 1;
  // Redis writes each publication to every process subscribed to its channel: at most one per
  // subscriber, at most every process.
  const fanout = Math.min(processes, f.audience);
  const publishes = load.publicationsPerSecond * (perPublish + fanout);
  const presence =
    (load.subscriptions * f.presence_share * REDIS_COMMANDS_PER_PRESENCE_UPDATE) / f.presence_update_interval;
  // A subscribe during a deploy: presence added, and with history the stream position read for recovery.
  const perSubscribe = f.presence_share * REDIS_COMMANDS_PER_PRESENCE_UPDATE + (f.history ? 1 : 0);
  const subscribes = load.connectsPerSecond * f.subscriptions_per_player * perSubscribe;
  const commandsPerSecond = publishes + presence + subscribes;
  const shards = Math.max(1, Math.ceil(commandsPerSecond / (c.redisCommandsPerShardPerS.value * f.target_cpu)));
  return { commandsPerSecond, shards };
}

function assumptions(f: Forecast, connectsPerSecond: number): string[] {
  return [
    f.connects_per_second > 0
      ? `a deploy brings ${round(connectsPerSecond)} connects/s at most (connects_per_second)`
      : `a deploy reconnects every player evenly within ${f.reconnect_window} s: ${round(connectsPerSecond)} connects/s (give connects_per_second if your clients' backoff differs)`,
    'the game goes on during a deploy: its reconnects come on top of the steady peak',
    'every publication goes through the server API (a backend publishing for players); client publishes cost about the same',
    `each process runs at most ${Math.round(f.target_cpu * 100)} % of a core at the peak (target_cpu)`,
    `one Bulwark process per core (bulwark start --workers ${f.cores_per_node}); memory fills at most ${MEMORY_FILL * 100} % of a machine`,
    'costs were measured on loopback without TLS on a 2-core VM: re-measure on your hardware (npm run bench) and pass them with --coefficients',
  ];
}

function round(n: number): number {
  return Math.round(n);
}
