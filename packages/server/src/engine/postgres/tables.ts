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
  };
}

/**
 * NOW_MS is the database clock in milliseconds, the one clock every expiry is measured with,
 * so that clock skew between nodes never expires a stream, a result or a presence entry
 * early. clock_timestamp(), not now(): now() is frozen at the start of the transaction.
 */
export const NOW_MS = '(extract(epoch from clock_timestamp()) * 1000)::bigint';
