/**
 * Server API methods, Centrifugo-compatible: the same request bodies and `{result}` /
 * `{error}` replies. The table holds each method's body schema (zod) and what it runs; each
 * body is validated whole before anything is applied, so a bad request changes nothing.
 *
 * @module
 */
import { z } from 'zod';
import { ChannelRules } from '../channel-rules.js';
import type { NodeInfo } from '../cluster/control.js';
import type { Config } from '../config/schema.js';
import type { KillSwitchSync } from '../cluster/kill-switch-sync.js';
import type { NodeRegistry } from '../cluster/node-registry.js';
import type { Surveys } from '../cluster/survey.js';
import { userCommandSchemas, type UserCommandMethod, type UserCommands } from '../cluster/user-commands.js';
import type { Broker } from '../engine/broker.js';
import { EngineUnavailableError } from '../engine/errors.js';
import type { MapBroker } from '../engine/map-broker.js';
import type { PresenceManager } from '../engine/presence.js';
import type { Metrics } from '../metrics.js';
import { ANY, killSwitchKinds } from '../protection/kill-switches.js';
import { ErrorCode, ProtocolError } from '../protocol/codes.js';
import type { PublicationVariant, StreamPosition } from '../protocol/types.js';
import { channelField, parseBody, streamPositionField } from '../util/request-body.js';
import { clientInfoJson, engineErrorJson, publicationJson } from './api-json.js';
import { mapApiMethods } from './api-map.js';
import { sharedPollApiMethods, type SharedPollPublisher } from './api-shared-poll.js';
import {
  dataMissing,
  hasData,
  hasIdempotencyKey,
  plainPublishBody,
  publishFields,
  publishOptionsNow,
  publishOptionsOf,
  type ApiPublishOptions,
  type VariantRequest,
} from './api-publish-options.js';

/** ApiNode is what the server API methods need from the node itself. */
export interface ApiNode {
  /** http_api.* caps the reads (history, presence, channels). */
  readonly config: Readonly<Pick<Config, 'http_api' | 'protection' | 'shared_poll'>>;
  readonly rules: Pick<ChannelRules, 'resolve' | 'historyMetaTtlMs' | 'mapRetention'>;
  /** The node's shared poll state (shared_poll_publish). */
  readonly sharedPolls: SharedPollPublisher;
  /** The engine's map broker (map_* methods). */
  readonly mapBroker: MapBroker;
  readonly metrics: Pick<Metrics, 'mapWrites' | 'mapSuppressed'>;
  /** The engine's broker (history) and presence manager, as they are now. */
  readonly broker: Pick<Broker, 'history' | 'removeHistory' | 'publishNow'>;
  readonly presence: Pick<PresenceManager, 'presence' | 'presenceStats'>;
  /** This node's channels with their subscriber counts (the hub). */
  readonly hub: { channels(): Iterable<[string, number]> };
  /** publish publishes to a channel as the library's Node.publish does. */
  publish(channel: string, data: unknown, opts: ApiPublishOptions): Promise<StreamPosition>;
  /**
   * publishNow is publish completed within the call, for a broker that has `publishNow`
   * (the memory engine): the same checks, errors and counts, without a promise; undefined,
   * with nothing done, for any other broker.
   */
  publishNow(channel: string, data: unknown, opts: ApiPublishOptions): StreamPosition | undefined;
  /** resolveVariants turns a publish's variants into payloads (see node/publication-variants.ts). */
  resolveVariants(variants: readonly VariantRequest[]): Promise<PublicationVariant[]>;
  /** info is this node's entry of the info method. */
  info(): NodeInfo;
  /** drain starts a drain of this node (see Node.drain). */
  drain(windowMs?: number): { clients: number; windowMs: number };
}

/** ApiCluster is what the server API methods need from the node's part in the cluster. */
export interface ApiCluster {
  /** The other live nodes. */
  readonly nodes: Pick<NodeRegistry, 'size' | 'list'>;
  readonly surveys: Pick<Surveys, 'ask'>;
  readonly userCommands: Pick<UserCommands, 'everywhere'>;
  readonly killSwitches: Pick<KillSwitchSync, 'set' | 'remove' | 'list'>;
}

/** ApiContext is what the server API methods run against. */
export interface ApiContext {
  readonly node: ApiNode;
  readonly cluster: ApiCluster;
}

/** ApiMethodEntry is one method of the table: its body schema and how it runs. */
export interface ApiMethodEntry {
  readonly schema: z.ZodType;
  /**
   * False for a method whose effect happens again when it runs again (publish, broadcast,
   * send): an engine failure that may have been applied is answered as such, not as temporary.
   */
  readonly repeatSafe: boolean;
  /** call validates `raw` (throwing ProtocolError 107) and runs the method. */
  call(ctx: ApiContext, raw: unknown): Promise<unknown>;
  /**
   * callNow, where a method has it, is `call` completed within the call when the method can
   * be (see {@link callApiMethodNow}): its result, thrown errors as `call` rejects with, or
   * {@link notNow} with nothing applied.
   */
  callNow?(ctx: ApiContext, raw: unknown): unknown;
}

/** notNow is what a method's synchronous form returns when it cannot complete within the call. */
export const notNow: unique symbol = Symbol('notNow');

/** method makes a table entry: `run` gets the body as `schema` outputs it, and the body as received. */
function method<T>(
  schema: z.ZodType<T>,
  run: (body: T, ctx: ApiContext, raw: unknown) => unknown,
  repeatSafe = true,
): ApiMethodEntry {
  return { schema, repeatSafe, call: async (ctx, raw) => run(parseBody(schema, raw), ctx, raw) };
}

/**
 * relay makes the entry of a method on a user's connections: it reaches the user wherever
 * they are connected (see cluster/user-commands.ts).
 */
function relay<M extends UserCommandMethod>(name: M, repeatSafe = true): ApiMethodEntry {
  return method(
    userCommandSchemas[name],
    async (body, ctx, raw) => {
      await ctx.cluster.userCommands.everywhere(name, body, raw);
      return {};
    },
    repeatSafe,
  );
}

/** The body of `publish`. */
const publishSchema = z.object({ channel: channelField, ...publishFields }).refine(hasData, dataMissing);

/**
 * PublishedAt is a publish's result when the channel keeps history: its position. A class, so
 * that the reply can be written without JSON.stringify (api-call.ts, outcomeJson); as JSON it
 * is `{"offset":N,"epoch":"…"}` like the object it stands for.
 */
export class PublishedAt {
  constructor(
    readonly offset: number,
    readonly epoch: string,
  ) {}
}

/** positionJson is a publish's result: its position, or nothing when the channel keeps no history. */
function positionJson(pos: StreamPosition): PublishedAt | Record<string, never> {
  return pos.offset > 0 ? new PublishedAt(pos.offset, pos.epoch) : {};
}

/** A node's answer to the channels survey: channel → its subscribers there. */
const channelCounts = z.record(z.string(), z.number().int().min(0));

const methods = {
  ...mapApiMethods,
  ...sharedPollApiMethods,
  publish: {
    ...method(
      publishSchema,
      async (p, ctx) => {
        const opts = await publishOptionsOf(p, ctx.node.config.http_api, (v) => ctx.node.resolveVariants(v));
        return positionJson(await ctx.node.publish(p.channel, p.b64data ?? p.data, opts));
      },
      false,
    ),
    // The same publish, answered within the call when the engine publishes synchronously (the
    // memory engine) and there are no variants to resolve (issue 18).
    callNow: (ctx, raw) => {
      if (ctx.node.broker.publishNow === undefined) return notNow;
      const p = plainPublishBody(raw) ?? parseBody(publishSchema, raw);
      if (p.variants !== undefined && p.variants.length > 0) return notNow;
      const pos = ctx.node.publishNow(p.channel, p.b64data ?? p.data, publishOptionsNow(p, ctx.node.config.http_api));
      return pos === undefined ? notNow : positionJson(pos);
    },
  },
  broadcast: method(
    z.object({ channels: z.array(channelField).min(1), ...publishFields }).refine(hasData, dataMissing),
    async (p, ctx) => {
      // Validate every channel first: a broadcast with a bad channel publishes nowhere.
      for (const ch of p.channels) ctx.node.rules.resolve(ch);
      const opts = await publishOptionsOf(p, ctx.node.config.http_api, (v) => ctx.node.resolveVariants(v));
      const responses = await Promise.all(
        p.channels.map(async (ch) => {
          try {
            const pos = await ctx.node.publish(ch, p.b64data ?? p.data, opts);
            return { result: pos.offset > 0 ? { offset: pos.offset, epoch: pos.epoch } : {} };
          } catch (err) {
            if (err instanceof ProtocolError) return { error: err.toWire() };
            // Per channel: the other channels may have been published, so the call as a whole
            // must not say "not applied, retry" (unless a key makes the retry safe).
            if (err instanceof EngineUnavailableError) {
              return { error: engineErrorJson(err, opts.idempotencyKey !== undefined) };
            }
            throw err;
          }
        }),
      );
      return { responses };
    },
    false,
  ),
  subscribe: relay('subscribe'),
  unsubscribe: relay('unsubscribe'),
  disconnect: relay('disconnect'),
  refresh: relay('refresh'),
  presence: method(z.object({ channel: channelField }), async (p, ctx) => {
    const rc = ctx.node.rules.resolve(p.channel);
    if (!rc.options.presence) throw new ProtocolError(ErrorCode.NotAvailable);
    const presence = Object.entries(await ctx.node.presence.presence(p.channel));
    // The read is as large as the channel; encoding and sending it need not be.
    const max = ctx.node.config.http_api.presence_max_clients;
    if (presence.length > max) {
      throw new ProtocolError(
        ErrorCode.LimitExceeded,
        `limit exceeded: ${presence.length} presence entries, more than http_api.presence_max_clients (${max}); use presence_stats`,
      );
    }
    const out: Record<string, unknown> = {};
    for (const [id, info] of presence) out[id] = clientInfoJson(info);
    return { presence: out };
  }),
  presence_stats: method(z.object({ channel: channelField }), async (p, ctx) => {
    const rc = ctx.node.rules.resolve(p.channel);
    if (!rc.options.presence) throw new ProtocolError(ErrorCode.NotAvailable);
    const s = await ctx.node.presence.presenceStats(p.channel);
    return { num_clients: s.numClients, num_users: s.numUsers };
  }),
  history: method(
    z.object({
      channel: channelField,
      limit: z.number().int().optional(),
      since: streamPositionField.optional(),
      reverse: z.boolean().optional(),
    }),
    async (p, ctx) => {
      const limit = historyLimit(p.limit ?? 0, ctx.node.config.http_api.history_max_limit);
      const rc = ctx.node.rules.resolve(p.channel);
      if (!ChannelRules.hasHistory(rc.options)) throw new ProtocolError(ErrorCode.NotAvailable);
      const h = await ctx.node.broker.history(p.channel, {
        since: p.since,
        limit,
        reverse: p.reverse === true,
        metaTtlMs: ctx.node.rules.historyMetaTtlMs(rc.options),
      });
      return { publications: h.publications.map(publicationJson), offset: h.offset, epoch: h.epoch };
    },
  ),
  history_remove: method(z.object({ channel: channelField }), async (p, ctx) => {
    // As Centrifugo: 108 where the namespace keeps no history (there is nothing to remove).
    if (!ChannelRules.hasHistory(ctx.node.rules.resolve(p.channel).options)) {
      throw new ProtocolError(ErrorCode.NotAvailable);
    }
    await ctx.node.broker.removeHistory(p.channel);
    return {};
  }),
  channels: method(z.object({ pattern: z.string().optional() }), async (p, ctx) => {
    const { channels_max_results: max, channels_pattern_max_length: maxPattern } = ctx.node.config.http_api;
    const pattern = p.pattern ?? '';
    if (pattern.length > maxPattern) {
      throw new ProtocolError(
        ErrorCode.BadRequest,
        `bad request: pattern: longer than http_api.channels_pattern_max_length (${maxPattern} characters)`,
      );
    }
    const counts = new Map(ctx.node.hub.channels());
    // Every other live node's channels: the same channel on several nodes adds up.
    for (const reply of await ctx.cluster.surveys.ask('channels', ctx.cluster.nodes.size)) {
      const parsed = channelCounts.safeParse(reply);
      if (!parsed.success) continue;
      for (const [ch, n] of Object.entries(parsed.data)) counts.set(ch, (counts.get(ch) ?? 0) + n);
    }
    const channels: Record<string, { num_clients: number }> = {};
    let found = 0;
    for (const [ch, n] of counts) {
      if (pattern !== '' && !globMatch(pattern, ch)) continue;
      if (++found > max) {
        throw new ProtocolError(
          ErrorCode.LimitExceeded,
          `limit exceeded: more than http_api.channels_max_results (${max}) channels match; narrow the pattern`,
        );
      }
      channels[ch] = { num_clients: n };
    }
    return { channels };
  }),
  info: method(z.object({}), (_p, ctx) => ({ nodes: [ctx.node.info(), ...ctx.cluster.nodes.list()] })),
  send: relay('send', false),
  kill_switch_set: method(
    z.object({
      kind: z.enum(killSwitchKinds),
      target: z.string().default(ANY),
      // Travels to clients in an error message and in a 503 body: short and printable.
      reason: z.string().min(1).max(200),
    }),
    async (p, ctx) => ({ switch: await ctx.cluster.killSwitches.set(p.kind, p.target, p.reason) }),
  ),
  kill_switch_remove: method(
    z.object({ kind: z.enum(killSwitchKinds), target: z.string().default(ANY) }),
    async (p, ctx) => ({ removed: await ctx.cluster.killSwitches.remove(p.kind, p.target) }),
  ),
  kill_switch_list: method(z.object({}), (_p, ctx) => ({ switches: ctx.cluster.killSwitches.list() })),
  drain: method(z.object({ window_ms: z.number().int().min(0).max(3_600_000).optional() }), (p, ctx) => {
    const d = ctx.node.drain(p.window_ms);
    return { clients: d.clients, window_ms: d.windowMs };
  }),
} satisfies Record<string, ApiMethodEntry>;

/** ApiMethod is a server API method name. */
export type ApiMethod = keyof typeof methods;

/** apiMethods lists the server API methods. */
export const apiMethods = Object.keys(methods) as ApiMethod[];

/** isApiMethod tells whether `name` is a server API method. */
export function isApiMethod(name: string): name is ApiMethod {
  return Object.hasOwn(methods, name);
}

/**
 * callApiMethod validates `body` for `method` and runs it. Returns the `result` object, or
 * throws ProtocolError (107 bad request with the first validation problem, or the method's
 * own error).
 */
export function callApiMethod(ctx: ApiContext, name: ApiMethod, body: unknown): Promise<unknown> {
  return methods[name].call(ctx, body);
}

/**
 * callApiMethodNow is callApiMethod completed within the call, for a method that can be (a
 * publish without variants on the memory engine): the result, or a throw as callApiMethod
 * would reject. {@link notNow} when it cannot: nothing was applied; call callApiMethod.
 */
export function callApiMethodNow(ctx: ApiContext, name: ApiMethod, body: unknown): unknown {
  const entry: ApiMethodEntry = methods[name];
  return entry.callNow === undefined ? notNow : entry.callNow(ctx, body);
}

/**
 * isRepeatSafe tells whether running `name` with `body` again cannot repeat its effect (see
 * ApiMethodEntry): a method that is, or a publish or broadcast with an idempotency key.
 */
export function isRepeatSafe(name: ApiMethod, body: unknown): boolean {
  return methods[name].repeatSafe || ((name === 'publish' || name === 'broadcast') && hasIdempotencyKey(body));
}

/**
 * historyLimit checks an API `history` limit against http_api.history_max_limit: -1 (Centrifugo's
 * "no limit") reads up to the cap, 0 to the cap as asked; anything else is refused with 107, so a
 * caller learns the cap instead of receiving a silently shorter page.
 */
function historyLimit(asked: number, max: number): number {
  if (asked === -1) return max;
  if (asked >= 0 && asked <= max) return asked;
  throw new ProtocolError(
    ErrorCode.BadRequest,
    `bad request: limit: must be -1 (all retained, at most ${max}) or 0 to ${max} (http_api.history_max_limit)`,
  );
}

/**
 * globMatch tells whether `text` matches a `channels` pattern (`*` matches any run of
 * characters, as Centrifugo). Greedy with one backtrack point, so its cost is at most
 * pattern × text: a RegExp of many `.*` can backtrack for seconds on a name that almost matches.
 */
export function globMatch(pattern: string, text: string): boolean {
  let p = 0;
  let t = 0;
  let star = -1;
  let mark = 0;
  while (t < text.length) {
    if (p < pattern.length && pattern[p] !== '*' && pattern[p] === text[t]) {
      p++;
      t++;
    } else if (p < pattern.length && pattern[p] === '*') {
      star = p++;
      mark = t;
    } else if (star >= 0) {
      p = star + 1;
      t = ++mark;
    } else {
      return false;
    }
  }
  while (p < pattern.length && pattern[p] === '*') p++;
  return p === pattern.length;
}
