/**
 * A launch forecast: what a studio expects at peak (concurrent players, how fast they reconnect
 * after a deploy, what they publish and to how many), and the machines it will run on. The keys
 * are the ones a forecast file (`bulwark plan --forecast FILE`) uses; every key but `peak_ccu`
 * has a default a typical session-based game fits, and docs/CAPACITY.md explains each.
 *
 * @module
 */
import { z } from 'zod';
import { BulwarkError } from '../errors.js';

const positive = z.number().positive();
const count = z.number().int().nonnegative();

/** forecastSchema checks a forecast; unknown keys are refused (a misspelled key would be ignored otherwise). */
export const forecastSchema = z.strictObject({
  /** Concurrent connections at the peak. */
  peak_ccu: z.number().int().positive(),
  /** After a deploy every connection reconnects within this many seconds (spread evenly). */
  reconnect_window: positive.default(60),
  /** Peak connects per second; 0: peak_ccu ÷ reconnect_window. */
  connects_per_second: z.number().nonnegative().default(0),
  /** Channels each connection subscribes to (personal, team, world…). */
  subscriptions_per_player: z.number().int().min(1).default(3),
  /** Publications each connected player causes per minute (chat lines, board posts, state changes). */
  messages_per_player_per_minute: z.number().nonnegative().default(2),
  /** Subscribers one publication reaches on average (team 5, guild 50, world thousands). */
  audience: z.number().min(1).default(20),
  /** Publications per second the backend makes besides the players' (events, world state). */
  api_publishes_per_second: z.number().nonnegative().default(0),
  /** memory: one process; redis: many processes and machines act as one. */
  engine: z.enum(['memory', 'redis']).default('redis'),
  /** Channels keep history (recovery after a reconnect): more Redis work per publication. */
  history: z.boolean().default(true),
  /** Share of subscriptions with presence (0–1): Redis refreshes every presence_update_interval. */
  presence_share: z.number().min(0).max(1).default(0),
  /** client.presence_update_interval in seconds. */
  presence_update_interval: positive.default(27),
  /** Cores of one machine: one Bulwark process per core (`bulwark start --workers N`). */
  cores_per_node: z.number().int().positive().default(4),
  /** Memory of one machine, GiB; the plan fills at most 80 % of it. */
  memory_per_node: positive.default(8),
  /** Share of each core the plan lets the load use at the peak (the rest absorbs bursts and GC). */
  target_cpu: z.number().min(0.1).max(1).default(0.6),
  /** Open-file limit of a process (LimitNOFILE); one file per connection. */
  fd_limit: z.number().int().min(1024).default(1_048_576),
  /** protection.fd_headroom: files per connection. */
  fd_headroom: z.number().min(1).default(1.25),
  /** Machines beyond what the peak needs, so losing one loses no capacity (N+1). */
  spare_nodes: count.default(1),
});

/** ForecastInput is a forecast as written (defaults may be left out). */
export type ForecastInput = z.input<typeof forecastSchema>;
/** Forecast is a checked forecast with every default filled in. */
export type Forecast = z.output<typeof forecastSchema>;

/**
 * parseForecast checks `input` and fills in the defaults; every bad key is named at once in a
 * BW_ERR_PLAN_INPUT error.
 */
export function parseForecast(input: unknown): Forecast {
  const result = forecastSchema.safeParse(input);
  if (result.success) return result.data;
  const problems = result.error.issues.map((i) => {
    const key = i.path.join('.') || '(forecast)';
    if (i.code === 'unrecognized_keys') return `unknown key(s) ${i.keys.join(', ')}`;
    if (i.code === 'invalid_type' && i.input === undefined) return `${key}: required`;
    return `${key}: ${plainWords(i)}`;
  });
  throw new BulwarkError('BW_ERR_PLAN_INPUT', `the forecast is invalid: ${problems.join('; ')}`);
}

function plainWords(issue: z.core.$ZodIssue): string {
  switch (issue.code) {
    case 'too_small':
      return `must be ${issue.inclusive === false ? 'above' : 'at least'} ${String(issue.minimum)}`;
    case 'too_big':
      return `must be ${issue.inclusive === false ? 'below' : 'at most'} ${String(issue.maximum)}`;
    case 'invalid_type':
      return `expected ${issue.expected}`;
    case 'invalid_value':
      return `must be one of ${issue.values.map((v) => JSON.stringify(v)).join(', ')}`;
    default:
      return issue.message;
  }
}
