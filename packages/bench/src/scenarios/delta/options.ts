/**
 * The delta scenario's flags and the {@link DeltaOptions} they resolve to.
 *
 * @module
 */
import { type FlagSpec } from '../../harness/flags.js';
import { type ScenarioContext } from '../../harness/scenario.js';
import type { BoardFormat } from '../../load/board-subscriber.js';
import { type DeltaOptions } from './types.js';

export const flags = {
  format: { name: 'format', arg: 'LIST', help: 'json, protobuf or both', default: 'both' },
  subscribers: { name: 'subscribers', arg: 'N', help: '', default: 2000, quick: 100, min: 1 },
  channels: { name: 'channels', arg: 'N', help: '', default: 20, quick: 5, min: 1 },
  rate: { name: 'rate', arg: 'N', help: 'publications/s, all channels', default: 200, quick: 50, min: 1 },
  duration: { name: 'duration', arg: 'S', help: 'measured seconds per run', default: 15, quick: 2, min: 1 },
  cells: { name: 'cells', arg: 'N', help: 'cells of each board (16 ≈ 2 KB of JSON)', default: 16, min: 1 },
} satisfies Record<string, FlagSpec>;

/** deltaOptions resolves the flags. */
export function deltaOptions(ctx: Pick<ScenarioContext, 'quick' | 'flags'>): DeltaOptions {
  const f = ctx.flags;
  const format = f.str(flags.format);
  const formats: BoardFormat[] = format === 'both' ? ['json', 'protobuf'] : [];
  for (const name of format === 'both' ? [] : format.split(',')) {
    if (name !== 'json' && name !== 'protobuf') throw new Error(`delta: --format ${name}: json, protobuf or both`);
    formats.push(name);
  }
  const o: DeltaOptions = {
    formats,
    subscribers: f.num(flags.subscribers),
    channels: f.num(flags.channels),
    rate: f.num(flags.rate),
    seconds: f.num(flags.duration),
    warmupSeconds: ctx.quick ? 0 : 3,
    cells: f.num(flags.cells),
    drainTimeoutMs: ctx.quick ? 2000 : 5000,
    connectConcurrency: 100,
  };
  if (o.subscribers % o.channels !== 0) throw new Error('delta: --subscribers must be a multiple of --channels');
  return o;
}
