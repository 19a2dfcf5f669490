/**
 * The sticker scenario's world: the chat channel, the players' two builds, the sticker a post
 * carries with its variant for old builds (an upgrade text the backend answers through the
 * `sticker.fallback` RPC), reading back which payload a client got, and the plan of posts — a
 * cold burst (every sticker once per node, at once) and then a steady chat.
 *
 * @module
 */
import type { ChatIdentity } from '../../load/chat-client.js';
import type { ClientKind } from './types.js';

/** The chat channel every player is in (namespace `chat`, with history). */
export const CHANNEL = 'chat:lobby';
/** The RPC whose answer is the old builds' payload, cached as `proxy.cache.rpc`. */
export const METHOD = 'sticker.fallback';
/** The token feature of builds that render animated stickers. */
export const FEATURE = 'animated_stickers';
/** The SDK name every player's client declares at connect. */
export const CLIENT_NAME = 'bulwark-chat';
/** The builds: the new one has the feature in its token; the old one (before 5.2) has none. */
export const VERSIONS: Record<ClientKind, string> = { new: '5.3.0', old: '5.1.0' };

/** stickerId is sticker `k`'s id. */
export const stickerId = (k: number): string => `st${k}`;

/** stickerIndex reads a sticker id back; -1 when it is not one. */
export function stickerIndex(id: unknown): number {
  if (typeof id !== 'string' || !/^st\d{1,9}$/.test(id)) return -1;
  return Number(id.slice(2));
}

/** fallbackText is the upgrade text old builds show for a sticker (one per sticker, as in the incident). */
export const fallbackText = (id: string): string => `Update Bulwark Chat to 5.2 to see sticker ${id}`;

/** fallbackAnswer is the origin's answer to `sticker.fallback` for sticker `id`: the old builds' payload. */
export function fallbackAnswer(id: string): { result: { data: unknown } } {
  return { result: { data: { type: 'text', sticker: id, text: fallbackText(id) } } };
}

/**
 * publishBody is the server API `publish` body of a post of sticker `k`: the sticker as `data`
 * for new builds, and a variant for clients whose token lacks the feature, whose payload the
 * backend answers (docs/API.md, "Publication variants"); `key` makes a retry safe.
 */
export function publishBody(k: number, key: string): string {
  const id = stickerId(k);
  return JSON.stringify({
    channel: CHANNEL,
    data: { type: 'sticker', id, animated: true },
    variants: [{ when: { lacks: FEATURE }, rpc: { method: METHOD, data: { id } } }],
    idempotency_key: key,
  });
}

/**
 * kindOf is player `i`'s build: `oldPercent` % old, spread evenly over the players (and so
 * over the nodes, which take players round-robin).
 */
export function kindOf(i: number, oldPercent: number): ClientKind {
  return Math.floor(((i + 1) * oldPercent) / 100) > Math.floor((i * oldPercent) / 100) ? 'old' : 'new';
}

/** identityOf is what player `i` of kind `kind` declares. */
export function identityOf(i: number, kind: ClientKind): ChatIdentity {
  return {
    user: `p${i}`,
    name: CLIENT_NAME,
    version: VERSIONS[kind],
    features: kind === 'new' ? [FEATURE] : undefined,
  };
}

/** Received is which payload a delivery carried: the kind it is for and its sticker (-1: unknown). */
export interface Received {
  kind: ClientKind | undefined;
  sticker: number;
}

/** readPayload tells which payload `data` is: a new build's sticker, an old build's upgrade text, or neither. */
export function readPayload(data: unknown): Received {
  if (typeof data !== 'object' || data === null) return { kind: undefined, sticker: -1 };
  const d = data as { type?: unknown; id?: unknown; sticker?: unknown; text?: unknown };
  if (d.type === 'sticker') return { kind: 'new', sticker: stickerIndex(d.id) };
  if (d.type === 'text' && typeof d.sticker === 'string' && d.text === fallbackText(d.sticker)) {
    return { kind: 'old', sticker: stickerIndex(d.sticker) };
  }
  return { kind: undefined, sticker: -1 };
}

/** Post is one planned post: which sticker, through which node, in the burst or after. */
export interface Post {
  sticker: number;
  node: number;
  burst: boolean;
}

/** mulberry32 is a small seeded PRNG, so every run posts the same plan. */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * planPosts is the posts in order. The cold burst first: each sticker min(nodes, perSticker)
 * times, once through each node, the copies of one sticker next to each other so that they are
 * in flight together (the race single flight and the shared tier's lock must win). Then the
 * rest of each sticker's posts, shuffled, each through a random node.
 */
export function planPosts(stickers: number, perSticker: number, nodes: number, rand = mulberry32(14)): Post[] {
  const copies = Math.min(nodes, perSticker);
  const burst: Post[] = [];
  for (let k = 0; k < stickers; k++) for (let n = 0; n < copies; n++) burst.push({ sticker: k, node: n, burst: true });
  const steady: Post[] = [];
  for (let k = 0; k < stickers; k++) {
    for (let j = copies; j < perSticker; j++) steady.push({ sticker: k, node: 0, burst: false });
  }
  for (let i = steady.length - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    [steady[i], steady[j]] = [steady[j] as Post, steady[i] as Post];
  }
  for (const p of steady) p.node = Math.floor(rand() * nodes);
  return [...burst, ...steady];
}
