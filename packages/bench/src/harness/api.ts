/**
 * Bulwark's server HTTP API from the load generator: `POST /api/<method>` over a keep-alive
 * agent (as a game backend publishes), and GET /metrics with a reader for its counters.
 *
 * @module
 */
import http from 'node:http';
import type { RunningServer } from './targets.js';

/** ServerApi calls one Bulwark's HTTP API with its API key over a few keep-alive sockets. */
export class ServerApi {
  /** {@link ServerApi.tryPublish} calls answered with an error or a non-200 status, or lost on the socket. */
  errors = 0;
  /** Publications not sent because `maxInFlight` calls were already waiting. */
  skipped = 0;
  /** The latest {@link ServerApi.tryPublish} failure, for reports. */
  lastError: string | undefined;
  /** Calls waiting for their response. */
  inFlight = 0;

  private readonly agent: http.Agent;

  /**
   * Creates a client for `server` over 16 keep-alive sockets. `maxInFlight` bounds the calls
   * waiting at once: past it {@link ServerApi.tryPublish} skips instead of queueing, so a stalled
   * server costs the load generator a counter, not an ever-growing queue of requests with stale
   * timestamps.
   */
  constructor(
    private readonly server: RunningServer,
    private readonly maxInFlight = 256,
  ) {
    if (!server.apiKey) throw new Error(`${server.name} has no server API`);
    this.agent = new http.Agent({ keepAlive: true, maxSockets: 16 });
  }

  /** call sends one API command and resolves with its `result`, or rejects with its error. */
  call(method: string, paramsJson: string): Promise<unknown> {
    this.inFlight++;
    return new Promise<unknown>((resolve, reject) => {
      const req = http.request(
        {
          host: '127.0.0.1',
          port: this.server.port,
          method: 'POST',
          path: `/api/${method}`,
          agent: this.agent,
          headers: {
            'content-type': 'application/json',
            'content-length': Buffer.byteLength(paramsJson),
            'x-api-key': this.server.apiKey,
          },
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => {
            const body = Buffer.concat(chunks).toString('utf8');
            let reply: { result?: unknown; error?: { code?: number; message?: string } } = {};
            try {
              reply = JSON.parse(body) as typeof reply;
            } catch {
              reject(new Error(`${method}: HTTP ${res.statusCode}: unparsable body ${body.slice(0, 100)}`));
              return;
            }
            if (res.statusCode !== 200 || reply.error) {
              reject(new Error(`${method}: HTTP ${res.statusCode}: ${reply.error?.code} ${reply.error?.message}`));
            } else {
              resolve(reply.result);
            }
          });
          res.on('error', reject);
        },
      );
      req.on('error', reject);
      req.end(paramsJson);
    }).finally(() => {
      this.inFlight--;
    });
  }

  /** publish publishes `dataJson` (encoded JSON) to `channel` and resolves once accepted. */
  async publish(
    channel: string,
    dataJson: string,
    tags?: Record<string, string>,
    variantsJson?: string,
  ): Promise<void> {
    const t = tags === undefined ? '' : `,"tags":${JSON.stringify(tags)}`;
    const v = variantsJson === undefined ? '' : `,"variants":${variantsJson}`;
    await this.call('publish', `{"channel":${JSON.stringify(channel)},"data":${dataJson}${t}${v}}`);
  }

  /**
   * tryPublish publishes without waiting, counting failures in `errors`; returns false (and
   * counts `skipped`) when `maxInFlight` calls are already waiting, so the caller does not
   * consume a sequence number for a publication that was never sent.
   */
  tryPublish(channel: string, dataJson: string, tags?: Record<string, string>, variantsJson?: string): boolean {
    if (this.inFlight >= this.maxInFlight) {
      this.skipped++;
      return false;
    }
    this.publish(channel, dataJson, tags, variantsJson).catch((err: unknown) => {
      this.errors++;
      this.lastError = (err as Error).message;
    });
    return true;
  }

  /** close drops the keep-alive sockets. */
  close(): void {
    this.agent.destroy();
  }
}

/** fetchMetrics reads the server's Prometheus text exposition from GET /metrics. */
export function fetchMetrics(server: RunningServer, timeoutMs = 5000): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = http.get(`http://127.0.0.1:${server.port}/metrics`, { agent: false, timeout: timeoutMs }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () =>
        res.statusCode === 200
          ? resolve(Buffer.concat(chunks).toString('utf8'))
          : reject(new Error(`GET /metrics: HTTP ${res.statusCode}`)),
      );
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`GET /metrics: no answer in ${timeoutMs} ms`)));
    req.on('error', reject);
  });
}

/**
 * metricSeries returns the samples of metric `name` in a Prometheus text exposition, keyed by
 * the value of `label` (or '' for samples without it). Series differing only in other labels
 * (e.g. `node`) are summed.
 */
export function metricSeries(text: string, name: string, label = ''): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (!line.startsWith(name) || (line[name.length] !== '{' && line[name.length] !== ' ')) continue;
    const space = line.lastIndexOf(' ');
    const value = Number(line.slice(space + 1));
    if (!Number.isFinite(value)) continue;
    const labels = line[name.length] === '{' ? line.slice(name.length + 1, line.lastIndexOf('}', space)) : '';
    const m = label ? new RegExp(`(?:^|,)${label}="([^"]*)"`).exec(labels) : null;
    const key = m?.[1] ?? '';
    out.set(key, (out.get(key) ?? 0) + value);
  }
  return out;
}
