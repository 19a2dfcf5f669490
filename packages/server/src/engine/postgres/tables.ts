/**
 * The names of one PostgreSQL deployment's tables, functions and NOTIFY channel (all under its
 * `table_prefix`), and the database clock every expiry is measured with. schema.ts creates
 * them; everything else names them through {@link Tables}.
 *
 * @module
 */

/** Tables are the names of one deployment's tables and its NOTIFY channel. */
export interface Tables {
  readonly migrations: string;
  readonly streams: string;
  readonly publications: string;
  readonly results: string;
  readonly presence: string;
  readonly notices: string;
  /** The LISTEN/NOTIFY channel every node of the deployment listens on. */
  readonly events: string;
  /** The backend's publish function (publish-function.ts). */
  readonly publish: string;
  /** The engine's publish function, every option explicit. */
  readonly publishRaw: string;
  /** Sends a notice, through the notices table when large. */
  readonly notify: string;
  /** The head of a notice: kind, channel length, channel. */
  readonly noticeHead: string;
  /** Map channels (version 3, map-schema.ts): per channel epoch, top, key count, retention. */
  readonly mapMeta: string;
  /** Map channels: the entries, (channel, key). */
  readonly mapState: string;
  /** Map channels: the change stream, (channel, offset). */
  readonly mapStream: string;
  /** Map channels: the first result of each (channel, idempotency key). */
  readonly mapResults: string;
  /** The LISTEN/NOTIFY channel of map changes. */
  readonly mapEvents: string;
  /** Map functions: lock a channel's meta row, apply a change, write, remove, expire, read. */
  readonly mapLock: string;
  readonly mapChange: string;
  readonly mapPublish: string;
  readonly mapRemove: string;
  readonly mapExpire: string;
  readonly mapReadState: string;
  readonly mapReadStream: string;
}

/** tablesOf names the tables of `prefix` (already checked against ^[a-z_][a-z0-9_]*$). */
export function tablesOf(prefix: string): Tables {
  return {
    migrations: `${prefix}_migrations`,
    streams: `${prefix}_streams`,
    publications: `${prefix}_publications`,
    results: `${prefix}_results`,
    presence: `${prefix}_presence`,
    notices: `${prefix}_notices`,
    events: `${prefix}_events`,
    publish: `${prefix}_publish`,
    publishRaw: `${prefix}_publish_raw`,
    notify: `${prefix}_notify`,
    noticeHead: `${prefix}_notice_head`,
    mapMeta: `${prefix}_map_meta`,
    mapState: `${prefix}_map_state`,
    mapStream: `${prefix}_map_stream`,
    mapResults: `${prefix}_map_results`,
    mapEvents: `${prefix}_map_events`,
    mapLock: `${prefix}_map_lock`,
    mapChange: `${prefix}_map_change`,
    mapPublish: `${prefix}_map_publish`,
    mapRemove: `${prefix}_map_remove`,
    mapExpire: `${prefix}_map_expire`,
    mapReadState: `${prefix}_map_read_state`,
    mapReadStream: `${prefix}_map_read_stream`,
  };
}

/**
 * NOW_MS is the database clock in milliseconds, the one clock every expiry is measured with,
 * so that clock skew between nodes never expires a stream, a result or a presence entry
 * early. clock_timestamp(), not now(): now() is frozen at the start of the transaction.
 */
export const NOW_MS = '(extract(epoch from clock_timestamp()) * 1000)::bigint';
