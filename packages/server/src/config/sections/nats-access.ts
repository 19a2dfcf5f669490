/**
 * How Bulwark authenticates to NATS and encrypts the connection, shared by the NATS broker
 * (`broker.nats`) and the JetStream consumer (`consumers.jetstream`): a token, and TLS with the
 * key names of Centrifugo's TLS blocks (`server_ca_pem_file`, `cert_pem_file`, `key_pem_file`,
 * `insecure_skip_verify`). A user and password still go in the URL (`nats://user:pass@host`).
 *
 * @module
 */
import { z } from 'zod';
import { secret } from './common.js';

/** natsTlsSchema is the `tls` block of a NATS connection. */
export const natsTlsSchema = z
  .strictObject({
    enabled: z
      .boolean()
      .default(false)
      .describe(
        'Require TLS to NATS, verifying its certificate (a server that offers no TLS is refused). Off: TLS is still used when the server requires it, verified against the system CAs.',
      ),
    server_ca_pem_file: z
      .string()
      .default('')
      .describe("PEM file of the CA(s) that signed the NATS server's certificate; empty: the system CAs."),
    cert_pem_file: z
      .string()
      .default('')
      .describe('PEM file of the client certificate (mutual TLS); with key_pem_file.'),
    key_pem_file: z
      .string()
      .default('')
      .describe('PEM file of the client private key (mutual TLS); with cert_pem_file.'),
    insecure_skip_verify: z
      .boolean()
      .default(false)
      .describe('Accept any server certificate (encrypts, but anyone on the path can pretend to be NATS): tests only.'),
  })
  .superRefine((tls, ctx) => {
    if ((tls.cert_pem_file === '') !== (tls.key_pem_file === '')) {
      ctx.addIssue({
        code: 'custom',
        path: [tls.cert_pem_file === '' ? 'cert_pem_file' : 'key_pem_file'],
        message: 'mutual TLS needs both cert_pem_file and key_pem_file',
      });
    }
    const files = tls.server_ca_pem_file !== '' || tls.cert_pem_file !== '' || tls.insecure_skip_verify;
    if (files && !tls.enabled) {
      ctx.addIssue({
        code: 'custom',
        path: ['enabled'],
        message: 'TLS settings are given but tls.enabled is false: set it to true (or remove them)',
      });
    }
  })
  .prefault({});

/** natsToken is the `token` key of a NATS connection. */
export const natsToken = secret.describe(
  "Token authentication: the NATS server's `authorization { token }`. Never logged; set it through the environment.",
);
