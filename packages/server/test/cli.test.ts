/**
 * The `bulwark` command line as a new user meets it (the built CLI, real processes):
 * `--version`; `start` without a config says how to get one; `genconfig` writes a config
 * readable by its owner only and never overwrites one; a port in use is one plain line.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { version } from '../src/version.js';
import { runBulwark, writeConfigFile } from './helpers/process.js';

describe('bulwark CLI', () => {
  it('prints its version with --version, -V and `version`', async () => {
    for (const args of [['--version'], ['-V'], ['version']]) {
      const { exit, stdout } = await runBulwark(args);
      assert.equal(exit.code, 0, args.join(' '));
      assert.match(stdout, new RegExp(`^(bulwark )?${version.replace(/\./g, '\\.')}\\n$`));
    }
  });

  it('start without a config names what is missing and how to get a config', async () => {
    const { exit, stderr } = await runBulwark(['start']);
    assert.equal(exit.code, 2);
    assert.match(stderr, /client\.token\.hmac_secret_key: missing secret/);
    assert.match(stderr, /`bulwark genconfig` writes one with fresh secrets, `bulwark start --demo` runs a demo/);
  });

  it('genconfig writes a private, valid config and refuses to overwrite it', async (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'bulwark-cli-'));
    t.after(() => rmSync(dir, { recursive: true, force: true }));
    const file = join(dir, 'config.json');
    const first = await runBulwark(['genconfig', '-o', file]);
    assert.equal(first.exit.code, 0);
    assert.match(first.stderr, /do not commit it/);
    assert.equal(statSync(file).mode & 0o777, 0o600);
    const written = readFileSync(file, 'utf8');
    assert.equal((await runBulwark(['checkconfig', '-c', file])).exit.code, 0);
    const again = await runBulwark(['genconfig', '-o', file]);
    assert.equal(again.exit.code, 2);
    assert.match(again.stderr, /exists; use --force to overwrite/);
    assert.equal(readFileSync(file, 'utf8'), written, 'the secrets were not replaced');
  });

  it('a port in use is one plain line, exit code 1', async (t) => {
    const blocker = createServer();
    await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
    t.after(() => blocker.close());
    const port = (blocker.address() as AddressInfo).port;
    const cfg = writeConfigFile({
      http_server: { address: '127.0.0.1' },
      client: { insecure: true },
      http_api: { insecure: true },
    });
    t.after(() => cfg.remove());
    const { exit, stderr } = await runBulwark(['start', '-c', cfg.path, '-p', String(port)]);
    assert.equal(exit.code, 1);
    const lines = stderr.trim().split('\n');
    assert.deepEqual(lines, [
      `bulwark: BW_ERR_LISTEN: cannot listen on 127.0.0.1:${port}: the port is in use by another program (choose another with -p or http_server.port)`,
    ]);
  });

  it('a config file with a syntax error names its line and column', async (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'bulwark-cli-'));
    t.after(() => rmSync(dir, { recursive: true, force: true }));
    const file = join(dir, 'bad.json');
    writeFileSync(file, '{\n  "http_api": { "key": "k" }\n  "client": {}\n}\n');
    const { exit, stderr } = await runBulwark(['start', '-c', file]);
    assert.equal(exit.code, 2);
    assert.match(stderr, /is not valid JSON at line 3, column 3/);
  });
});
