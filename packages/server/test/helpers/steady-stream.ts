/**
 * A steady stream watched by a well-behaved client: the bad-input tests publish `{n}` to one
 * channel throughout their storm and check afterwards that the good subscriber received every
 * publication once, in order, while hostile clients were being closed around it.
 */
import type { PublicationContext } from 'centrifuge';
import { connected, nextEvent, sleep, type TestServer } from './server.js';

/** SteadyStream is a running publisher and its watching subscriber. */
export interface SteadyStream {
  /** The `n` of every publication the good client received, in order (others' publications too). */
  readonly received: number[];
  /** The good client's reconnects so far. */
  readonly reconnects: () => number;
  /** The good client (its state is checked by some tests). */
  readonly client: Awaited<ReturnType<typeof connected>>;
  /** stop ends the stream after `tail` more publications; resolves with how many were published. */
  stop(tail?: number): Promise<number>;
}

/**
 * steadyStream connects a good client as `user`, subscribes it to `channel` and publishes
 * `{n: 1, 2, …}` every `intervalMs` until stopped (also when the test ends).
 */
export async function steadyStream(
  srv: TestServer,
  t: { after(fn: () => void): void },
  channel: string,
  intervalMs: number,
  user = 'good',
): Promise<SteadyStream> {
  const client = await connected(srv.url, { token: await srv.token(user) });
  t.after(() => client.disconnect());
  let reconnects = 0;
  client.on('connecting', () => reconnects++);
  const sub = client.newSubscription(channel);
  const received: number[] = [];
  sub.on('publication', (ctx: PublicationContext) => received.push((ctx.data as { n: number }).n));
  const subscribed = nextEvent(sub, 'subscribed');
  sub.subscribe();
  await subscribed;
  let published = 0;
  let running = true;
  const publisher = (async () => {
    while (running) {
      await srv.node.publish(channel, { n: ++published });
      await sleep(intervalMs);
    }
  })();
  t.after(() => {
    running = false;
  });
  return {
    received,
    reconnects: () => reconnects,
    client,
    async stop(tail = 0) {
      running = false;
      await publisher;
      for (let i = 0; i < tail; i++) await srv.node.publish(channel, { n: ++published });
      return published;
    },
  };
}
