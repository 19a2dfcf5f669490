/**
 * The PostgreSQL map broker's calls of its SQL functions (map-schema.ts), as plain functions:
 * the options turned into the functions' arguments, their rows turned back into results and
 * errors, and an engine error rebuilt to name the channel and key of the write that failed.
 *
 * @module
 */
import { randomBytes } from 'node:crypto';
import { ErrorCode, ProtocolError } from '../../protocol/codes.js';
import { DEFAULT_IDEMPOTENT_RESULT_TTL_MS } from '../broker.js';
import { EngineOutcomeUnknownError, EngineUnavailableError } from '../errors.js';
import {
  MapLimitError,
  type MapPublishOptions,
  type MapRemoveOptions,
  type MapRetention,
  type MapStreamQuery,
  type MapSuppressReason,
  type MapUpdateResult,
} from '../map-broker.js';
import { sqlState } from './errors.js';
import type { MapRow } from './map-codec.js';
import { MapWriteCode } from './map-schema.js';

/** Meta TTL used when a caller passes 0 or less: 30 days, as the other map brokers. */
const DEFAULT_META_TTL_MS = 720 * 60 * 60 * 1000;

/** suppressReasons names the codes of a write that changed nothing. */
export const suppressReasons: Readonly<Record<number, MapSuppressReason>> = {
  [MapWriteCode.idempotency]: 'idempotency',
  [MapWriteCode.keyExists]: 'key_exists',
  [MapWriteCode.keyNotFound]: 'key_not_found',
  [MapWriteCode.positionMismatch]: 'position_mismatch',
  [MapWriteCode.version]: 'version',
  [MapWriteCode.notOwner]: 'not_owner',
};

/** WriteRow is the row a write function returns. */
export interface WriteRow {
  r_offset: number;
  r_epoch: string;
  r_code: number;
}

/** PositionRow is the first row of a read function: the position. */
export interface PositionRow {
  r_epoch: string;
  r_top: number;
}

/** EntryRow is an entry or change row of a read function. */
export interface EntryRow {
  r_key: string | null;
  r_offset: number | null;
  r_data: string | null;
  r_info: unknown;
  r_tags: unknown;
  r_score: number | null;
}

/** entryRow renames a read function's entry columns for mapPublication. */
export function entryRow(r: EntryRow): MapRow {
  return { offset: r.r_offset, key: r.r_key, data: r.r_data, info: r.r_info, tags: r.r_tags, score: r.r_score };
}

/** outcome turns a write function's row into the result, or the error its code means. */
export function outcome(channel: string, o: { maxKeys: number }, rows: WriteRow[]): MapUpdateResult {
  const row = rows[0];
  if (row === undefined) throw new Error('map write returned no row');
  if (row.r_code === MapWriteCode.limit) throw new MapLimitError(channel, o.maxKeys);
  if (row.r_code === MapWriteCode.needsStream) {
    throw new ProtocolError(
      ErrorCode.BadRequest,
      'expected_position needs a map with a stream (durable or persistent)',
    );
  }
  const result: MapUpdateResult = { offset: row.r_offset, epoch: row.r_epoch };
  const reason = suppressReasons[row.r_code];
  if (reason !== undefined) result.suppressed = reason;
  return result;
}

/**
 * namingKey rebuilds an engine error with what failed (op, channel, key) in its message, so a
 * log line or API answer says which write it was. A value PostgreSQL refuses to store (SQLSTATE
 * class 22: a NUL character in a key, `\u0000` in info JSON, a number out of range) is the
 * caller's bad input: 107, naming it too. Any other error is returned as it is.
 */
export function namingKey(err: unknown, what: string): unknown {
  if (sqlState(err)?.startsWith('22') === true) {
    return new ProtocolError(ErrorCode.BadRequest, `${what}: PostgreSQL cannot store it (${(err as Error).message})`);
  }
  if (!(err instanceof EngineUnavailableError)) return err;
  const inner = err.cause instanceof Error ? err.cause : undefined;
  const cause = new Error(inner === undefined ? what : `${what}: ${inner.message}`, { cause: inner ?? err });
  return err instanceof EngineOutcomeUnknownError
    ? new EngineOutcomeUnknownError(err.address, { cause })
    : new EngineUnavailableError(err.address, { cause });
}

/** retention: stream size, stream TTL, meta TTL and key TTL as the functions take them. */
export function retention(o: MapRetention): [number, number, number, number] {
  return [
    Math.max(0, Math.floor(o.streamSize)),
    Math.max(0, Math.ceil(o.streamTtlMs)),
    metaTtl(o.metaTtlMs),
    Math.max(0, Math.ceil(o.keyTtlMs)),
  ];
}

/** metaTtl is the meta TTL a function gets: the default for 0 or less. */
export function metaTtl(ms: number): number {
  return Math.ceil(ms > 0 ? ms : DEFAULT_META_TTL_MS);
}

/** resultTtl is how long an idempotency result is kept. */
export function resultTtl(o: { idempotentResultTtlMs?: number | undefined }): number {
  return Math.max(1, Math.ceil(o.idempotentResultTtlMs ?? DEFAULT_IDEMPOTENT_RESULT_TTL_MS));
}

/** expected is the expected position as (offset, epoch), NULLs for none. */
export function expected(o: MapPublishOptions | MapRemoveOptions): [number | null, string | null] {
  const p = o.expectedPosition;
  return p === undefined ? [null, null] : [Math.floor(p.offset), p.epoch];
}

/** streamRange turns a stream query into the read function's direction ('f', 'r', 'n': none), bound and limit (null: all). */
export function streamRange(q: MapStreamQuery): [dir: 'f' | 'r' | 'n', since: number, limit: number | null] {
  const limit = q.limit < 0 ? null : Math.floor(q.limit);
  if (limit === 0) return ['n', 0, 0];
  const since = q.since === undefined ? undefined : Math.min(Math.floor(q.since.offset), Number.MAX_SAFE_INTEGER - 1);
  if (!q.reverse) return ['f', since === undefined || since < 0 ? 0 : since, limit];
  return ['r', since ?? Number.MAX_SAFE_INTEGER, limit];
}

/** json is a value as JSON text for a jsonb argument, NULL when undefined. */
export function json(value: unknown): string | null {
  return value === undefined ? null : JSON.stringify(value);
}

/** newEpoch makes a channel epoch: 8 random base64url characters (48 bits), as the other brokers. */
export function newEpoch(): string {
  return randomBytes(6).toString('base64url');
}

/** unrecoverable throws 112 (UnrecoverablePosition). */
export function unrecoverable(): never {
  throw new ProtocolError(ErrorCode.UnrecoverablePosition);
}
