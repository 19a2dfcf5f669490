/**
 * Map subscriptions (Centrifugo's subscription types 1 map, 2 map_clients, 3 map_users): the
 * subscribe that spans several requests, as the `centrifuge` SDK's map subscription drives it.
 *
 * - STATE (phase 2): the client pages through the map's entries with `cursor`. The first page
 *   freezes the stream position the later phases continue from.
 * - STREAM (phase 1, durable and persistent maps): the client catches up on the changes after
 *   that position (or after its own, when it recovers after a reconnect). Once at most
 *   `map.live_transition_max_publication_limit` changes are left, the reply carries them and
 *   goes LIVE (phase 0): the subscription is made.
 * - Ephemeral maps have no stream: the last state page goes LIVE and carries every change that
 *   arrived since the first page.
 *
 * The subscription is indexed in the hub from the first request on, buffering what arrives,
 * so no change falls between the pages and the live stream: a positioned subscriber drops,
 * by offset, what its replies already carried; an ephemeral one applies changes over the
 * state, last write winning per key. A subscribe not live by `map.subscribe_catch_up_timeout`
 * is dropped, so an abandoned one holds nothing.
 *
 * @module
 */
import { ChannelRules, type ResolvedChannel } from '../channel-rules.js';
import type { ChannelOptions } from '../config/schema.js';
import { ErrorCode, ProtocolError } from '../protocol/codes.js';
import { bothFilters, matches } from '../protocol/tags-filter.js';
import { ttlSeconds } from '../protocol/ttl.js';
import type { Publication, Reply, SubscribeRequest, SubscribeResult } from '../protocol/types.js';
import { joinMapPresence, mapKeysOf } from './map-presence.js';
import type { SessionCore } from './session-core.js';
import type { SubState } from './subscriber.js';
import { authorizeSubscribe, removeSubscription } from './subscribe.js';

/** The protocol's phases of a map subscribe. */
const Phase = { Live: 0, Stream: 1, State: 2 } as const;

/** typeNumbers maps a namespace's subscription_type to the protocol's subscription type. */
const typeNumbers: Record<ChannelOptions['subscription_type'], number> = {
  stream: 0,
  map: 1,
  map_clients: 2,
  map_users: 3,
  shared_poll: 4,
};

type Answer = { reply: Reply; after: () => void };

/** mapSubscribeCommand runs one request of a map subscribe (see the module note). */
export async function mapSubscribeCommand(s: SessionCore, rc: ResolvedChannel, req: SubscribeRequest): Promise<Answer> {
  const ns = rc.options;
  const type = req.type ?? 0;
  const want = typeNumbers[ns.subscription_type];
  if (!ChannelRules.isMap(ns) || type !== want) {
    throw new ProtocolError(
      ErrorCode.BadRequest,
      `bad request: channel takes ${ns.subscription_type} subscriptions (type ${want}), not type ${type}`,
    );
  }
  const phase = req.phase ?? Phase.Live;
  if (phase !== Phase.State && phase !== Phase.Stream) {
    throw new ProtocolError(
      ErrorCode.BadRequest,
      'bad request: a map subscribe asks for phase 2 (state) or 1 (stream)',
    );
  }
  const positioned = ns.map.mode !== 'ephemeral';
  if (phase === Phase.Stream && !positioned) {
    throw new ProtocolError(ErrorCode.BadRequest, 'bad request: an ephemeral map has no stream to catch up from');
  }
  let state = s.subs.get(rc.channel);
  if (state !== undefined && state.mapSync === undefined) throw new ProtocolError(ErrorCode.AlreadySubscribed);
  if (state === undefined) {
    // A state page after the first needs the changes buffered since the first: when its
    // subscribe was dropped (catch-up timeout), only a fresh start converges.
    if (phase === Phase.State && (req.cursor ?? '') !== '') throw new ProtocolError(ErrorCode.UnrecoverablePosition);
    state = await begin(s, rc, req, positioned);
  }
  const sub = state;
  try {
    return phase === Phase.State ? await statePage(s, rc, sub, req, positioned) : await streamPage(s, rc, sub, req);
  } catch (err) {
    // A failed request ends the subscribe: the SDK starts again (or gives up) as the error says.
    await drop(s, sub);
    throw err;
  }
}

/** begin authorizes a new map subscribe and indexes it, buffering, until it goes live. */
async function begin(
  s: SessionCore,
  rc: ResolvedChannel,
  req: SubscribeRequest,
  positioned: boolean,
): Promise<SubState> {
  const ctx = s.ctx;
  const a = await authorizeSubscribe(s, rc, req);
  if (s.subs.has(rc.channel)) throw new ProtocolError(ErrorCode.AlreadySubscribed);
  const timeout = rc.options.map.subscribe_catch_up_timeout;
  const state: SubState = {
    channel: rc.channel,
    joinLeave: false,
    positioned,
    recoverable: positioned,
    presence: false,
    joinLeaveEnabled: false,
    buffer: [],
    offset: 0,
    epoch: '',
    expireAt: a.expireAt,
    chanInfo: a.claims?.info ?? a.proxied?.info,
    subRefreshProxy: a.subRefreshProxy,
    refreshing: false,
    filter: bothFilters(a.enforced, a.ownFilter),
    serverFilter: a.enforced,
    mapKeys: mapKeysOf(rc, s.user),
    mapSync: {
      type: req.type ?? 1,
      data: a.claims?.data ?? a.proxied?.data,
      timer: setTimeout(() => {
        if (s.subs.get(rc.channel) !== state || state.mapSync === undefined) return;
        ctx.log.info({ client: s.id, channel: rc.channel }, 'map subscribe not live in time: dropped');
        ctx.metrics.reject('map_catch_up_timeout');
        void drop(s, state);
      }, timeout).unref(),
    },
  };
  s.subs.set(rc.channel, state);
  ctx.metrics.subscriptions.inc();
  ctx.hub.addSub(rc.channel, s, state);
  try {
    await ctx.nodeSubscribe(rc.channel);
  } catch (err) {
    await drop(s, state);
    throw err;
  }
  if (s.state === 'closed') {
    await drop(s, state);
    throw new ProtocolError(ErrorCode.Internal);
  }
  return state;
}

/** drop ends a subscribe that did not go live: out of the session, the hub and the node. */
async function drop(s: SessionCore, state: SubState): Promise<void> {
  if (state.mapSync !== undefined) clearTimeout(state.mapSync.timer);
  if (s.subs.get(state.channel) !== state) return;
  s.subs.delete(state.channel);
  await removeSubscription(s, state).catch(() => undefined);
}

/** pageLimit is the page size a request gets: its own `limit` within the namespace's bounds. */
function pageLimit(ns: ChannelOptions, asked: number | undefined): number {
  const m = ns.map;
  const want = asked !== undefined && asked > 0 ? asked : m.default_page_size;
  return Math.min(m.max_page_size, Math.max(m.min_page_size, want));
}

/** statePage serves a page of entries (phase 2); on an ephemeral map the last page goes live. */
async function statePage(
  s: SessionCore,
  rc: ResolvedChannel,
  state: SubState,
  req: SubscribeRequest,
  positioned: boolean,
): Promise<Answer> {
  const ctx = s.ctx;
  const ns = rc.options;
  const page = await ctx.mapBroker.readState(rc.channel, {
    cursor: req.cursor ?? '',
    limit: pageLimit(ns, req.limit),
    metaTtlMs: ctx.rules.mapRetention(ns).metaTtlMs,
  });
  const type = state.mapSync?.type ?? 1;
  // Later pages carry the position frozen at the first one; a new epoch tells the SDK to start over.
  const frozen = req.epoch !== undefined && req.epoch !== '' ? { offset: req.offset ?? 0, epoch: req.epoch } : page;
  const result: SubscribeResult = { type, phase: Phase.State, epoch: page.epoch, offset: frozen.offset };
  if (frozen.epoch !== page.epoch) return { reply: { method: 'subscribe', result }, after: noop };
  result.state = entriesFor(state, page.entries);
  if (page.cursor !== '' || positioned) {
    if (page.cursor !== '') result.cursor = page.cursor;
    return { reply: { method: 'subscribe', result }, after: noop };
  }
  // Ephemeral, last page: live, with every change buffered since the first page.
  const buffered = (state.buffer ?? []).map(([pub]) => pub).filter((p): p is Publication => p !== undefined);
  state.buffer = [];
  result.phase = Phase.Live;
  if (buffered.length > 0) result.publications = entriesFor(state, buffered);
  return live(s, state, result);
}

/** streamPage serves the changes after a position (phase 1), going live when few are left. */
async function streamPage(
  s: SessionCore,
  rc: ResolvedChannel,
  state: SubState,
  req: SubscribeRequest,
): Promise<Answer> {
  const ctx = s.ctx;
  const ns = rc.options;
  const limit = pageLimit(ns, req.limit);
  const liveLimit = ns.map.live_transition_max_publication_limit || ns.map.max_page_size;
  const since = { offset: req.offset ?? 0, epoch: req.epoch ?? '' };
  const metaTtlMs = ctx.rules.mapRetention(ns).metaTtlMs;
  const page = await ctx.mapBroker.readStream(rc.channel, { since, limit: liveLimit + 1, metaTtlMs });
  const type = state.mapSync?.type ?? 1;
  const pubs = page.publications;
  if (pubs.length > liveLimit) {
    const part = pubs.slice(0, limit);
    const last = part[part.length - 1] as Publication;
    const result: SubscribeResult = { type, phase: Phase.Stream, epoch: page.epoch, offset: last.offset };
    result.publications = entriesFor(state, part);
    return { reply: { method: 'subscribe', result }, after: noop };
  }
  const result: SubscribeResult = { type, epoch: page.epoch, offset: page.offset, positioned: true, recoverable: true };
  if (pubs.length > 0) result.publications = entriesFor(state, pubs);
  if (req.recover === true) {
    result.recovered = true;
    result.was_recovering = true;
  }
  state.offset = page.offset;
  state.epoch = page.epoch;
  return live(s, state, result);
}

/**
 * live makes the subscription: the reply goes out, then what arrived meanwhile follows it. As
 * for a stream subscription, a token's expiry is told to the client (unless the sub_refresh
 * proxy prolongs it) and its data passed on.
 */
function live(s: SessionCore, state: SubState, result: SubscribeResult): Answer {
  const sync = state.mapSync;
  if (sync !== undefined) clearTimeout(sync.timer);
  state.mapSync = undefined;
  if (state.expireAt > 0) {
    if (state.subRefreshProxy === undefined) {
      result.expires = true;
      result.ttl = ttlSeconds(state.expireAt);
    }
    s.subsChanged();
  }
  if (sync?.data !== undefined) result.data = sync.data;
  const after = () => {
    const buffered = state.buffer ?? [];
    state.buffer = undefined;
    for (const [pub, frame] of buffered) {
      if (pub) s.deliverPublication(state, pub, frame);
      else s.enqueue(frame as Buffer);
    }
    joinMapPresence(s, state);
  };
  return { reply: { method: 'subscribe', result }, after };
}

/** entriesFor keeps the entries a filtered subscription may see (tags filters apply to state too). */
function entriesFor(state: SubState, pubs: Publication[]): Publication[] {
  const f = state.filter;
  return f === undefined ? pubs : pubs.filter((p) => matches(f, p.tags));
}

function noop(): void {}
