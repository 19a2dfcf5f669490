/**
 * Retention in the PostgreSQL engine's tables: expired rows are invisible as soon as they
 * expire (every read compares expiry with the database clock), and this periodic cleanup
 * deletes them, so the tables hold what is live plus at most one cleanup interval. Every node
 * runs it; the statements are idempotent and each deletes with the row locks a publish takes,
 * so nodes running it together only repeat work.
 *
 * @module
 */
import type { PostgresDatabase } from './database.js';
import { NOW_MS } from './schema.js';

/** cleanupStatements are the deletes of one cleanup run, in order. */
export function cleanupStatements(db: PostgresDatabase): string[] {
  const t = db.tables;
  return [
    // Streams past their meta TTL, with whatever publications they still had.
    `WITH gone AS (DELETE FROM ${t.streams} WHERE meta_expires_at < ${NOW_MS} RETURNING channel)
     DELETE FROM ${t.publications} p USING gone WHERE p.channel = gone.channel`,
    // Publications past their history TTL; the stream keeps its position.
    `WITH done AS (UPDATE ${t.streams} SET history_expires_at = 0
       WHERE history_expires_at > 0 AND history_expires_at < ${NOW_MS} RETURNING channel)
     DELETE FROM ${t.publications} p USING done WHERE p.channel = done.channel`,
    `DELETE FROM ${t.results} WHERE expires_at < ${NOW_MS}`,
    `DELETE FROM ${t.presence} WHERE expires_at < ${NOW_MS}`,
    // Map channels without keys past their meta TTL, with their stream (their next write, or
    // read, would start a new epoch anyway: see map-schema.ts's map_lock).
    `WITH gone AS (DELETE FROM ${t.mapMeta} WHERE num_keys = 0 AND meta_expires_at < ${NOW_MS} RETURNING channel)
     DELETE FROM ${t.mapStream} s USING gone WHERE s.channel = gone.channel`,
    `DELETE FROM ${t.mapResults} WHERE expires_at < ${NOW_MS}`,
    // Large notices are read within moments of their NOTIFY; one interval is ample.
    `DELETE FROM ${t.notices} WHERE created_at < ${NOW_MS} - ${Math.max(1000, Math.floor(db.o.cleanupIntervalMs))}`,
  ];
}

/** runCleanup runs one cleanup; rejects with the engine's error on the first failing statement. */
export async function runCleanup(db: PostgresDatabase): Promise<void> {
  for (const sql of cleanupStatements(db)) await db.query(sql);
}

/**
 * startCleanup runs {@link runCleanup} every `cleanupIntervalMs` (0: never), with a random
 * first delay so that nodes started together do not clean at the same moment. Returns the stop
 * function.
 */
export function startCleanup(db: PostgresDatabase, onError: (err: unknown) => void): () => void {
  const every = db.o.cleanupIntervalMs;
  if (!(every > 0)) return () => undefined;
  let timer: ReturnType<typeof setTimeout> | undefined;
  let stopped = false;
  const run = (delay: number): void => {
    timer = setTimeout(() => {
      runCleanup(db).then(
        () => !stopped && run(every),
        (err: unknown) => {
          if (stopped) return;
          onError(err);
          run(every);
        },
      );
    }, delay);
    timer.unref();
  };
  run(Math.floor(every * (0.5 + Math.random() / 2)));
  return () => {
    stopped = true;
    if (timer !== undefined) clearTimeout(timer);
  };
}
