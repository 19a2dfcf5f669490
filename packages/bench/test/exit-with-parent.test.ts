/**
 * A Bulwark the bench started must not outlive the bench, even when the bench is SIGKILLed
 * (no handler of its own runs): it would hold its port and CPU and skew the next run.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { bulwarkAvailable } from '../src/harness/targets.js';

const targets = fileURLToPath(new URL('../src/harness/targets.js', import.meta.url));

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

it('a Bulwark started by the bench exits when the bench is SIGKILLed', async (t) => {
  if (!bulwarkAvailable()) return t.skip('Bulwark is not built (npm run build)');
  // A stand-in for the bench: starts Bulwark, prints its pid, then waits to be killed.
  const script = `
    import { startServer } from ${JSON.stringify(targets)};
    const s = await startServer('bulwark', {});
    console.log(s.pid);
    setInterval(() => {}, 1000);
  `;
  const bench = spawn(process.execPath, ['--input-type=module', '-e', script], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  t.after(() => bench.kill('SIGKILL'));
  const line = await new Promise<string>((resolve, reject) => {
    createInterface({ input: bench.stdout }).once('line', resolve);
    bench.once('exit', (code) => reject(new Error(`stand-in exited first (code ${code})`)));
  });
  const pid = Number(line);
  assert.ok(pid > 0 && alive(pid), `Bulwark pid ${line} is running`);
  t.after(() => {
    if (alive(pid)) process.kill(pid, 'SIGKILL');
  });
  bench.kill('SIGKILL');
  const deadline = Date.now() + 5000;
  while (alive(pid) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  assert.equal(alive(pid), false, 'Bulwark exited once its parent was gone');
});
