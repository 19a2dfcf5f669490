/**
 * The JetStream consumer's message format (docs/JETSTREAM.md): a Centrifugo server API
 * command as JSON, as Centrifugo's async consumers take it,
 * `{"method":"publish","payload":{"channel":"board:1","data":{...},"idempotency_key":"..."}}`
 * (`method` may be left out: publish is the default) or
 * `{"method":"broadcast","payload":{"channels":["a","b"],"data":{...}}}`. Anything else is a
 * bad message, terminated with reason bad_data (not that envelope) or bad_channel (no channel).
 *
 * @module
 */
import type { RawJSON } from '../protocol/types.js';
import { quarantine, type Outcome } from '../outbox/outcome.js';

/** PublishCommand is one message's publish (one channel) or broadcast (one or more). */
export interface PublishCommand {
  readonly method: 'publish' | 'broadcast';
  readonly channels: readonly string[];
  readonly data: RawJSON;
  /** The envelope's own key; absent: the consumer's `jetstream:<stream>:<sequence>`. */
  readonly idempotencyKey: string | undefined;
}

const decoder = new TextDecoder('utf-8', { fatal: true });

/** parseCommand reads one message body; an Outcome (terminate, with its reason) when it is bad. */
export function parseCommand(body: Uint8Array): PublishCommand | Outcome {
  let msg: unknown;
  try {
    msg = JSON.parse(decoder.decode(body));
  } catch {
    return quarantine('bad_data', 'the message is not JSON (a publish command envelope, docs/JETSTREAM.md)');
  }
  if (!isObject(msg)) return quarantine('bad_data', 'the message is not a JSON object');
  const method = msg.method ?? 'publish';
  if (method !== 'publish' && method !== 'broadcast') {
    return quarantine('bad_data', `method ${JSON.stringify(msg.method)} is not supported (publish or broadcast)`);
  }
  const payload = msg.payload;
  if (!isObject(payload)) return quarantine('bad_data', 'the message has no payload object');
  let channels: string[];
  if (method === 'publish') {
    if (typeof payload.channel !== 'string' || payload.channel === '') {
      return quarantine('bad_channel', 'the payload has no channel');
    }
    channels = [payload.channel];
  } else {
    const list = payload.channels;
    if (!Array.isArray(list) || list.length === 0 || !list.every((c) => typeof c === 'string' && c !== '')) {
      return quarantine('bad_channel', 'a broadcast payload needs channels: a non-empty array of channel names');
    }
    channels = list as string[];
  }
  if (payload.data === undefined) return quarantine('bad_data', 'the payload has no data');
  const key = payload.idempotency_key;
  if (key !== undefined && (typeof key !== 'string' || key === '')) {
    return quarantine('bad_data', 'payload.idempotency_key is not a non-empty string');
  }
  return { method, channels, data: JSON.stringify(payload.data) as RawJSON, idempotencyKey: key };
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
