/**
 * Server API methods, Centrifugo-compatible: the same request bodies and `{result}` /
 * `{error}` replies. Each body is validated whole (zod) before anything is applied, so a
 * bad request changes nothing.
 *
 * @module
 */
import { z } from 'zod';
import { ChannelRules } from '../channel-rules.js';
import type { Node } from '../node.js';
import { DisconnectCode, ErrorCode, ProtocolError, UnsubscribeCode, disconnect } from '../protocol/codes.js';
import { asRaw, type RawJSON, type Publication } from '../protocol/types.js';
import { ANY, killSwitchKinds } from '../protection/kill-switches.js';
import { userCommandMethods } from '../cluster/control.js';

const channel = z.string().min(1);
const json = z.unknown();
const b64json = z
  .string()
  .transform((s, ctx) => {
    try {
      return JSON.parse(Buffer.from(s, 'base64').toString('utf8')) as unknown;
    } catch {
      ctx.addIssue({ code: 'custom', message: 'not base64 of JSON' });
      return z.NEVER;
    }
  })
  .optional();
const tags = z.record(z.string(), z.string()).optional();
const streamPosition = z.object({ offset: z.number().int().min(0).default(0), epoch: z.string().default('') });

const publishBody = z
  .object({ channel, data: json.optional(), b64data: b64json, skip_history: z.boolean().optional(), tags })
  .refine((b) => b.data !== undefined || b.b64data !== undefined, {
    message: 'data or b64data required',
    path: ['data'],
  });

const broadcastBody = z
  .object({
    channels: z.array(channel).min(1),
    data: json.optional(),
    b64data: b64json,
    skip_history: z.boolean().optional(),
    tags,
  })
  .refine((b) => b.data !== undefined || b.b64data !== undefined, {
    message: 'data or b64data required',
    path: ['data'],
  });

const targetFields = {
  // An empty user would target every anonymous connection at once.
  user: z.string().min(1),
  client: z.string().optional(),
  session: z.string().optional(),
};

const schemas = {
  publish: publishBody,
  broadcast: broadcastBody,
  subscribe: z.object({
    ...targetFields,
    channel,
    info: json.optional(),
    b64info: b64json,
    data: json.optional(),
    b64data: b64json,
    recover_since: streamPosition.optional(),
    expire_at: z.number().int().min(0).optional(),
  }),
  unsubscribe: z.object({ ...targetFields, channel }),
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
    info: json.optional(),
    b64info: b64json,
  }),
  presence: z.object({ channel }),
  presence_stats: z.object({ channel }),
  history: z.object({
    channel,
    limit: z.number().int().optional(),
    since: streamPosition.optional(),
    reverse: z.boolean().optional(),
  }),
  history_remove: z.object({ channel }),
  channels: z.object({ pattern: z.string().optional() }),
  info: z.object({}),
  send: z.object({ user: z.string(), data: json.optional(), b64data: b64json }),
  kill_switch_set: z.object({
    kind: z.enum(killSwitchKinds),
    target: z.string().default(ANY),
    // Travels to clients in an error message and in a 503 body: short and printable.
    reason: z.string().min(1).max(200),
  }),
  kill_switch_remove: z.object({ kind: z.enum(killSwitchKinds), target: z.string().default(ANY) }),
  kill_switch_list: z.object({}),
  drain: z.object({ window_ms: z.number().int().min(0).max(3_600_000).optional() }),
} as const;

/** ApiMethod is a server API method name. */
export type ApiMethod = keyof typeof schemas;

/** apiMethods lists the server API methods. */
export const apiMethods = Object.keys(schemas) as ApiMethod[];

/** isApiMethod tells whether `name` is a server API method. */
export function isApiMethod(name: string): name is ApiMethod {
  return Object.hasOwn(schemas, name);
}

function pubJson(p: Publication): Record<string, unknown> {
  const out: Record<string, unknown> = { data: JSON.parse(p.data) as unknown };
  if (p.info) {
    out['info'] = {
      user: p.info.user,
      client: p.info.client,
      ...(p.info.conn_info !== undefined ? { conn_info: JSON.parse(p.info.conn_info) as unknown } : {}),
      ...(p.info.chan_info !== undefined ? { chan_info: JSON.parse(p.info.chan_info) as unknown } : {}),
    };
  }
  if (p.offset) out['offset'] = p.offset;
  if (p.tags) out['tags'] = p.tags;
  if (p.time) out['time'] = p.time;
  return out;
}

function raw(value: unknown): RawJSON | undefined {
  return value === undefined ? undefined : asRaw(value);
}

/** targets selects a user's sessions on this node, narrowed by client/session when given. */
function targets(node: Node, t: { user: string; client?: string | undefined }) {
  return [...node.hub.userSessions(t.user)].filter((s) => !t.client || s.id === t.client);
}

/** parseBody validates an API body; throws ProtocolError 107 naming the first problem. */
function parseBody<M extends ApiMethod>(method: M, body: unknown): z.output<(typeof schemas)[M]> {
  const parsed = schemas[method].safeParse(body ?? {});
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const where = issue && issue.path.length > 0 ? `${issue.path.join('.')}: ` : '';
    throw new ProtocolError(ErrorCode.BadRequest, `bad request: ${where}${issue?.message ?? 'invalid body'}`);
  }
  return parsed.data as z.output<(typeof schemas)[M]>;
}

/** UserCommandMethod is an API method on a user's connections, run on every node. */
export type UserCommandMethod = (typeof userCommandMethods)[number];

function isUserCommand(method: ApiMethod): method is UserCommandMethod {
  return (userCommandMethods as readonly string[]).includes(method);
}

/**
 * callApiMethod validates `body` for `method` and runs it. Returns the `result` object, or
 * throws ProtocolError (107 bad request with the first validation problem, or the method's
 * own error).
 *
 * Methods on a user's connections (subscribe, unsubscribe, disconnect, refresh, send) reach
 * the user wherever they are connected: once the body is valid, it is sent to every other
 * node as a control message, and applied to this node's sessions.
 */
export async function callApiMethod(node: Node, method: ApiMethod, body: unknown): Promise<unknown> {
  if (isUserCommand(method)) {
    const p = parseBody(method, body);
    // A bad channel is the caller's error, answered before anything is sent anywhere.
    if ('channel' in p) node.rules.resolve(p.channel);
    await node.control.send({ type: 'user_command', method, body });
    await runUserCommand(node, method, p);
    return {};
  }
  const b = parseBody(method, body);
  switch (method) {
    case 'publish': {
      const p = b as z.output<typeof publishBody>;
      const pos = await node.publish(p.channel, p.b64data ?? p.data, { skipHistory: p.skip_history, tags: p.tags });
      return pos.offset > 0 ? { offset: pos.offset, epoch: pos.epoch } : {};
    }
    case 'broadcast': {
      const p = b as z.output<typeof broadcastBody>;
      // Validate every channel first: a broadcast with a bad channel publishes nowhere.
      for (const ch of p.channels) node.rules.resolve(ch);
      const responses = await Promise.all(
        p.channels.map(async (ch) => {
          try {
            const pos = await node.publish(ch, p.b64data ?? p.data, { skipHistory: p.skip_history, tags: p.tags });
            return { result: pos.offset > 0 ? { offset: pos.offset, epoch: pos.epoch } : {} };
          } catch (err) {
            if (err instanceof ProtocolError) return { error: err.toWire() };
            throw err;
          }
        }),
      );
      return { responses };
    }
    case 'presence': {
      const p = b as z.output<(typeof schemas)['presence']>;
      const rc = node.rules.resolve(p.channel);
      if (!rc.options.presence) throw new ProtocolError(ErrorCode.NotAvailable);
      const presence = await node.presence.presence(p.channel);
      const out: Record<string, unknown> = {};
      for (const [id, info] of Object.entries(presence)) {
        out[id] = {
          user: info.user,
          client: info.client,
          ...(info.conn_info !== undefined ? { conn_info: JSON.parse(info.conn_info) as unknown } : {}),
          ...(info.chan_info !== undefined ? { chan_info: JSON.parse(info.chan_info) as unknown } : {}),
        };
      }
      return { presence: out };
    }
    case 'presence_stats': {
      const p = b as z.output<(typeof schemas)['presence_stats']>;
      const rc = node.rules.resolve(p.channel);
      if (!rc.options.presence) throw new ProtocolError(ErrorCode.NotAvailable);
      const s = await node.presence.presenceStats(p.channel);
      return { num_clients: s.numClients, num_users: s.numUsers };
    }
    case 'history': {
      const p = b as z.output<(typeof schemas)['history']>;
      const rc = node.rules.resolve(p.channel);
      if (!ChannelRules.hasHistory(rc.options)) throw new ProtocolError(ErrorCode.NotAvailable);
      const h = await node.broker.history(p.channel, {
        since: p.since,
        limit: p.limit ?? 0,
        reverse: p.reverse === true,
        metaTtlMs: node.rules.historyMetaTtlMs(rc.options),
      });
      return { publications: h.publications.map(pubJson), offset: h.offset, epoch: h.epoch };
    }
    case 'history_remove': {
      const p = b as z.output<(typeof schemas)['history_remove']>;
      node.rules.resolve(p.channel);
      await node.broker.removeHistory(p.channel);
      return {};
    }
    case 'channels': {
      const p = b as z.output<(typeof schemas)['channels']>;
      const re = p.pattern ? globToRegExp(p.pattern) : undefined;
      const counts = new Map(node.hub.channels());
      // Every other live node's channels: the same channel on several nodes adds up.
      for (const reply of await node.surveys.ask('channels', node.nodes.size)) {
        const parsed = channelCounts.safeParse(reply);
        if (!parsed.success) continue;
        for (const [ch, n] of Object.entries(parsed.data)) counts.set(ch, (counts.get(ch) ?? 0) + n);
      }
      const channels: Record<string, { num_clients: number }> = {};
      for (const [ch, n] of counts) if (!re || re.test(ch)) channels[ch] = { num_clients: n };
      return { channels };
    }
    case 'info':
      return { nodes: [node.info(), ...node.nodes.list()] };
    case 'kill_switch_set': {
      const p = b as z.output<(typeof schemas)['kill_switch_set']>;
      return { switch: await node.setKillSwitch(p.kind, p.target, p.reason) };
    }
    case 'kill_switch_remove': {
      const p = b as z.output<(typeof schemas)['kill_switch_remove']>;
      return { removed: await node.removeKillSwitch(p.kind, p.target) };
    }
    case 'kill_switch_list':
      return { switches: node.killSwitches.list() };
    case 'drain': {
      const p = b as z.output<(typeof schemas)['drain']>;
      const d = node.drain(p.window_ms);
      return { clients: d.clients, window_ms: d.windowMs };
    }
  }
}

/** A node's answer to the channels survey: channel → its subscribers there. */
const channelCounts = z.record(z.string(), z.number().int().min(0));

/**
 * applyUserCommand runs a user command received from another node on this node's sessions.
 * The body is validated again: another node's message is input like any other.
 */
export async function applyUserCommand(node: Node, method: UserCommandMethod, body: unknown): Promise<void> {
  await runUserCommand(node, method, parseBody(method, body));
}

async function runUserCommand(node: Node, method: UserCommandMethod, b: unknown): Promise<void> {
  switch (method) {
    case 'subscribe': {
      const p = b as z.output<(typeof schemas)['subscribe']>;
      node.rules.resolve(p.channel);
      for (const s of targets(node, p)) {
        await s.serverSubscribe(p.channel, {
          info: raw(p.b64info ?? p.info),
          data: raw(p.b64data ?? p.data),
          since: p.recover_since,
          expireAt: p.expire_at ? p.expire_at * 1000 : 0,
        });
      }
      return;
    }
    case 'unsubscribe': {
      const p = b as z.output<(typeof schemas)['unsubscribe']>;
      for (const s of targets(node, p)) {
        await s.unsubscribe(p.channel, { code: UnsubscribeCode.Server, reason: 'server unsubscribe' });
      }
      return;
    }
    case 'disconnect': {
      const p = b as z.output<(typeof schemas)['disconnect']>;
      const d = p.disconnect ?? disconnect(DisconnectCode.ForceNoReconnect);
      const keep = new Set(p.whitelist ?? []);
      for (const s of targets(node, p)) if (!keep.has(s.id)) s.disconnect(d);
      return;
    }
    case 'refresh': {
      const p = b as z.output<(typeof schemas)['refresh']>;
      for (const s of targets(node, p)) {
        s.applyRefresh((p.expire_at ?? 0) * 1000, raw(p.b64info ?? p.info), p.expired === true);
      }
      return;
    }
    case 'send': {
      const p = b as z.output<(typeof schemas)['send']>;
      node.sendMessage(p.user, p.b64data ?? p.data ?? null);
      return;
    }
  }
}

/** globToRegExp turns a `channels` pattern (`*` wildcard, as Centrifugo) into a RegExp. */
function globToRegExp(pattern: string): RegExp {
  return new RegExp(
    '^' +
      pattern
        .split('*')
        .map((p) => p.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'))
        .join('.*') +
      '$',
  );
}
