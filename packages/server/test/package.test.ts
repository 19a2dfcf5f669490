/**
 * The package a studio deploys: `npm pack` of the server installs into an empty folder (its
 * dependencies from the npm cache or registry) and runs from there with `npx bulwark`: the
 * version, and `start --demo` serving the demo page and the probes. Skipped when npm cannot
 * install (no registry and no cache), unless BULWARK_REQUIRE_SERVICES=1.
 */
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { it } from 'node:test';
import { version } from '../src/version.js';
import { withTimeout } from './helpers/server.js';

const run = promisify(execFile);
const serverDir = fileURLToPath(new URL('../../', import.meta.url));

it('npm pack installs into an empty folder and runs with npx bulwark', { timeout: 120_000 }, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'bulwark-pack-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  await run('npm', ['pack', '--pack-destination', dir], { cwd: serverDir });
  const tarball = readdirSync(dir).find((f) => f.endsWith('.tgz'));
  assert.ok(tarball, 'npm pack wrote a tarball');
  const app = join(dir, 'app');
  await run('mkdir', [app]);
  writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'studio-app', private: true }));
  try {
    await run('npm', ['install', '--prefer-offline', '--no-audit', '--no-fund', join(dir, tarball)], { cwd: app });
  } catch (err) {
    if (process.env['BULWARK_REQUIRE_SERVICES'] === '1') throw err;
    t.skip(`npm could not install the package's dependencies: ${(err as Error).message.split('\n')[0]}`);
    return;
  }

  const v = await run('npx', ['bulwark', '--version'], { cwd: app });
  assert.equal(v.stdout.trim(), version);

  const proc = spawn('npx', ['bulwark', 'start', '--demo', '-p', '0'], { cwd: app, detached: true });
  t.after(() => {
    try {
      process.kill(-proc.pid!, 'SIGKILL');
    } catch {
      // already gone
    }
  });
  let stderr = '';
  proc.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  const port = await withTimeout(
    new Promise<number>((resolve, reject) => {
      proc.stderr.on('data', () => {
        const m = /listening on http:\/\/[^\s:]+:(\d+)/.exec(stderr);
        if (m) resolve(Number(m[1]));
      });
      proc.once('exit', (code) => reject(new Error(`exited with ${code}: ${stderr}`)));
    }),
    20_000,
    'the installed bulwark to listen',
  );
  const page = await fetch(`http://127.0.0.1:${port}/`);
  assert.equal(page.status, 200);
  assert.match(await page.text(), /<html/i);
  assert.equal((await fetch(`http://127.0.0.1:${port}/health`)).status, 200);
  const client = await fetch(`http://127.0.0.1:${port}/demo/centrifuge.js`);
  assert.equal(client.status, 200, 'the demo page finds the SDK inside the installed package');
});
