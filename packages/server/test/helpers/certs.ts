/**
 * Test certificates made by `openssl`: self-signed EC certificates for 127.0.0.1 / localhost,
 * in a temporary folder removed when the test process exits (a `node:test` hook registered
 * from inside a test would run when that test ends, too early for the files). A self-signed certificate is its own
 * CA, so a test trusts it by passing the same file as the CA.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** opensslMissing returns why certificates cannot be made here, or undefined. */
export function opensslMissing(): string | undefined {
  try {
    execFileSync('openssl', ['version'], { stdio: 'ignore' });
    return undefined;
  } catch {
    return 'openssl not found (it makes the test certificates)';
  }
}

let dir: string | undefined;

/** selfSigned makes a certificate for 127.0.0.1 / localhost with common name `cn`; returns the file paths. */
export function selfSigned(cn: string): { cert: string; key: string } {
  if (dir === undefined) {
    const made = mkdtempSync(join(tmpdir(), 'bulwark-certs-'));
    dir = made;
    process.once('exit', () => rmSync(made, { recursive: true, force: true }));
  }
  const cert = join(dir, `${cn}.crt`);
  const key = join(dir, `${cn}.key`);
  execFileSync(
    'openssl',
    [
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:prime256v1',
      '-nodes',
      '-keyout',
      key,
      '-out',
      cert,
      '-days',
      '1',
      '-subj',
      `/CN=${cn}`,
      '-addext',
      'subjectAltName=IP:127.0.0.1,DNS:localhost',
    ],
    { stdio: 'ignore' },
  );
  return { cert, key };
}
