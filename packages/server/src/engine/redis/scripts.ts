/**
 * The Redis engine's key layout and Lua scripts.
 *
 * Every key and pub/sub channel of one Bulwark channel carries the channel name as a hash tag
 * (`{channel}`), so in a Redis Cluster they share one hash slot: a script may touch all of
 * them, and the script's SPUBLISH goes to the same shard. The prefix contains no braces, so the
 * tag always starts at the channel name whatever the channel contains.
 *
 * Broker, per channel:
 * - `<prefix>.meta.{ch}`    hash: `e` epoch, `t` top offset, `v` and `ve` the version and version
 *   epoch of the last publication that carried one. Expires after the meta TTL.
 * - `<prefix>.stream.{ch}`  stream: one entry per publication, ID `<offset>-0`, fields `d` (data,
 *   raw JSON) and `m` (info/tags/time as JSON, absent when none). Expires after the history TTL.
 * - `<prefix>.pub.{ch}`     pub/sub channel (sharded in cluster mode) carrying publications,
 *   joins and leaves in one ordered flow.
 * - `<prefix>.result.{ch}.<key>`  hash: `o` offset, `e` epoch of the first publish made with
 *   idempotency key `<key>`. Expires after the idempotent result TTL.
 * - `<prefix>.control`      pub/sub channel of control messages for all nodes.
 *
 * Presence, per channel:
 * - `<prefix>.presence.data.{ch}`    hash: client id → ClientInfo JSON.
 * - `<prefix>.presence.expire.{ch}`  sorted set: client id → expiry time (Redis clock, ms).
 * - `<prefix>.presence.users.{ch}`   hash: user id → number of its clients in the data hash.
 *
 * TTLs are set with PEXPIRE (milliseconds), and a key's expiry is only ever moved later
 * ({@link extendFn}), as in the memory engine.
 *
 * @module
 */
import { lua } from './connection.js';

/** brokerKeys are the names of one channel's broker keys and pub/sub channel. */
export function brokerKeys(prefix: string, channel: string): { meta: string; stream: string; pubsub: string } {
  return {
    meta: `${prefix}.meta.{${channel}}`,
    stream: `${prefix}.stream.{${channel}}`,
    pubsub: pubsubChannel(prefix, channel),
  };
}

/** resultKey is the key remembering the first publish with `idempotencyKey` on `channel`. */
export function resultKey(prefix: string, channel: string, idempotencyKey: string): string {
  return `${prefix}.result.{${channel}}.${idempotencyKey}`;
}

/** pubsubChannel is the pub/sub channel carrying one channel's publications, joins and leaves. */
export function pubsubChannel(prefix: string, channel: string): string {
  return `${prefix}.pub.{${channel}}`;
}

/** controlChannel is the pub/sub channel of control messages. */
export function controlChannel(prefix: string): string {
  return `${prefix}.control`;
}

/** presenceKeys are the names of one channel's presence keys, in the order the scripts take them. */
export function presenceKeys(prefix: string, channel: string): [data: string, expire: string, users: string] {
  return [
    `${prefix}.presence.data.{${channel}}`,
    `${prefix}.presence.expire.{${channel}}`,
    `${prefix}.presence.users.{${channel}}`,
  ];
}

/**
 * extendFn sets a key's TTL to `ttl` ms unless it already lives longer, so a call with a short
 * TTL never cuts short what an earlier call promised. PTTL is -1 for a key without expiry (one
 * this script just created), which is below any TTL, so new keys always get one.
 */
const extendFn = `
local function extend(key, ttl)
  if redis.call('pttl', key) < ttl then redis.call('pexpire', key, ttl) end
end
`;

/**
 * ensureEpochFn returns the stream's epoch, creating the position (new epoch, top 0) when
 * missing. A stream left over without its position (the meta key was evicted) is deleted:
 * offsets restart at 1 in the new epoch and must not collide with old entry IDs.
 */
const ensureEpochFn = `
local function ensure_epoch(meta_key, stream_key, new_epoch)
  local epoch = redis.call('hget', meta_key, 'e')
  if epoch then return epoch end
  redis.call('del', stream_key)
  redis.call('hset', meta_key, 'e', new_epoch, 't', 0)
  return new_epoch
end
`;

/**
 * rememberedFn answers a repeated idempotency key: the first publish's {offset, epoch, 1}
 * when `result_key` holds one, else nil; a result TTL of 0 means the publish has no key (the
 * key is still passed, so that in a cluster every key of the script is in the channel's slot).
 * rememberFn files a result, after the publication went out: written before, a failure in
 * between would leave a result claiming a publication nobody received.
 */
const rememberFn = `
local function remembered(result_key, ttl)
  if ttl <= 0 then return nil end
  local r = redis.call('hmget', result_key, 'o', 'e')
  if r[1] then return {tonumber(r[1]), r[2], 1} end
  return nil
end
local function remember(result_key, ttl, offset, epoch)
  if ttl <= 0 then return end
  redis.call('hset', result_key, 'o', offset, 'e', epoch)
  redis.call('pexpire', result_key, ttl)
end
`;

/**
 * previousDataFn returns the data of the stream's entry at offset `prev` when it is the last one
 * (still in history), as a JSON string literal: one line, whatever the data holds (delta
 * compression carries it to every node with the publication; client/delta.ts). Else false.
 */
const previousDataFn = `
local function previous_data(stream_key, prev)
  local last = redis.call('xrevrange', stream_key, '+', '-', 'COUNT', 1)[1]
  if not last or last[1] ~= prev .. '-0' then return false end
  for i = 1, #last[2], 2 do
    if last[2][i] == 'd' then return cjson.encode(last[2][i + 1]) end
  end
  return false
end
`;

/**
 * PUBLISH appends a publication to the channel stream and publishes it, in one atomic step:
 * no other publish of the channel can run in between, so offsets are gapless, history holds
 * exactly what was published, and the pub/sub messages leave Redis in offset order. The
 * idempotency check and the version check run in the same step, so two concurrent repeats
 * (on any nodes) publish once.
 *
 * KEYS: meta, stream, result. ARGV: data, meta JSON ('' when none), history size, history TTL
 * (ms), meta TTL (ms), epoch to use if the position is missing, pub/sub channel, publish
 * command (PUBLISH, or SPUBLISH in a cluster), result TTL (ms; 0: no idempotency key),
 * version (0: none), version epoch, '1' to carry the previous publication's data (delta
 * compression). Returns {offset, epoch, suppressed}: suppressed is 0 when
 * published, 1 for a repeated key (with the first result), 2 for a version not above the last
 * one (with the current position).
 *
 * The meta key lives at least as long as the stream (`max(meta TTL, history TTL)`), so
 * publications never outlive their position. The pub/sub message is
 * `p\n<offset>\n<epoch>\n<meta JSON>\n<data>`: the header lines cannot contain a newline, and
 * data, last, is passed on as is whatever it contains. With the previous publication's data it
 * is `d\n<offset>\n<epoch>\n<meta JSON>\n<previous data as a JSON string>\n<data>`.
 */
export const publishScript = lua(`${extendFn}${ensureEpochFn}${rememberFn}${previousDataFn}
local meta_key, stream_key, result_key = KEYS[1], KEYS[2], KEYS[3]
local result_ttl = tonumber(ARGV[9])
local first = remembered(result_key, result_ttl)
if first then return first end
local data, pub_meta = ARGV[1], ARGV[2]
local size, history_ttl, meta_ttl = ARGV[3], tonumber(ARGV[4]), tonumber(ARGV[5])
local epoch = ensure_epoch(meta_key, stream_key, ARGV[6])
local version, version_epoch = tonumber(ARGV[10]), ARGV[11]
if version > 0 then
  local last = redis.call('hmget', meta_key, 'v', 've', 't')
  if last[1] and (version_epoch == '' or version_epoch == last[2]) and tonumber(last[1]) >= version then
    return {tonumber(last[3]), epoch, 2}
  end
  redis.call('hset', meta_key, 'v', ARGV[10], 've', version_epoch)
end
local offset = redis.call('hincrby', meta_key, 't', 1)
local prev = ARGV[12] == '1' and previous_data(stream_key, offset - 1)
if pub_meta == '' then
  redis.call('xadd', stream_key, 'MAXLEN', size, offset .. '-0', 'd', data)
else
  redis.call('xadd', stream_key, 'MAXLEN', size, offset .. '-0', 'd', data, 'm', pub_meta)
end
extend(stream_key, history_ttl)
extend(meta_key, math.max(meta_ttl, history_ttl))
if prev then
  redis.call(ARGV[8], ARGV[7], 'd\\n' .. offset .. '\\n' .. epoch .. '\\n' .. pub_meta .. '\\n' .. prev .. '\\n' .. data)
else
  redis.call(ARGV[8], ARGV[7], 'p\\n' .. offset .. '\\n' .. epoch .. '\\n' .. pub_meta .. '\\n' .. data)
end
remember(result_key, result_ttl, offset, epoch)
return {offset, epoch, 0}
`);

/**
 * PUBLISH_ONCE publishes a publication without history at most once per idempotency key: the
 * check, the pub/sub publish and the remembered result are one atomic step.
 *
 * KEYS: result. ARGV: pub/sub message, pub/sub channel, publish command, result TTL (ms).
 * Returns {0, '', suppressed}: 0 published, 1 a repeated key.
 */
export const publishOnceScript = lua(`${rememberFn}
local ttl = tonumber(ARGV[4])
local first = remembered(KEYS[1], ttl)
if first then return first end
redis.call(ARGV[3], ARGV[2], ARGV[1])
remember(KEYS[1], ttl, 0, '')
return {0, '', 0}
`);

/**
 * HISTORY reads the stream position and a range of publications in one atomic step (so the
 * returned top offset and publications agree), creating the position if missing and keeping
 * it for at least the meta TTL.
 *
 * KEYS: meta, stream. ARGV: epoch to use if the position is missing, meta TTL (ms), direction
 * ('f' forward: XRANGE start → end, 'r' reverse: XREVRANGE end → start, 'n' none: position
 * only), first ID, last ID, count (0: no limit). Returns {top offset, epoch, entries}.
 */
export const historyScript = lua(`${extendFn}${ensureEpochFn}
local meta_key, stream_key = KEYS[1], KEYS[2]
local epoch = ensure_epoch(meta_key, stream_key, ARGV[1])
extend(meta_key, tonumber(ARGV[2]))
local top = tonumber(redis.call('hget', meta_key, 't'))
local dir, first, last, count = ARGV[3], ARGV[4], ARGV[5], tonumber(ARGV[6])
local entries = {}
if dir == 'f' then
  if count > 0 then entries = redis.call('xrange', stream_key, first, last, 'COUNT', count)
  else entries = redis.call('xrange', stream_key, first, last) end
elseif dir == 'r' then
  if count > 0 then entries = redis.call('xrevrange', stream_key, last, first, 'COUNT', count)
  else entries = redis.call('xrevrange', stream_key, last, first) end
end
return {top, epoch, entries}
`);

/**
 * pruneFn drops the channel's expired presence entries (expiry before `now`), keeping the
 * users hash equal to a count of the data hash by user. Every presence script runs it first,
 * so reads never see an expired entry and memory stays bounded by live entries.
 */
const presencePruneFn = `
local data_key, expire_key, users_key = KEYS[1], KEYS[2], KEYS[3]
local t = redis.call('time')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local function forget_user(info)
  local user = cjson.decode(info).user
  if redis.call('hincrby', users_key, user, -1) <= 0 then redis.call('hdel', users_key, user) end
end
local expired = redis.call('zrangebyscore', expire_key, '-inf', '(' .. now)
for _, client in ipairs(expired) do
  local info = redis.call('hget', data_key, client)
  if info then
    forget_user(info)
    redis.call('hdel', data_key, client)
  end
end
if #expired > 0 then redis.call('zremrangebyscore', expire_key, '-inf', '(' .. now) end
`;

/**
 * PRESENCE_ADD adds or replaces a client's entry, expiring `ttl` ms from now by the Redis
 * clock (one clock for every node, so node clock skew cannot expire entries early). A client
 * added again under another user moves its count to the new user. The three keys live as long
 * as their longest-lived entry, so an abandoned channel frees itself.
 *
 * KEYS: data, expire, users. ARGV: client id, user id, ClientInfo JSON, TTL (ms).
 */
export const presenceAddScript = lua(`${extendFn}${presencePruneFn}
local client, user, info, ttl = ARGV[1], ARGV[2], ARGV[3], tonumber(ARGV[4])
local old = redis.call('hget', data_key, client)
if old then forget_user(old) end
redis.call('hincrby', users_key, user, 1)
redis.call('hset', data_key, client, info)
redis.call('zadd', expire_key, now + ttl, client)
extend(data_key, ttl)
extend(expire_key, ttl)
extend(users_key, ttl)
return 1
`);

/**
 * PRESENCE_REMOVE removes a client's entry at once. The user whose count drops is taken from
 * the stored entry, the authority on what was counted.
 *
 * KEYS: data, expire, users. ARGV: client id.
 */
export const presenceRemoveScript = lua(`${presencePruneFn}
local old = redis.call('hget', data_key, ARGV[1])
if old then
  forget_user(old)
  redis.call('hdel', data_key, ARGV[1])
  redis.call('zrem', expire_key, ARGV[1])
end
return 1
`);

/** PRESENCE_GET returns the live entries as a flat list: client id, ClientInfo JSON, …. KEYS: data, expire, users. */
export const presenceGetScript = lua(`${presencePruneFn}
return redis.call('hgetall', data_key)
`);

/** PRESENCE_STATS returns {number of clients, number of distinct users}. KEYS: data, expire, users. */
export const presenceStatsScript = lua(`${presencePruneFn}
return {redis.call('hlen', data_key), redis.call('hlen', users_key)}
`);
