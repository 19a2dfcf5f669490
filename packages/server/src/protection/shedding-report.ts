/**
 * Reports load shedding as it turns on and off (see load-shedder.ts): the bulwark_shedding
 * gauge and transitions counter, and a log line per change — once per burst when it turns on.
 *
 * @module
 */
import type { Logger } from 'pino';
import type { Metrics } from '../metrics.js';
import type { BurstLog } from './burst-log.js';

/** SheddingReportContext is where shedding changes are told. */
export interface SheddingReportContext {
  readonly metrics: Pick<Metrics, 'shedding' | 'sheddingTransitions'>;
  readonly log: Logger;
  readonly burstLog: Pick<BurstLog, 'warn'>;
}

/** sheddingReport returns the LoadShedder's onChange handler. */
export function sheddingReport(ctx: SheddingReportContext) {
  return (level: 'connect' | 'read', on: boolean, lagMs: number, utilization: number): void => {
    ctx.metrics.shedding.set({ level }, on ? 1 : 0);
    if (!on) {
      // `shedLevel`, not `level`: pino's own `level` field must never be shadowed.
      ctx.log.info(
        { shedLevel: level, lagMs: Math.round(lagMs), utilization: round2(utilization) },
        'load shedding stopped',
      );
      return;
    }
    ctx.metrics.sheddingTransitions.inc({ level });
    ctx.burstLog.warn(
      `shedding.${level}`,
      { shedLevel: level, lagMs: Math.round(lagMs), utilization: round2(utilization) },
      level === 'connect'
        ? 'load shedding: event loop lagging, new connections refused'
        : 'load shedding: event loop lagging, history/presence/rpc refused',
    );
  };
}

const round2 = (x: number): number => Math.round(x * 100) / 100;
