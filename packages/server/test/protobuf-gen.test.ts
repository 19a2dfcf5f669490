/**
 * The committed Protobuf code (src/protocol/gen/) is what proto/client.proto generates: a
 * change to the .proto without `npm run proto` fails here, not on a client's device.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';

const pkg = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const bin = join(pkg, '..', '..', 'node_modules', '.bin');

describe('generated Protobuf code', () => {
  it('matches proto/client.proto', () => {
    const out = mkdtempSync(join(tmpdir(), 'bulwark-proto-'));
    try {
      const template = readFileSync(join(pkg, 'buf.gen.yaml'), 'utf8').replace('out: src/protocol/gen', `out: ${out}`);
      const templatePath = join(out, 'buf.gen.yaml');
      writeFileSync(templatePath, template);
      execFileSync(join(bin, 'buf'), ['generate', '--template', templatePath], {
        cwd: pkg,
        env: { ...process.env, PATH: `${bin}:${process.env['PATH'] ?? ''}` },
        stdio: 'pipe',
      });
      const fresh = readFileSync(join(out, 'client_pb.ts'), 'utf8');
      const committed = readFileSync(join(pkg, 'src', 'protocol', 'gen', 'client_pb.ts'), 'utf8');
      assert.ok(fresh === committed, 'src/protocol/gen/client_pb.ts is stale: run `npm run proto`');
    } finally {
      rmSync(out, { recursive: true, force: true });
    }
  });
});
