/**
 * Small async helpers shared by the scenarios.
 *
 * @module
 */

/** sleep resolves after `ms` milliseconds. */
export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** nowMicros is `performance.now()` as integer microseconds: the clock publish timestamps use. */
export function nowMicros(): number {
  return Math.round(performance.now() * 1000);
}

/**
 * waitFor polls `done` every `intervalMs` until it returns true or `timeoutMs` passes;
 * resolves to whether it became true.
 */
export async function waitFor(done: () => boolean, timeoutMs: number, intervalMs = 10): Promise<boolean> {
  const deadline = performance.now() + timeoutMs;
  while (!done()) {
    if (performance.now() >= deadline) return false;
    await sleep(intervalMs);
  }
  return true;
}

/**
 * mapLimit runs `fn` over `count` indices with at most `limit` in flight, and resolves once
 * all settled. Errors are handed to `onError` and do not stop the others.
 */
export async function mapLimit(
  count: number,
  limit: number,
  fn: (index: number) => Promise<void>,
  onError: (index: number, err: unknown) => void,
): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < count) {
      const i = next++;
      try {
        await fn(i);
      } catch (err) {
        onError(i, err);
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, count) }, worker));
}

/** round rounds to `digits` decimal places (for readable JSON). */
export function round(value: number, digits = 2): number {
  if (!Number.isFinite(value)) return value;
  const f = 10 ** digits;
  return Math.round(value * f) / f;
}

/** tally counts how often each defined value occurs, e.g. close codes: `{"3008": 5, "1006": 2}`. */
export function tally(values: Iterable<string | number | undefined>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const v of values) if (v !== undefined) out[v] = (out[v] ?? 0) + 1;
  return out;
}
