/**
 * The loop meter that load shedding reads (protection/loop-meter.ts): over a busy stretch of
 * the loop it reads busy, and every reading is a fresh one (on Linux the schedstat file is
 * opened once and read again from its start, not read whole each time).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { loopMeter } from '../src/protection/loop-meter.js';

/** busyFor keeps the loop running for `ms`. */
function busyFor(ms: number): void {
  const until = performance.now() + ms;
  while (performance.now() < until) {
    // spin
  }
}

describe('loopMeter', () => {
  it('reads a busy loop as busy, fresh on every reading', async () => {
    const meter = loopMeter();
    meter.mark();
    busyFor(60);
    const busy = meter.since();
    // Time waiting for a CPU is left out of busy: a neighbour on the core does not change it.
    assert.ok(busy.busy > 0.5, `busy ${busy.busy}`);
    assert.ok(busy.cpu > 0, `cpu ${busy.cpu}`);
    busyFor(60);
    const later = meter.since();
    assert.ok(later.busy > 0.5, `busy ${later.busy}`);
    meter.mark();
    await new Promise((resolve) => setTimeout(resolve, 100));
    const idle = meter.since();
    assert.ok(idle.busy < 0.5, `busy ${idle.busy} while waiting`);
  });
});
