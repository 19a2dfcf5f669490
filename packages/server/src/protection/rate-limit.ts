/**
 * Command rate limits (incident 4: a client bug sent 10x the requests and retried each 3
 * times). Every connection, and every user across their connections on this node, has one
 * token bucket per method class; over the limit the command is answered with error 111 (too
 * many requests, temporary: the SDK retries later), and a connection that keeps going over is
 * disconnected with 3013 (reconnect allowed, after the SDK's backoff).
 *
 * Buckets are kept compact (two small number arrays per owner, made on the first limited
 * command) because there is one set per connection and a node holds 100k of them.
 *
 * @module
 */
import type { Config } from '../config/schema.js';

/** MethodClass groups commands that share a bucket. */
export type MethodClass = 'publish' | 'rpc' | 'read' | 'subscribe';

const classes: readonly MethodClass[] = ['publish', 'rpc', 'read', 'subscribe'];

const classOf: Readonly<Record<string, number>> = {
  publish: 0,
  rpc: 1,
  send: 1,
  history: 2,
  presence: 2,
  presence_stats: 2,
  subscribe: 3,
  unsubscribe: 3,
  sub_refresh: 3,
  refresh: 3,
};

/** methodClass returns the class of a command, or undefined for unlimited ones (connect, ping). */
export function methodClass(method: string): MethodClass | undefined {
  const i = classOf[method];
  return i === undefined ? undefined : classes[i];
}

type Limits = Config['protection']['rate_limit']['connection'];

/**
 * TokenBuckets holds one bucket per method class: `tokens[i]` refilled at `rate` per second up
 * to `burst`, from `last[i]` (ms). Made with `spent` tokens already used from every bucket.
 */
export class TokenBuckets {
  readonly #tokens: number[];
  readonly #last: number[];

  constructor(limits: Limits, now: number, spent = 0) {
    this.#tokens = classes.map((c) => Math.max(0, limits[c].burst - spent));
    this.#last = [now, now, now, now];
  }

  /** take spends one token of class `i`; false when the bucket is empty (the command is refused). */
  take(i: number, rate: number, burst: number, now: number): boolean {
    const elapsed = now - (this.#last[i] as number);
    let tokens = this.#tokens[i] as number;
    if (elapsed > 0) {
      tokens += (elapsed * rate) / 1000;
      this.#last[i] = now;
    }
    // Clamped on every take, so a bucket never holds more than the burst it is checked with.
    tokens = Math.min(burst, tokens);
    if (tokens < 1) {
      this.#tokens[i] = tokens;
      return false;
    }
    this.#tokens[i] = tokens - 1;
    return true;
  }
}

/** RateOwner is a connection as the limiter sees it: its buckets and its count of limited commands. */
export interface RateOwner {
  buckets: TokenBuckets | undefined;
  limitedCommands: number;
}

/** RateVerdict says whether a command may run and, if not, which limit refused it. */
export type RateVerdict = undefined | { scope: 'connection' | 'user'; cls: MethodClass };

/**
 * CommandRateLimiter decides for every command of this node. One instance per node; the
 * per-connection buckets live with each session, per-user buckets here.
 *
 * Memory: a bucket starts full, so the first `burst` commands of a connection can never be
 * refused — a connection gets its buckets only after `freeCommands` (the smallest burst)
 * limited commands, made as if those had been spent from every class (never more lenient). And
 * a user's shared buckets matter only when the user holds several connections here, or when
 * the user limit of a class is stricter than the connection's. So an idle connection that
 * subscribed once carries no buckets at all.
 */
export class CommandRateLimiter {
  readonly #cfg: Config['protection']['rate_limit'];
  readonly #users = new Map<string, TokenBuckets>();
  readonly #freeCommands: number;
  readonly #userStricter: boolean[];

  constructor(cfg: Config['protection']['rate_limit']) {
    this.#cfg = cfg;
    const limited = classes.filter((c) => cfg.connection[c].rate > 0);
    // Only when every class is limited is "fewer commands than the smallest burst" always safe.
    this.#freeCommands =
      limited.length === classes.length ? Math.min(...limited.map((c) => cfg.connection[c].burst)) : 0;
    this.#userStricter = classes.map((c) => {
      const u = cfg.user[c];
      const k = cfg.connection[c];
      return u.rate > 0 && (k.rate === 0 || u.rate < k.rate || u.burst < k.burst);
    });
  }

  /**
   * check spends a token from the connection's (and, where it matters, the user's) bucket for
   * `method`'s class; `userConnections` is how many connections the user holds on this node.
   * Anonymous connections (user '') share no user bucket: they are limited per connection only.
   */
  check(method: string, user: string, own: RateOwner, userConnections: number, now: number): RateVerdict {
    const i = classOf[method];
    if (i === undefined) return undefined;
    const cls = classes[i] as MethodClass;
    const c = this.#cfg.connection[cls];
    own.limitedCommands++;
    if (c.rate > 0 && (own.buckets !== undefined || own.limitedCommands > this.#freeCommands)) {
      own.buckets ??= new TokenBuckets(this.#cfg.connection, now, own.limitedCommands - 1);
      if (!own.buckets.take(i, c.rate, c.burst, now)) return { scope: 'connection', cls };
    }
    const u = this.#cfg.user[cls];
    if (u.rate > 0 && user !== '' && (userConnections > 1 || this.#userStricter[i] || this.#users.has(user))) {
      let b = this.#users.get(user);
      if (!b) this.#users.set(user, (b = new TokenBuckets(this.#cfg.user, now)));
      if (!b.take(i, u.rate, u.burst, now)) return { scope: 'user', cls };
    }
    return undefined;
  }

  /** forgetUser drops a user's buckets when their last connection on this node closed. */
  forgetUser(user: string): void {
    this.#users.delete(user);
  }

  /** Number of users with buckets (for tests). */
  get trackedUsers(): number {
    return this.#users.size;
  }
}
