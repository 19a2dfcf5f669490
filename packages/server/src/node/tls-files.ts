/**
 * Reading the TLS certificate and key of the public port (http_server.tls), at start and again
 * on SIGHUP, so a renewed certificate (Let's Encrypt, a rotated secret) is taken without a
 * restart that would disconnect every player.
 *
 * @module
 */
import { readFileSync } from 'node:fs';
import { createSecureContext } from 'node:tls';
import type { Config } from '../config/schema.js';
import { BulwarkError } from '../errors.js';
import type { TlsFiles } from '../http/server.js';

/**
 * readTlsFiles reads the configured certificate chain and key; undefined when TLS is off.
 * Throws BulwarkError BW_ERR_TLS naming the file that cannot be read or is not PEM.
 */
export function readTlsFiles(cfg: Readonly<Pick<Config, 'http_server'>>): TlsFiles | undefined {
  const tls = cfg.http_server.tls;
  if (!tls.enabled) return undefined;
  const files = { cert: readPem(tls.cert_pem_file, 'cert_pem_file'), key: readPem(tls.key_pem_file, 'key_pem_file') };
  try {
    // Checked here, with the files named, rather than as a bare OpenSSL error from the server.
    createSecureContext(files);
  } catch (err) {
    throw new BulwarkError(
      'BW_ERR_TLS',
      `http_server.tls: ${tls.cert_pem_file} and ${tls.key_pem_file} are not a usable certificate and key: ${(err as Error).message}`,
    );
  }
  return files;
}

function readPem(file: string, key: string): Buffer {
  let pem: Buffer;
  try {
    pem = readFileSync(file);
  } catch (err) {
    throw new BulwarkError('BW_ERR_TLS', `cannot read http_server.tls.${key} ${file}: ${(err as Error).message}`);
  }
  if (!pem.includes('-----BEGIN ')) {
    throw new BulwarkError('BW_ERR_TLS', `http_server.tls.${key} ${file} is not a PEM file (no -----BEGIN line)`);
  }
  return pem;
}
