import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { TimerWheel, type WheelTarget } from '../src/client/timer-wheel.js';

function target(onTimer: (now: number) => void): WheelTarget {
  return { wheelSlot: undefined, onTimer };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('TimerWheel', () => {
  it('fires a deadline once, never before it is due, within a resolution step after', async () => {
    const wheel = new TimerWheel(20);
    const due = Date.now() + 60;
    const fired: number[] = [];
    wheel.schedule(
      target((now) => fired.push(now)),
      due,
    );
    await sleep(150);
    wheel.close();
    assert.equal(fired.length, 1);
    assert.ok((fired[0] as number) >= due, 'not early');
    assert.ok((fired[0] as number) - due < 60, `late by ${(fired[0] as number) - due} ms`);
  });

  it('fires within one step after the deadline, whatever the phase it was started at', async () => {
    const step = 200;
    const wheel = new TimerWheel(step);
    // Start the wheel half a step past a boundary: a tick that ran at that phase (a free-running
    // interval started by the first schedule) fired deadlines up to two steps late.
    while (Date.now() % step !== step / 2) await new Promise<void>((r) => setImmediate(r));
    const start = Date.now();
    const late: number[] = [];
    for (let k = 0; k < 10; k++) {
      const due = start + step + k * (step / 10) + 1;
      wheel.schedule(
        target((now) => late.push(now - due)),
        due,
      );
    }
    await sleep(4 * step);
    wheel.close();
    assert.equal(late.length, 10);
    assert.ok(
      late.every((l) => l >= 0 && l <= step + 40),
      `late by ${late.join(', ')} ms (step ${step} ms)`,
    );
  });

  it('replaces a deadline on reschedule and forgets it on cancel', async () => {
    const wheel = new TimerWheel(10);
    let a = 0;
    let b = 0;
    const ta = target(() => a++);
    const tb = target(() => b++);
    wheel.schedule(ta, Date.now() + 20);
    wheel.schedule(ta, Date.now() + 400);
    wheel.schedule(tb, Date.now() + 20);
    wheel.cancel(tb);
    assert.equal(wheel.size, 1);
    await sleep(80);
    assert.equal(a, 0, 'the replaced deadline did not fire');
    assert.equal(b, 0, 'the cancelled deadline did not fire');
    wheel.close();
  });

  it('lets a target reschedule itself from onTimer', async () => {
    const wheel = new TimerWheel(10);
    let n = 0;
    const t: WheelTarget = target(() => {
      n++;
      if (n < 3) wheel.schedule(t, Date.now() + 15);
    });
    wheel.schedule(t, Date.now() + 15);
    await sleep(200);
    wheel.close();
    assert.equal(n, 3);
    assert.equal(wheel.size, 0);
  });
});
