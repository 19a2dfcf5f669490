/**
 * The sticker scenario's publishers: the game backend posting stickers through the server API
 * of the node each post names — the cold burst at once (bounded concurrency), then the rest
 * spread evenly over the duration — and recording what the server answered: each accepted
 * post's offset (which is how deliveries are matched to posts), its send time and its latency.
 *
 * @module
 */
import { ServerApi } from '../../harness/api.js';
import { LatencyRecorder, roundSummary } from '../../harness/stats.js';
import type { RunningServer } from '../../harness/targets.js';
import { mapLimit, sleep } from '../../harness/util.js';
import type { AcceptedPosts } from './ledger.js';
import { publishBody, type Post } from './stickers.js';
import type { ModeResult } from './types.js';

/** A post is tried at most this often, through the same node, under the same idempotency key. */
export const MAX_ATTEMPTS = 3;

/** Bound on one publish call: past it the attempt counts as failed (outcome unknown: retried). */
export const CALL_TIMEOUT_MS = 15_000;

/** withTimeout rejects with "no answer in N ms" when `p` has not settled after `ms` (the call itself is left to the agent's close). */
function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer in ${ms} ms`)), ms);
  });
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}

/**
 * retryable tells a failure worth retrying: no HTTP answer at all (the connection failed: e.g. a
 * keep-alive socket the server closed as idle just as the request was written, "socket hang
 * up" / ECONNRESET), or Bulwark's temporary answers (100 internal, 111 too many requests, HTTP
 * 503). The outcome of the first attempt is then unknown: the post carries an idempotency key,
 * so the retry returns the first result if it was applied (docs/API.md, "Safe retries"), as a
 * game backend's retry would.
 */
export function retryable(message: string): boolean {
  const m = /HTTP (\d+): (\S+)/.exec(message);
  if (m === null) return true;
  return m[1] === '503' || m[2] === '100' || m[2] === '111';
}

/** errorLabel names a failed call for tallies: "publish: HTTP 200: 107 …" → "107"; a socket error by its message. */
export function errorLabel(err: unknown): string {
  const message = (err as Error).message;
  const m = /HTTP \d+: (\S+)/.exec(message);
  return m?.[1] ?? message.slice(0, 60);
}

/** PostingOutcome is what the publishers learnt. */
export interface PostingOutcome {
  accepted: AcceptedPosts;
  /** Posts the server accepted. */
  acceptedCount: number;
  /** Posts that failed for good (after their retries): each is a lost publication. */
  publishErrors: Record<string, number>;
  /** Attempts repeated after a failure that may be temporary, by what failed. */
  retries: Record<string, number>;
  /** Accepted posts whose offset was out of 1..posts, repeated, or in another epoch. */
  offsetAnomalies: number;
  publishMs: ModeResult['publishMs'];
  /** performance.now() of the first post sent. */
  startedAt: number;
}

/**
 * runPosts sends `posts` (the burst ones first, `burstConcurrency` at a time, then the others
 * evenly over `durationSeconds`) and resolves once every call was answered. `onPosted` is
 * called after each answer (for progress).
 */
export async function runPosts(
  servers: readonly RunningServer[],
  posts: readonly Post[],
  burstConcurrency: number,
  durationSeconds: number,
  onPosted: (done: number) => void,
): Promise<PostingOutcome> {
  const apis = servers.map((s) => new ServerApi(s));
  const total = posts.length;
  const accepted: AcceptedPosts = {
    stickerAt: new Int32Array(total + 1).fill(-1),
    sentAt: new Float64Array(total + 1),
    burst: new Uint8Array(total + 1),
  };
  const publishErrors: Record<string, number> = {};
  const latency = { burst: new LatencyRecorder(), after: new LatencyRecorder() };
  let acceptedCount = 0;
  const retries: Record<string, number> = {};
  let offsetAnomalies = 0;
  let epoch: string | undefined;
  let done = 0;

  const post = async (p: Post, index: number): Promise<void> => {
    const api = apis[p.node] as ServerApi;
    const body = publishBody(p.sticker, `post-${index}`);
    const sentAt = performance.now();
    try {
      let res: { offset?: number; epoch?: string } | undefined;
      for (let attempt = 1; res === undefined; attempt++) {
        try {
          res = (await withTimeout(api.call('publish', body), CALL_TIMEOUT_MS)) as { offset?: number; epoch?: string };
        } catch (err) {
          if (attempt >= MAX_ATTEMPTS || !retryable((err as Error).message)) throw err;
          const why = errorLabel(err);
          retries[why] = (retries[why] ?? 0) + 1;
        }
      }
      latency[p.burst ? 'burst' : 'after'].add(performance.now() - sentAt);
      const off = res.offset ?? 0;
      epoch ??= res.epoch;
      if (!(off >= 1 && off <= total) || accepted.stickerAt[off] !== -1 || res.epoch !== epoch) {
        offsetAnomalies++;
        return;
      }
      accepted.stickerAt[off] = p.sticker;
      accepted.sentAt[off] = sentAt;
      accepted.burst[off] = p.burst ? 1 : 0;
      acceptedCount++;
    } catch (err) {
      const label = errorLabel(err);
      publishErrors[label] = (publishErrors[label] ?? 0) + 1;
    } finally {
      onPosted(++done);
    }
  };

  const startedAt = performance.now();
  try {
    const burst = posts.filter((p) => p.burst);
    const steady = posts.filter((p) => !p.burst);
    await mapLimit(
      burst.length,
      burstConcurrency,
      (i) => post(burst[i] as Post, i),
      () => undefined,
    );
    const t0 = performance.now();
    const gapMs = steady.length > 0 ? (durationSeconds * 1000) / steady.length : 0;
    const inFlight: Promise<void>[] = [];
    for (let i = 0; i < steady.length; i++) {
      const wait = t0 + i * gapMs - performance.now();
      if (wait > 1) await sleep(wait);
      inFlight.push(post(steady[i] as Post, burst.length + i));
    }
    await Promise.all(inFlight);
  } finally {
    for (const a of apis) a.close();
  }
  return {
    accepted,
    acceptedCount,
    publishErrors,
    retries,
    offsetAnomalies,
    publishMs: { burst: roundSummary(latency.burst.summary(), 2), after: roundSummary(latency.after.summary(), 2) },
    startedAt,
  };
}
