/**
 * The parts of a NATS connection's options that say who Bulwark is and how the link is
 * encrypted (config/sections/nats-access.ts), for the NATS broker and the JetStream consumer.
 * Certificate files are read here, at connect, so a missing or unreadable one fails with the
 * config key that names it rather than a bare ENOENT from inside the NATS client.
 *
 * @module
 */
import { readFileSync } from 'node:fs';
import type { ConnectionOptions } from '@nats-io/transport-node';

/** NatsAccess is a NATS connection's token and TLS settings, as configured. */
export interface NatsAccess {
  token: string;
  tls: {
    enabled: boolean;
    server_ca_pem_file: string;
    cert_pem_file: string;
    key_pem_file: string;
    insecure_skip_verify: boolean;
  };
}

/**
 * natsAccessOptions turns `access` (configured at `configPath`, e.g. "broker.nats") into NATS
 * connection options; throws an Error naming the key when a PEM file cannot be read.
 */
export function natsAccessOptions(access: NatsAccess, configPath: string): Partial<ConnectionOptions> {
  const out: Partial<ConnectionOptions> = {};
  if (access.token !== '') out.token = access.token;
  const t = access.tls;
  if (!t.enabled) return out;
  const read = (key: 'server_ca_pem_file' | 'cert_pem_file' | 'key_pem_file') => {
    try {
      return readFileSync(t[key], 'utf8');
    } catch (err) {
      throw new Error(`${configPath}.tls.${key}: cannot read ${t[key]} (${(err as Error).message})`, { cause: err });
    }
  };
  // The NATS client hands these to tls.connect as they are; rejectUnauthorized is tls.connect's own.
  const tls: Record<string, unknown> = {};
  if (t.server_ca_pem_file !== '') tls['ca'] = read('server_ca_pem_file');
  if (t.cert_pem_file !== '') {
    tls['cert'] = read('cert_pem_file');
    tls['key'] = read('key_pem_file');
  }
  if (t.insecure_skip_verify) tls['rejectUnauthorized'] = false;
  out.tls = tls as ConnectionOptions['tls'];
  return out;
}

/**
 * natsAccessHint names the config keys to check for an error that is about who Bulwark is or
 * how it encrypts (not about reaching NATS at all), or returns undefined for any other error.
 */
export function natsAccessHint(err: unknown, configPath: string): string | undefined {
  const text = describeChain(err);
  if (/authori[sz]ation violation|authentication|auth(entication)? (timeout|expired)/i.test(text)) {
    return `check ${configPath}.token, or the user and password in ${configPath}.url`;
  }
  if (/\.tls\.|tls|certificate|ssl|self[- ]signed/i.test(text)) return `check ${configPath}.tls`;
  return undefined;
}

/** describeChain joins the messages of an error and its causes. */
function describeChain(err: unknown): string {
  const parts: string[] = [];
  for (let e: unknown = err, depth = 0; e !== undefined && depth < 5; depth++) {
    parts.push(e instanceof Error ? e.message : String(e));
    e = e instanceof Error ? e.cause : undefined;
  }
  return parts.join(': ');
}
