/**
 * The publication tags filters of one subscription, decided at subscribe: the client's `tf`
 * (Centrifugo v6.4; only where the namespace has `allow_tags_filter`) and the server-enforced
 * `server_tags_filter` a subscription token or the subscribe proxy sets (Bulwark's own; the
 * client cannot widen it: its `tf` only narrows what the server's lets through).
 *
 * Each is checked and compiled once here; delivery (delivery.ts) and recovery (recovery.ts)
 * then only evaluate it.
 *
 * @module
 */
import type { ResolvedChannel } from '../channel-rules.js';
import { ErrorCode, ProtocolError } from '../protocol/codes.js';
import {
  FilterError,
  badFilter,
  compileFilter,
  type CompiledFilter,
  type FilterLimits,
} from '../protocol/tags-filter.js';
import type { SessionCore } from './session-core.js';

/** filterLimits reads client.tags_filter. */
export function filterLimits(s: SessionCore): FilterLimits {
  const c = s.ctx.config.client.tags_filter;
  return {
    maxDepth: c.max_depth,
    maxNodes: c.max_nodes,
    maxValues: c.max_values,
    maxValueLength: c.max_value_length,
  };
}

/**
 * clientFilter compiles the client's `tf`: 107 where the namespace does not allow tags filters
 * (as Centrifugo answers), or when the filter is malformed or over client.tags_filter.*.
 */
export function clientFilter(s: SessionCore, rc: ResolvedChannel, tf: unknown): CompiledFilter | undefined {
  if (tf === undefined) return undefined;
  if (!rc.options.allow_tags_filter) {
    throw new ProtocolError(ErrorCode.BadRequest, 'tags filter is not allowed in this channel');
  }
  try {
    return compileFilter(tf, filterLimits(s));
  } catch (err) {
    if (err instanceof FilterError) throw badFilter(err);
    throw err;
  }
}

const sources = {
  token: 'the subscription token',
  proxy: 'the subscribe proxy',
  subs: 'a server-side subscription (connection token or connect proxy subs); channel skipped',
};

/**
 * serverFilter compiles a server-enforced filter. A bad one is the backend's mistake, never
 * the client's: from a subscription token it is a token that does not verify (103); from the
 * subscribe proxy, a malformed answer (100, temporary); in the `subs` of a connection token or
 * connect proxy result, the connect skips that channel (as it skips an invalid channel). Logged.
 */
export function serverFilter(
  s: SessionCore,
  channel: string,
  raw: unknown,
  from: keyof typeof sources,
): CompiledFilter | undefined {
  if (raw === undefined) return undefined;
  try {
    return compileFilter(raw, filterLimits(s), 'server_tags_filter');
  } catch (err) {
    if (!(err instanceof FilterError)) throw err;
    s.ctx.burstLog.warn(
      `tags_filter.${from}`,
      { client: s.id, user: s.user, channel, err: err.message },
      `invalid server_tags_filter from ${sources[from]}`,
    );
    if (from !== 'proxy') throw new ProtocolError(ErrorCode.PermissionDenied);
    throw new ProtocolError(ErrorCode.Internal, undefined, true);
  }
}
