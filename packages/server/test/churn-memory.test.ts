/**
 * Connection churn must not grow the node's memory (issue 12, item 12): connections that
 * connect, subscribe with presence and join/leave, and drop leave nothing behind. Measured in
 * a child process with `--expose-gc` (helpers/churn-child.ts): the heap after n and after 2n
 * departures must be the same within noise, and the engine must hold no state for them.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';
import type { ChurnReport } from './helpers/churn-child.js';

const child = fileURLToPath(new URL('./helpers/churn-child.js', import.meta.url));

function runChurn(n: number): Promise<ChurnReport> {
  return new Promise((resolve, reject) => {
    execFile(process.execPath, ['--expose-gc', child, String(n)], { timeout: 60_000 }, (err, stdout, stderr) => {
      if (err) return reject(new Error(`churn child failed: ${err.message}\n${stderr}`));
      resolve(JSON.parse(stdout.trim().split('\n').pop() ?? '') as ChurnReport);
    });
  });
}

describe('connection churn (memory engine, presence and join/leave)', () => {
  it('retained heap does not grow with the number of connections that left', async () => {
    const n = 2000;
    const r = await runChurn(n);
    const [h0, h1, h2] = r.heap;
    const perLeft = (h2 - h1) / n;
    const figures = `heap ${(h0 / 1e6).toFixed(2)} → ${(h1 / 1e6).toFixed(2)} → ${(h2 / 1e6).toFixed(2)} MB; ${perLeft.toFixed(0)} B per departed connection (${r.ms} ms)`;
    assert.equal(r.subscribed, r.total, 'every connection subscribed before it left');
    assert.equal(r.hubChannels, 0, 'no channel left in the hub');
    assert.equal(r.presenceChannels, 0, 'no presence channel left');
    assert.equal(r.presenceQueued, 0, `presence expiry queue holds nothing (${r.presenceQueued}); ${figures}`);
    assert.equal(r.brokerQueued, 0, 'broker expiry queue holds nothing');
    // Before the fix: ~320 B per departed connection (the presence expiry queue kept each
    // emptied channel's state for the presence TTL). Noise after it: < 40 B.
    assert.ok(perLeft < 100, figures);
  });
});
