/**
 * The outbox scenario's backend: one long-lived `psql` session reading SQL from its stdin (the
 * bench has no database driver), inserting outbox rows in transactions at a target rate. Each
 * row's data carries its channel index, its sequence number in that channel and the time it
 * was written (nowMicros, the clock the subscribers read), so delivery latency is measured
 * from the insert.
 *
 * @module
 */
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { nowMicros } from '../../harness/util.js';

/** outboxDdl is the outbox table of docs/OUTBOX.md (as the server's outbox/table.ts writes it). */
export function outboxDdl(table: string): string {
  return `CREATE TABLE ${table} (
  id bigserial PRIMARY KEY, channel text NOT NULL, data jsonb NOT NULL, idempotency_key text,
  created_at timestamptz NOT NULL DEFAULT now(), attempts integer NOT NULL DEFAULT 0,
  quarantined_at timestamptz, quarantine_reason text, quarantine_detail text);
CREATE INDEX ${table}_waiting ON ${table} (id) WHERE quarantined_at IS NULL;
CREATE INDEX ${table}_channel ON ${table} (channel, id) WHERE quarantined_at IS NULL;`;
}

/** OutboxWriter inserts rows over `channels` channels `board:o<i>` through one psql session. */
export class OutboxWriter {
  readonly #psql: ChildProcessWithoutNullStreams;
  readonly #closed: Promise<number>;
  readonly #seq: number[];
  #stderr = '';
  /** Rows written (sent to psql) so far. */
  written = 0;

  constructor(
    dsn: string,
    private readonly table: string,
    private readonly channels: number,
  ) {
    this.#seq = new Array<number>(channels).fill(0);
    this.#psql = spawn('psql', [dsn, '-v', 'ON_ERROR_STOP=1', '-X', '-q'], { stdio: ['pipe', 'pipe', 'pipe'] });
    this.#psql.stdout.resume();
    this.#psql.stderr.on('data', (c: Buffer) => (this.#stderr += c.toString('utf8')));
    this.#closed = new Promise((resolve, reject) => {
      this.#psql.on('error', (e) => reject(new Error(`psql: ${e.message} (is the PostgreSQL client installed?)`)));
      this.#psql.on('close', (code) => resolve(code ?? -1));
    });
    this.#closed.catch(() => undefined);
  }

  /** sent is how many rows channel `i` has been given. */
  sent(i: number): number {
    return this.#seq[i] ?? 0;
  }

  /** insert writes `rows` rows in one transaction, round-robin over the channels. */
  insert(rows: number): void {
    const values: string[] = [];
    for (let k = 0; k < rows; k++) {
      const ch = this.written % this.channels;
      const seq = ++this.#seq[ch]!;
      this.written++;
      values.push(`('board:o${ch}','{"ch":${ch},"seq":${seq},"ts":${nowMicros()}}')`);
    }
    this.#psql.stdin.write(`BEGIN; INSERT INTO ${this.table} (channel, data) VALUES ${values.join(',')}; COMMIT;\n`);
  }

  /** close ends the session after every row was committed; rejects when psql failed. */
  async close(): Promise<void> {
    this.#psql.stdin.end('\\q\n');
    const code = await this.#closed;
    if (code !== 0) throw new Error(`psql writer exited ${code}: ${this.#stderr.trim()}`);
  }
}
