/**
 * User commands: the server API methods that act on a user's connections wherever they are
 * connected (subscribe, unsubscribe, disconnect, refresh, send). This module holds their
 * request bodies (zod) and runs them on this node's sessions; a command called here is also
 * relayed to every other node as a `user_command` control message, which each node validates
 * again — another node's message is input like any other.
 *
 * @module
 */
import type { Logger } from 'pino';
import { z } from 'zod';
import type { ChannelRules } from '../channel-rules.js';
import type { ClientSession } from '../client/session.js';
import { DisconnectCode, UnsubscribeCode, disconnect } from '../protocol/codes.js';
import { asRaw, type RawJSON } from '../protocol/types.js';
import { b64jsonField, channelField, jsonField, parseBody, streamPositionField } from '../util/request-body.js';
import type { OutgoingControl, userCommandMethods } from './control.js';

/** UserCommandMethod is an API method on a user's connections, run on every node. */
export type UserCommandMethod = (typeof userCommandMethods)[number];

/** The session side of a user command (a ClientSession). */
export type UserCommandSession = Pick<
  ClientSession,
  'id' | 'serverSubscribe' | 'unsubscribe' | 'disconnect' | 'applyRefresh'
>;

/** UserCommandContext is what user commands need from their node. */
export interface UserCommandContext {
  /** Channel names are resolved (and refused when invalid) before anything is sent. */
  readonly rules: Pick<ChannelRules, 'resolve'>;
  readonly log: Logger;
  /** userSessions lists this node's connections of `user`. */
  userSessions(user: string): Iterable<UserCommandSession>;
  /** sendMessage pushes an asynchronous message to every connection of `user` on this node. */
  sendMessage(user: string, data: unknown): number;
  /** send publishes a control message to every other node. */
  send(msg: OutgoingControl): Promise<void>;
}

const targetFields = {
  // An empty user would target every anonymous connection at once.
  user: z.string().min(1),
  client: z.string().optional(),
  session: z.string().optional(),
};

const schemas = {
  subscribe: z.object({
    ...targetFields,
    channel: channelField,
    info: jsonField.optional(),
    b64info: b64jsonField,
    data: jsonField.optional(),
    b64data: b64jsonField,
    recover_since: streamPositionField.optional(),
    expire_at: z.number().int().min(0).optional(),
  }),
  unsubscribe: z.object({ ...targetFields, channel: channelField }),
  disconnect: z.object({
    ...targetFields,
    whitelist: z.array(z.string()).optional(),
    disconnect: z
      .object({
        code: z.number().int().min(3000).max(4999),
        // A WebSocket close reason holds at most 123 bytes (not characters).
        reason: z.string().refine((r) => Buffer.byteLength(r) <= 123, 'reason longer than 123 bytes'),
      })
      .optional(),
  }),
  refresh: z.object({
    ...targetFields,
    expired: z.boolean().optional(),
    expire_at: z.number().int().min(0).optional(),
    info: jsonField.optional(),
    b64info: b64jsonField,
  }),
  send: z.object({ user: z.string(), data: jsonField.optional(), b64data: b64jsonField }),
} as const;

/** UserCommandBodies are the validated bodies of the user commands. */
export type UserCommandBodies = { [M in UserCommandMethod]: z.output<(typeof schemas)[M]> };

/** UserCommandBody is the validated body of a user command. */
export type UserCommandBody<M extends UserCommandMethod> = UserCommandBodies[M];

/** The request body of each user command, as the server API takes it. */
export const userCommandSchemas: { readonly [M in UserCommandMethod]: z.ZodType<UserCommandBodies[M]> } = schemas;

function raw(value: unknown): RawJSON | undefined {
  return value === undefined ? undefined : asRaw(value);
}

/** targets selects a user's sessions on this node, narrowed by client when given. */
function targets(ctx: UserCommandContext, t: { user: string; client?: string | undefined }): UserCommandSession[] {
  return [...ctx.userSessions(t.user)].filter((s) => !t.client || s.id === t.client);
}

/** How each command runs on this node's sessions. */
const runners: {
  [M in UserCommandMethod]: (body: UserCommandBody<M>, ctx: UserCommandContext) => Promise<void> | void;
} = {
  async subscribe(p, ctx) {
    ctx.rules.resolve(p.channel);
    for (const s of targets(ctx, p)) {
      await s.serverSubscribe(p.channel, {
        info: raw(p.b64info ?? p.info),
        data: raw(p.b64data ?? p.data),
        since: p.recover_since,
        expireAt: p.expire_at ? p.expire_at * 1000 : 0,
      });
    }
  },
  async unsubscribe(p, ctx) {
    for (const s of targets(ctx, p)) {
      await s.unsubscribe(p.channel, { code: UnsubscribeCode.Server, reason: 'server unsubscribe' });
    }
  },
  disconnect(p, ctx) {
    const d = p.disconnect ?? disconnect(DisconnectCode.ForceNoReconnect);
    const keep = new Set(p.whitelist ?? []);
    for (const s of targets(ctx, p)) if (!keep.has(s.id)) s.disconnect(d);
  },
  refresh(p, ctx) {
    for (const s of targets(ctx, p)) {
      s.applyRefresh((p.expire_at ?? 0) * 1000, raw(p.b64info ?? p.info), p.expired === true);
    }
  },
  send(p, ctx) {
    ctx.sendMessage(p.user, p.b64data ?? p.data ?? null);
  },
};

/** UserCommands runs user commands for one node: called here, or relayed by another node. */
export class UserCommands {
  readonly #ctx: UserCommandContext;

  constructor(ctx: UserCommandContext) {
    this.#ctx = ctx;
  }

  /**
   * everywhere runs a command called on this node: `body` is `raw` validated. A bad channel
   * is the caller's error, refused before anything is sent anywhere; then `raw` goes to every
   * other node and the command runs on this node's sessions.
   */
  async everywhere<M extends UserCommandMethod>(method: M, body: UserCommandBody<M>, raw: unknown): Promise<void> {
    if ('channel' in body && typeof body.channel === 'string') this.#ctx.rules.resolve(body.channel);
    await this.#ctx.send({ type: 'user_command', method, body: raw });
    await runners[method](body, this.#ctx);
  }

  /** receive runs a command another node relayed, validated again; a failure is logged. */
  receive<M extends UserCommandMethod>(method: M, raw: unknown, from: string): void {
    const run = async () => runners[method](parseBody(userCommandSchemas[method], raw), this.#ctx);
    run().catch((err: unknown) => {
      this.#ctx.log.warn({ err, method, from }, 'user command from another node failed');
    });
  }
}
