/**
 * A real `centrifuge` subscription with what it received recorded, for tests that publish
 * numbered data (`{n}`) and check which publications arrived, in which order, and how.
 *
 * @module
 */
import type { Centrifuge, SubscribedContext, SubscribingContext, Subscription, SubscriptionOptions } from 'centrifuge';
import { waitUntil } from './server.js';

/** Tracked is a subscription and what it saw. */
export interface Tracked {
  sub: Subscription;
  /** `data.n` of each publication, in order of arrival. */
  received: number[];
  /** The offset of each publication (-1 when it had none). */
  offsets: number[];
  /** Every subscribed event (the first, then one per resubscribe). */
  subscribed: SubscribedContext[];
  /** Subscribing events after the first subscribe (a resubscribe shows here, with its code). */
  subscribing: SubscribingContext[];
}

/** track subscribes `client` to `channel` and resolves once it is subscribed. */
export async function track(
  client: Centrifuge,
  channel: string,
  opts: Partial<SubscriptionOptions> = {},
): Promise<Tracked> {
  const sub = client.newSubscription(channel, opts);
  const tr: Tracked = { sub, received: [], offsets: [], subscribed: [], subscribing: [] };
  sub.on('publication', (ctx) => {
    tr.received.push((ctx.data as { n: number }).n);
    tr.offsets.push(ctx.offset ?? -1);
  });
  sub.on('subscribed', (ctx) => tr.subscribed.push(ctx));
  sub.on('subscribing', (ctx) => tr.subscribing.push(ctx));
  sub.subscribe();
  await waitUntil(() => tr.subscribed.length === 1, 3000, `subscribed to ${channel}`);
  tr.subscribing.length = 0;
  return tr;
}

/** range returns [from, from+1, …, to]. */
export function range(from: number, to: number): number[] {
  return Array.from({ length: Math.max(0, to - from + 1) }, (_, i) => from + i);
}
