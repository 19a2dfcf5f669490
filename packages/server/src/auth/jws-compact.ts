/**
 * The parts of a compact JWS (`header.payload.signature`) and the decoding of its JSON
 * segments, for the HMAC path of the token verifier.
 *
 * Why not jose's `decodeProtectedHeader` and `decodeJwt` here: each splits the token again and
 * decodes through a fatal `TextDecoder` and a base64 loop; in a profile of 10,000 connects the
 * header decode alone was 6.8 % of the server's busy time (docs/BENCHMARKS.md), more than the
 * HMAC itself, and every connect of a reconnect storm pays it. This does the same checks with Buffer's native
 * base64url decoder and `isUtf8`: a segment must be canonical base64url (no padding, no other
 * characters), valid UTF-8, and JSON whose top level is an object.
 *
 * @module
 */
import { isUtf8 } from 'node:buffer';
import { invalid } from './token-rejection.js';

/** The three segments of a compact JWS, still encoded. */
export interface CompactJws {
  /** The protected header segment (base64url). */
  readonly header: string;
  /** The payload segment (base64url). */
  readonly payload: string;
  /** The signature segment (base64url). */
  readonly signature: string;
  /** What the signature covers: `header.payload`. */
  readonly signingInput: string;
}

/** Canonical base64url: its alphabet only, and no length a whole encoding cannot have (4k + 1). */
const base64url = /^[A-Za-z0-9_-]*$/;

/** splitCompact splits a compact JWS into its three segments; anything else is a malformed token. */
export function splitCompact(token: string): CompactJws {
  const dot1 = token.indexOf('.');
  const dot2 = dot1 < 0 ? -1 : token.indexOf('.', dot1 + 1);
  if (dot1 <= 0 || dot2 < 0 || token.indexOf('.', dot2 + 1) !== -1) throw invalid('malformed token');
  return {
    header: token.slice(0, dot1),
    payload: token.slice(dot1 + 1, dot2),
    signature: token.slice(dot2 + 1),
    signingInput: token.slice(0, dot2),
  };
}

/**
 * decodeJsonSegment decodes a base64url segment holding a JSON object; throws a
 * TokenRejection (`what` names the segment) for anything else.
 */
export function decodeJsonSegment(segment: string, what: string): Record<string, unknown> {
  if (segment === '' || segment.length % 4 === 1 || !base64url.test(segment)) {
    throw invalid(`malformed token ${what}: not base64url`);
  }
  const bytes = Buffer.from(segment, 'base64url');
  if (!isUtf8(bytes)) throw invalid(`malformed token ${what}: not UTF-8`);
  let value: unknown;
  try {
    value = JSON.parse(bytes.toString('utf8'));
  } catch (err) {
    throw invalid(`malformed token ${what}: not JSON`, err);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw invalid(`token ${what} must be a JSON object`);
  }
  return value as Record<string, unknown>;
}
