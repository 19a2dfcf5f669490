/**
 * What the api-publish load generator sends and how it reads the answers: the body of one
 * `POST /api/publish` and of one `POST /api/batch`, the reading of their replies into the
 * stream offsets they acknowledge (or the error they carry), and the per-channel offset ledger
 * that tells whether every acknowledged publish was applied exactly once.
 *
 * Kept apart from the closed loop (run.ts) because it is the part that decides what counts as
 * an error, and so is tested on its own.
 *
 * @module
 */
import type { HttpReply } from '../../load/keepalive-http.js';

/**
 * channelNames are the run's `count` channels in the bench's history namespace, named with the
 * run's random `tag`: a stream that outlives a run (the Redis engine keeps it for history_ttl)
 * is never another run's, so each run's offsets start at 1 and the {@link OffsetLedger} holds.
 */
export const channelNames = (tag: string, count: number): string[] =>
  Array.from({ length: count }, (_, i) => `bench:api-${tag}-${i}`);

/**
 * publishParams is the JSON of one publish's request fields: a small game event (a position
 * update numbered `seq`), with `pad` appended to its data.
 */
export function publishParams(channel: string, seq: number, pad: string): string {
  const x = (seq % 1000) / 4;
  const p = pad === '' ? '' : `,"pad":"${pad}"`;
  return `{"channel":"${channel}","data":{"kind":"move","seq":${seq},"x":${x},"y":${1000 - x}${p}}}`;
}

/** batchBody is the body of one `POST /api/batch` publishing `items` ([channel, seq] each) in order. */
export function batchBody(items: ReadonlyArray<readonly [string, number]>, pad: string, parallel: boolean): string {
  const commands = items.map(([ch, seq]) => `{"publish":${publishParams(ch, seq, pad)}}`).join(',');
  return `{"commands":[${commands}]${parallel ? ',"parallel":true' : ''}}`;
}

/** ReadReply is a reply read: the offsets it acknowledges, in command order, or its error. */
export type ReadReply = { offsets: number[] } | { error: string };

/** clip shortens a body for an error message. */
const clip = (s: string): string => (s.length > 120 ? `${s.slice(0, 120)}…` : s);

function parseBody(reply: HttpReply): unknown {
  try {
    return JSON.parse(reply.body) as unknown;
  } catch {
    return undefined;
  }
}

/** offsetOf is the `offset` of a publish result (`{"offset":N,"epoch":"…"}`), if it is a positive integer. */
function offsetOf(result: unknown): number | undefined {
  const offset = (result as { offset?: unknown } | null)?.offset;
  return typeof offset === 'number' && Number.isInteger(offset) && offset > 0 ? offset : undefined;
}

/**
 * readPublishReply reads the reply to `POST /api/publish`: HTTP 200 and
 * `{"result":{"offset":N,…}}`. Anything else — another status, an `error` (Bulwark answers a
 * method's errors with HTTP 200), a body that is not JSON, a result without an offset — is an error.
 */
export function readPublishReply(reply: HttpReply): ReadReply {
  if (reply.status !== 200) return { error: `HTTP ${reply.status}: ${clip(reply.body)}` };
  const body = parseBody(reply) as { result?: unknown; error?: unknown } | undefined;
  if (body === undefined || typeof body !== 'object' || body === null) {
    return { error: `unparsable body: ${clip(reply.body)}` };
  }
  if (body.error !== undefined) return { error: `error: ${clip(JSON.stringify(body.error))}` };
  const offset = offsetOf(body.result);
  return offset === undefined ? { error: `no offset in result: ${clip(reply.body)}` } : { offsets: [offset] };
}

/**
 * readBatchReply reads the reply to `POST /api/batch` of `expected` publishes: HTTP 200 and
 * `{"replies":[{"publish":{"offset":N,…}}, …]}` with one reply per command. One failed
 * command fails the whole request (a batch is counted as one request, and an error anywhere
 * in it is an error).
 */
export function readBatchReply(reply: HttpReply, expected: number): ReadReply {
  if (reply.status !== 200) return { error: `HTTP ${reply.status}: ${clip(reply.body)}` };
  const body = parseBody(reply) as { replies?: unknown; error?: unknown } | undefined;
  if (body === undefined || typeof body !== 'object' || body === null) {
    return { error: `unparsable body: ${clip(reply.body)}` };
  }
  if (body.error !== undefined) return { error: `error: ${clip(JSON.stringify(body.error))}` };
  if (!Array.isArray(body.replies) || body.replies.length !== expected) {
    return { error: `expected ${expected} replies: ${clip(reply.body)}` };
  }
  const offsets: number[] = [];
  for (const r of body.replies as Array<{ publish?: unknown; error?: unknown } | null>) {
    const offset = offsetOf(r?.publish);
    if (offset === undefined) return { error: `command failed: ${clip(JSON.stringify(r))}` };
    offsets.push(offset);
  }
  return { offsets };
}

/**
 * OffsetLedger counts, per channel, the publishes acknowledged and the highest offset
 * answered. On a fresh server each channel's offsets run 1, 2, 3, …, so when every publish was
 * applied exactly once the two are equal; a channel where they differ lost a publish or
 * applied one twice (or a reply was misattributed).
 */
export class OffsetLedger {
  private readonly acked: number[];
  private readonly top: number[];

  constructor(channels: number) {
    this.acked = new Array<number>(channels).fill(0);
    this.top = new Array<number>(channels).fill(0);
  }

  /** add records that the publish to `channel` was acknowledged with `offset`. */
  add(channel: number, offset: number): void {
    this.acked[channel] = (this.acked[channel] ?? 0) + 1;
    if (offset > (this.top[channel] ?? 0)) this.top[channel] = offset;
  }

  /** Publishes acknowledged, all channels. */
  get total(): number {
    return this.acked.reduce((a, b) => a + b, 0);
  }

  /** ackedOn is how many publishes to `channel` were acknowledged. */
  ackedOn(channel: number): number {
    return this.acked[channel] ?? 0;
  }

  /** mismatches counts the channels whose highest offset is not their count of acknowledged publishes. */
  mismatches(): number {
    return this.acked.filter((n, ch) => n !== this.top[ch]).length;
  }
}
