/**
 * The outbox consumer (docs/OUTBOX.md): polls a backend's outbox table and publishes its rows
 * through the node's normal publish path, exactly once and in order per channel, with several
 * nodes consuming one table at once.
 *
 * One batch is one transaction on the outbox database: take channels (advisory locks) and lock
 * their oldest rows (table.ts), publish each channel's rows one after the other (channels in
 * parallel) with the idempotency key `outbox:<id>` (or the row's own), then delete the
 * published rows, quarantine the bad ones and count failed attempts, and COMMIT. A node that
 * dies before COMMIT leaves its rows to the next consumer, whose publish of a row already
 * published is suppressed by the key (within channel.idempotent_result_ttl): no row is
 * published twice, none skipped. A row that fails leaves the rest of its channel for a later
 * batch, so a channel's rows are never published out of order.
 *
 * Back-pressure: while the node sheds load or its engine is not ready the consumer pauses
 * (bulwark_outbox_paused), and the rows wait in the table.
 *
 * @module
 */
import pg from 'pg';
import type { Config } from '../config/schema.js';
import type { Metrics } from '../metrics.js';
import type { RawJSON } from '../protocol/types.js';
import { BulwarkError } from '../errors.js';
import { WakeableSleep } from '../util/wakeable-sleep.js';
import { publishEvent, type EventSourceContext } from './event-publisher.js';
import { claim, missingColumns, settle, type OutboxRow, type Settlement } from './table.js';
import { describe, quarantine, type Outcome } from './outcome.js';
import { PauseGate } from './pause.js';

/** OutboxContext is what the consumer needs from its node. */
export interface OutboxContext extends EventSourceContext {
  readonly metrics: Pick<Metrics, 'outbox' | 'publications'>;
}

/** OutboxConsumer consumes one outbox table for one node; start it once, stop it once. */
export class OutboxConsumer {
  readonly #ctx: OutboxContext;
  readonly #cfg: Config['outbox'];
  readonly #pool: pg.Pool;
  #running = false;
  #loop: Promise<void> | undefined;
  readonly #pause = new WakeableSleep();
  #tableChecked = false;
  readonly #gate: PauseGate;

  constructor(ctx: OutboxContext) {
    this.#ctx = ctx;
    this.#cfg = ctx.config.outbox;
    this.#gate = new PauseGate(ctx, ctx.metrics.outbox.paused, 'outbox consumer', { table: this.#cfg.table });
    const c = this.#cfg.postgresql;
    this.#pool = new pg.Pool({
      connectionString: c.dsn,
      max: 1,
      connectionTimeoutMillis: c.connect_timeout,
      query_timeout: c.io_timeout,
      statement_timeout: c.io_timeout,
      idle_in_transaction_session_timeout: this.#cfg.batch_timeout,
      application_name: 'bulwark-outbox',
      keepAlive: true,
    });
    // A pooled connection that breaks while idle is dropped by the pool; reported, never thrown.
    this.#pool.on('error', (err) => this.#dbFailed(err));
    // pg-pool listens on idle connections only; the batch's connection is checked out while its
    // rows are published, and if PostgreSQL dies then, it emits 'error' with no query to fail:
    // unheard, that event would crash the node. The batch learns of it at its next query.
    this.#pool.on('connect', (client) => client.on('error', () => undefined));
  }

  /** start begins polling in the background. */
  start(): void {
    if (this.#running || this.#loop !== undefined) return;
    this.#running = true;
    this.#ctx.log.info({ table: this.#cfg.table, batchSize: this.#cfg.batch_size }, 'outbox consumer started');
    this.#loop = this.#run();
  }

  /** stop finishes the batch in flight (its rows are settled and committed), then closes the connection. */
  async stop(): Promise<void> {
    this.#running = false;
    this.#pause.wake();
    await this.#loop;
    await this.#pool.end().catch(() => undefined);
    this.#gate.clear();
  }

  async #run(): Promise<void> {
    while (this.#running) {
      if (this.#gate.paused()) {
        await this.#pause.sleep(this.#cfg.poll_interval);
        continue;
      }
      let full = false;
      try {
        if (!this.#tableChecked) await this.#checkTable();
        full = await this.#batch();
      } catch (err) {
        this.#dbFailed(err);
      }
      if (!full) await this.#pause.sleep(this.#cfg.poll_interval);
    }
  }

  /** #checkTable refuses a missing table or one without the consumer's columns (BW_ERR_OUTBOX_TABLE). */
  async #checkTable(): Promise<void> {
    const client = await this.#pool.connect();
    try {
      const { exists, missing } = await missingColumns(client, this.#cfg.table);
      if (!exists || missing.length > 0) {
        throw new BulwarkError(
          'BW_ERR_OUTBOX_TABLE',
          exists
            ? `outbox table ${this.#cfg.table} lacks column(s) ${missing.join(', ')} (outbox.table; DDL in docs/OUTBOX.md)`
            : `outbox table ${this.#cfg.table} does not exist or is not readable (outbox.table; DDL in docs/OUTBOX.md)`,
        );
      }
      this.#tableChecked = true;
    } finally {
      client.release();
    }
  }

  /** #batch consumes one batch in one transaction; true when it was full (poll again at once). */
  async #batch(): Promise<boolean> {
    const { table, batch_size: batch } = this.#cfg;
    const client = await this.#pool.connect();
    let failed: Error | undefined;
    try {
      await client.query('BEGIN');
      const taken = await claim(client, table, batch);
      this.#ctx.metrics.outbox.lag.set(taken.lagSeconds);
      if (taken.rows.length === 0) {
        await client.query('COMMIT');
        return false;
      }
      const s: Settlement = { done: [], retry: [], quarantine: [] };
      let stalled = false;
      await Promise.all(
        [...byChannel(taken.rows).values()].map(async (rows) => {
          for (const row of rows) {
            const outcome = await this.#publish(row);
            if (outcome.kind === 'published') {
              s.done.push(row.id);
              continue;
            }
            if (outcome.kind === 'quarantine') {
              s.quarantine.push({ id: row.id, reason: outcome.reason, detail: outcome.detail });
              continue; // a bad row never blocks the rows behind it
            }
            stalled = true;
            if (outcome.kind === 'attempt' && row.attempts + 1 >= this.#cfg.max_attempts) {
              s.quarantine.push({ id: row.id, reason: 'publish_failed', detail: outcome.detail });
              continue;
            }
            if (outcome.kind === 'attempt') s.retry.push(row.id);
            this.#failed(row, outcome);
            break; // the rest of this channel waits for this row
          }
        }),
      );
      await settle(client, table, s);
      await client.query('COMMIT');
      this.#ctx.metrics.outbox.published.inc(s.done.length);
      for (const q of s.quarantine) {
        this.#ctx.metrics.outbox.quarantined.inc({ reason: q.reason });
        this.#ctx.log.warn({ table, id: q.id, reason: q.reason, detail: q.detail }, 'outbox row quarantined');
      }
      return taken.rows.length >= batch && !stalled;
    } catch (err) {
      failed = err instanceof Error ? err : new Error(String(err));
      await client.query('ROLLBACK').catch(() => undefined);
      throw err;
    } finally {
      client.release(failed);
    }
  }

  /** #publish publishes one row through the node (idempotency key `outbox:<id>` unless the row has one). */
  #publish(row: OutboxRow): Promise<Outcome> | Outcome {
    if (!isJson(row.data)) return quarantine('bad_data', 'data is not JSON');
    return publishEvent(
      this.#ctx,
      'outbox',
      row.channel,
      row.data as RawJSON,
      row.idempotency_key || `outbox:${row.id}`,
    );
  }

  #failed(row: OutboxRow, outcome: Extract<Outcome, { kind: 'engine' | 'attempt' }>): void {
    const reason = outcome.kind === 'engine' ? 'engine' : 'publish';
    this.#ctx.metrics.outbox.failures.inc({ reason });
    this.#ctx.burstLog.error(
      `outbox.${reason}`,
      { table: this.#cfg.table, id: row.id, channel: row.channel, attempts: row.attempts + 1, detail: outcome.detail },
      outcome.kind === 'engine'
        ? 'outbox publish failed: engine unavailable; the row waits for a later batch'
        : 'outbox publish failed; the row is retried up to outbox.max_attempts',
    );
  }

  #dbFailed(err: unknown): void {
    if (err instanceof BulwarkError) this.#tableChecked = false;
    this.#ctx.metrics.outbox.failures.inc({ reason: 'database' });
    this.#ctx.burstLog.error(
      'outbox.database',
      { table: this.#cfg.table, code: err instanceof BulwarkError ? err.code : undefined, err: describe(err) },
      'outbox consumer: the outbox database failed; retrying every outbox.poll_interval',
    );
  }
}

function byChannel(rows: readonly OutboxRow[]): Map<string, OutboxRow[]> {
  const out = new Map<string, OutboxRow[]>();
  for (const r of rows) {
    const list = out.get(r.channel);
    if (list === undefined) out.set(r.channel, [r]);
    else list.push(r);
  }
  return out;
}

function isJson(text: string): boolean {
  try {
    JSON.parse(text);
    return true;
  } catch {
    return false;
  }
}
