/**
 * The verification keys of a token verifier: which algorithms the configured keys enable,
 * the PEM checks made when a verifier is built (type, RSA size, EC curve; errors name the
 * config key), and the import of each public key into WebCrypto, once, on first use.
 *
 * @module
 */
import { createPublicKey } from 'node:crypto';
import { TextEncoder } from 'node:util';
import { importSPKI, type CryptoKey } from 'jose';
import { invalid } from './token-rejection.js';

/** HMAC_ALGORITHMS are the algorithms verified with `hmac_secret_key`. */
export const HMAC_ALGORITHMS = ['HS256', 'HS384', 'HS512'] as const;
/** RSA_ALGORITHMS are the algorithms verified with `rsa_public_key` (RSASSA-PKCS1-v1_5). */
export const RSA_ALGORITHMS = ['RS256', 'RS384', 'RS512'] as const;
/** ECDSA_ALGORITHMS are the algorithms verified with `ecdsa_public_key`; the key's curve picks one. */
export const ECDSA_ALGORITHMS = ['ES256', 'ES384', 'ES512'] as const;

/** TokenAlgorithm is a JWS algorithm Bulwark can verify (never `none`). */
export type TokenAlgorithm =
  (typeof HMAC_ALGORITHMS)[number] | (typeof RSA_ALGORITHMS)[number] | (typeof ECDSA_ALGORITHMS)[number];

const curveAlgorithm: Record<string, TokenAlgorithm> = {
  prime256v1: 'ES256',
  secp384r1: 'ES384',
  secp521r1: 'ES512',
};

const MIN_RSA_BITS = 2048;

/**
 * normalizePublicKey parses a PEM public key with node:crypto, checks its type, and returns it
 * as SPKI PEM (what `importSPKI` accepts) with its curve. Throws an Error naming `path`.
 */
function normalizePublicKey(pem: string, kind: 'rsa' | 'ec', path: string): { spki: string; curve?: string } {
  if (pem.includes('PRIVATE KEY')) {
    throw new Error(`${path}: expected a PEM public key, got a private key (keep it secret: never configure it here)`);
  }
  let key;
  try {
    key = createPublicKey({ key: pem, format: 'pem' });
  } catch (err) {
    throw new Error(`${path}: not a valid PEM public key (${(err as Error).message})`, { cause: err });
  }
  if (key.asymmetricKeyType !== kind) {
    throw new Error(
      `${path}: expected an ${kind === 'rsa' ? 'RSA' : 'EC'} key, got ${key.asymmetricKeyType ?? 'unknown'}`,
    );
  }
  const details = key.asymmetricKeyDetails ?? {};
  if (kind === 'rsa' && (details.modulusLength ?? 0) < MIN_RSA_BITS) {
    throw new Error(`${path}: RSA key has ${details.modulusLength ?? 0} bits; at least ${MIN_RSA_BITS} are required`);
  }
  const spki = key.export({ type: 'spki', format: 'pem' }).toString();
  return details.namedCurve === undefined ? { spki } : { spki, curve: details.namedCurve };
}

/** TokenKeyOptions are the configured keys; an empty string or `undefined` means "not configured". */
export interface TokenKeyOptions {
  hmacSecretKey?: string | undefined;
  rsaPublicKey?: string | undefined;
  ecdsaPublicKey?: string | undefined;
}

/** TokenKeys holds the keys of one verifier and the algorithms they enable. */
export class TokenKeys {
  /** The algorithms the configured keys enable, in a stable order. */
  readonly algorithms: readonly TokenAlgorithm[];
  /** The HMAC secret, when one is configured (verified with node:crypto, never imported). */
  readonly hmacKey: Uint8Array | undefined;
  readonly #rsaSpki: string | undefined;
  readonly #ecdsaSpki: string | undefined;
  readonly #imported = new Map<TokenAlgorithm, Promise<CryptoKey>>();

  /**
   * Checks the keys. Throws an Error (naming `path`) when a PEM key is malformed, of the wrong
   * type, an RSA key shorter than 2048 bits, or an EC key on an unsupported curve.
   */
  constructor(options: TokenKeyOptions, path: string) {
    const algorithms: TokenAlgorithm[] = [];
    if (options.hmacSecretKey) {
      this.hmacKey = new TextEncoder().encode(options.hmacSecretKey);
      algorithms.push(...HMAC_ALGORITHMS);
    }
    if (options.rsaPublicKey) {
      this.#rsaSpki = normalizePublicKey(options.rsaPublicKey, 'rsa', `${path}.rsa_public_key`).spki;
      algorithms.push(...RSA_ALGORITHMS);
    }
    if (options.ecdsaPublicKey) {
      const { spki, curve } = normalizePublicKey(options.ecdsaPublicKey, 'ec', `${path}.ecdsa_public_key`);
      const alg = curve === undefined ? undefined : curveAlgorithm[curve];
      if (alg === undefined) {
        throw new Error(
          `${path}.ecdsa_public_key: unsupported curve ${curve ?? 'unknown'} (use P-256, P-384 or P-521)`,
        );
      }
      this.#ecdsaSpki = spki;
      algorithms.push(alg);
    }
    this.algorithms = algorithms;
  }

  /** keyFor returns the verification key of an enabled algorithm, importing it once. */
  keyFor(alg: TokenAlgorithm): Promise<CryptoKey | Uint8Array> {
    if (alg.startsWith('HS')) {
      if (this.hmacKey === undefined) throw invalid(`no key for ${alg}`);
      return Promise.resolve(this.hmacKey);
    }
    const spki = alg.startsWith('RS') ? this.#rsaSpki : this.#ecdsaSpki;
    if (spki === undefined) throw invalid(`no key for ${alg}`);
    let key = this.#imported.get(alg);
    if (key === undefined) {
      key = importSPKI(spki, alg);
      this.#imported.set(alg, key);
    }
    return key.catch((err: unknown) => {
      throw invalid(`key for ${alg} could not be imported`, err);
    });
  }
}
