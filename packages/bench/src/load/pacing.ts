/**
 * Open-loop pacing: sending on a fixed schedule whatever the replies do, so an overloaded
 * server sees the offered load rather than a load that politely slows down with it (what a
 * closed loop does, hiding the queueing delay it causes: "coordinated omission").
 *
 * A stream sends at `rate` per second, first at `offsetMs`, then every 1000/rate ms. K streams
 * sharing an aggregate rate R get rate R/K each and offsets i·1000/R, so that together their
 * sends are evenly spaced 1000/R ms apart instead of arriving K at a time.
 *
 * @module
 */
import { sleep } from '../harness/util.js';

/** PacedStream is one open-loop sender's schedule and progress. */
export interface PacedStream {
  /** Sends per second. */
  readonly rate: number;
  /** Time of the first send, ms after the start. */
  readonly offsetMs: number;
  /** Sends in the window (see {@link sendsBefore}). */
  readonly total: number;
  /** Sends made so far. */
  sent: number;
}

/** dueBy is how many of a stream's sends are scheduled at or before `elapsedMs`. */
export function dueBy(elapsedMs: number, rate: number, offsetMs: number): number {
  if (rate <= 0 || elapsedMs < offsetMs) return 0;
  return Math.floor(((elapsedMs - offsetMs) * rate) / 1000) + 1;
}

/** sendsBefore is how many of a stream's sends are scheduled strictly before `windowMs`. */
export function sendsBefore(windowMs: number, rate: number, offsetMs: number): number {
  if (rate <= 0 || windowMs <= offsetMs) return 0;
  return Math.ceil(((windowMs - offsetMs) * rate) / 1000);
}

/**
 * staggeredStreams splits an aggregate `rate` over `count` streams with offsets that space
 * all their sends evenly over a `windowMs` window.
 */
export function staggeredStreams(count: number, rate: number, windowMs: number): PacedStream[] {
  const each = rate / count;
  return Array.from({ length: count }, (_, i) => {
    const offsetMs = (i * 1000) / rate;
    return { rate: each, offsetMs, total: sendsBefore(windowMs, each, offsetMs), sent: 0 };
  });
}

/**
 * runPaced drives `streams` over a window of `windowMs`: every ~1 ms it hands each stream's due
 * sends to `send(streamIndex, count)`, in one call per stream and tick so the caller can batch
 * them. A tick hands out at most `maxBurstMs` worth of a stream's sends, so a stalled load
 * generator catches up gradually instead of in one burst. It stops once every stream has sent
 * its total, or at 1.5 × the window + 2 s whatever is left; resolves to the elapsed ms.
 */
export async function runPaced(
  streams: readonly PacedStream[],
  windowMs: number,
  send: (stream: number, count: number) => void,
  maxBurstMs = 100,
): Promise<number> {
  const start = performance.now();
  const hardStop = windowMs * 1.5 + 2000;
  const left = () => streams.some((s) => s.sent < s.total);
  for (;;) {
    const elapsed = performance.now() - start;
    if (!left() || elapsed > hardStop) return elapsed;
    streams.forEach((s, i) => {
      const due = Math.min(s.total, dueBy(elapsed, s.rate, s.offsetMs)) - s.sent;
      const count = Math.min(due, Math.max(1, Math.ceil((s.rate * maxBurstMs) / 1000)));
      if (count <= 0) return;
      s.sent += count;
      send(i, count);
    });
    await sleep(1);
  }
}
