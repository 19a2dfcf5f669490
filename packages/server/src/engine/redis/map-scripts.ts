/**
 * The Redis map broker's key layout and Lua scripts (the stream broker's are in scripts.ts).
 *
 * Per map channel, every key carrying the channel as a hash tag (`{ch}`), as scripts.ts does:
 * - `<prefix>.map.meta.{ch}`    hash: `e` epoch, `t` top offset, and the retention of the last
 *   write (`ss` stream size, `st` stream TTL, `mt` meta TTL, `kt` key TTL), which key expiry
 *   uses for the removals it makes. Kept without expiry while the channel has entries (its
 *   epoch must not change under them), else for the longest of meta, stream and key TTL.
 * - `<prefix>.map.state.{ch}`   hash: key → entry, `<offset>\n<version>\n<version epoch as a
 *   JSON string>\n<tags JSON or ''>\n<publication meta JSON>\n<data>` (the header lines hold no
 *   newline; data, last, is raw JSON as given).
 * - `<prefix>.map.keys.{ch}`    sorted set: every key with score 0, so ZRANGEBYLEX pages them
 *   in byte order (the memory broker's order) with the last key served as the cursor.
 * - `<prefix>.map.expire.{ch}`  sorted set: key → expiry time (Redis clock, ms) of keys with a TTL.
 * - `<prefix>.map.stream.{ch}`  stream: one entry per change, ID `<offset>-0`, fields `d`
 *   data, `m` publication meta JSON (key, removed, info, tags, score), `t` time (ms).
 * - `<prefix>.map.result.{ch}.<key>`  hash `o`, `e`: the first result of idempotency key `<key>`.
 * - `<prefix>.map.pub.{ch}`     pub/sub channel of the changes, `p\n<offset>\n<epoch>\n<meta>\n<data>`
 *   as codec.ts decodes.
 * - `<prefix>.map.expiring`     sorted set: channel → its earliest key expiry. The cleanup loop
 *   of every node reads it; the channel scripts keep it exact in the same atomic step, which is
 *   why it is one key outside the channels' hash slots (so no Redis Cluster for maps yet).
 *
 * @module
 */
import type { MapSuppressReason } from '../map-broker.js';
import { lua } from './connection.js';

/** MapKeys are one map channel's key names, in the order the scripts take them. */
export interface MapKeys {
  meta: string;
  state: string;
  keys: string;
  expire: string;
  stream: string;
  index: string;
  pubsub: string;
}

/** mapKeys names one map channel's keys and pub/sub channel. */
export function mapKeys(prefix: string, channel: string): MapKeys {
  const tag = `{${channel}}`;
  return {
    meta: `${prefix}.map.meta.${tag}`,
    state: `${prefix}.map.state.${tag}`,
    keys: `${prefix}.map.keys.${tag}`,
    expire: `${prefix}.map.expire.${tag}`,
    stream: `${prefix}.map.stream.${tag}`,
    index: mapIndexKey(prefix),
    pubsub: mapPubsubChannel(prefix, channel),
  };
}

/** mapIndexKey is the sorted set of channels with expiring keys (channel → earliest expiry). */
export function mapIndexKey(prefix: string): string {
  return `${prefix}.map.expiring`;
}

/** mapResultKey remembers the first result of an idempotency key on a map channel. */
export function mapResultKey(prefix: string, channel: string, idempotencyKey: string): string {
  return `${prefix}.map.result.{${channel}}.${idempotencyKey}`;
}

/** mapPubsubChannel carries one map channel's changes. */
export function mapPubsubChannel(prefix: string, channel: string): string {
  return `${prefix}.map.pub.{${channel}}`;
}

/** Result codes of the write scripts (third element of their reply). */
export const MapWriteCode = {
  applied: 0,
  idempotency: 1,
  keyExists: 2,
  keyNotFound: 3,
  positionMismatch: 4,
  version: 5,
  limit: 6,
  needsStream: 7,
  notOwner: 8,
} as const;

/** suppressReasons names the write scripts' codes of a write that changed nothing. */
export const suppressReasons: Readonly<Record<number, MapSuppressReason>> = {
  [MapWriteCode.idempotency]: 'idempotency',
  [MapWriteCode.keyExists]: 'key_exists',
  [MapWriteCode.keyNotFound]: 'key_not_found',
  [MapWriteCode.positionMismatch]: 'position_mismatch',
  [MapWriteCode.version]: 'version',
  [MapWriteCode.notOwner]: 'not_owner',
};

/**
 * The functions every map script shares. KEYS are always meta, state, keys, expire, stream,
 * then the script's own. `change` is the single place a change is numbered, appended to the
 * stream, published and reflected in the meta TTL and expiry index, for writes, removals and
 * expiry alike, so subscribers and stream readers agree on every offset.
 */
const common = `
local K = {meta = KEYS[1], state = KEYS[2], keys = KEYS[3], expire = KEYS[4], stream = KEYS[5]}
local function now_ms()
  local t = redis.call('time')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local function extend(key, ttl)
  if redis.call('pttl', key) < ttl then redis.call('pexpire', key, ttl) end
end
local function ensure_epoch(new_epoch)
  local epoch = redis.call('hget', K.meta, 'e')
  if epoch then return epoch, false end
  redis.call('del', K.stream)
  redis.call('hset', K.meta, 'e', new_epoch, 't', 0)
  return new_epoch, true
end
-- A read keeps the position for the meta TTL, never shortening it nor expiring a kept one.
local function touch_meta(ttl, created)
  local p = redis.call('pttl', K.meta)
  if created or (p >= 0 and p < ttl) then redis.call('pexpire', K.meta, ttl) end
end
local function trim_stream(ttl, now)
  while true do
    local batch = redis.call('xrange', K.stream, '-', '+', 'COUNT', 32)
    if #batch == 0 then return end
    for _, e in ipairs(batch) do
      local f, at = e[2], nil
      for i = 1, #f, 2 do if f[i] == 't' then at = tonumber(f[i + 1]) end end
      if at and at + ttl > now then return end
      redis.call('xdel', K.stream, e[1])
    end
  end
end
local function parse_entry(v)
  local a = string.find(v, '\\n', 1, true)
  local b = string.find(v, '\\n', a + 1, true)
  local c = string.find(v, '\\n', b + 1, true)
  local d = string.find(v, '\\n', c + 1, true)
  return tonumber(string.sub(v, a + 1, b - 1)), string.sub(v, b + 1, c - 1), string.sub(v, c + 1, d - 1)
end
-- The user of an entry's last write (its publication meta's info.user), or nil.
local function entry_user(v)
  local pos = 0
  for _ = 1, 4 do pos = string.find(v, '\\n', pos + 1, true) end
  local stop = string.find(v, '\\n', pos + 1, true)
  local meta = cjson.decode(string.sub(v, pos + 1, stop - 1))
  if type(meta.info) == 'table' and type(meta.info.user) == 'string' then return meta.info.user end
  return nil
end
-- owner_arg is '' (no owner check) or '=' followed by the user who must have written the entry.
local function owned_by_other(entry, owner_arg)
  return owner_arg ~= '' and entry_user(entry) ~= string.sub(owner_arg, 2)
end
local function sync_index(index_key, channel)
  local first = redis.call('zrange', K.expire, 0, 0, 'WITHSCORES')
  if first[1] then redis.call('zadd', index_key, first[2], channel)
  else redis.call('zrem', index_key, channel) end
end
-- R: size, stream_ttl, meta_ttl, key_ttl. Returns the change's offset.
local function change(epoch, R, now, pub_meta, data, pubsub, command)
  local offset = 0
  if R[1] > 0 then
    offset = redis.call('hincrby', K.meta, 't', 1)
    redis.call('xadd', K.stream, 'MAXLEN', R[1], offset .. '-0', 'd', data, 'm', pub_meta, 't', now)
    trim_stream(R[2], now)
    extend(K.stream, R[2])
  end
  redis.call('hset', K.meta, 'ss', R[1], 'st', R[2], 'mt', R[3], 'kt', R[4])
  if redis.call('hlen', K.state) > 0 then redis.call('persist', K.meta)
  elseif math.max(R[2], R[3], R[4]) > 0 then extend(K.meta, math.max(R[2], R[3], R[4])) end
  redis.call(command, pubsub, 'p\\n' .. offset .. '\\n' .. epoch .. '\\n' .. pub_meta .. '\\n' .. data)
  return offset
end
-- Removes an existing entry as a change; tags '' takes the entry's own.
local function remove_entry(epoch, R, now, key, entry, info, tags, pubsub, command)
  if tags == '' then
    local _, _, own = parse_entry(entry)
    tags = own
  end
  redis.call('hdel', K.state, key)
  redis.call('zrem', K.keys, key)
  redis.call('zrem', K.expire, key)
  local meta = '{"key":' .. cjson.encode(key) .. ',"removed":true'
  if tags ~= '' then meta = meta .. ',"tags":' .. tags end
  if info ~= '' then meta = meta .. ',"info":' .. info end
  return change(epoch, R, now, meta .. '}', '', pubsub, command)
end
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
-- The conditions every write checks first, in the memory broker's order. Returns a reply to
-- give instead of writing, or nil, plus the epoch and top.
local function preconditions(result_key, result_ttl, new_epoch, size, exp_offset, exp_epoch)
  local first = remembered(result_key, result_ttl)
  if first then return first end
  local epoch = ensure_epoch(new_epoch)
  local top = tonumber(redis.call('hget', K.meta, 't'))
  if exp_offset ~= '' then
    if size == 0 then return {top, epoch, 7} end
    if exp_epoch ~= epoch or tonumber(exp_offset) ~= top then return {top, epoch, 4} end
  end
  return nil, epoch, top
end
`;

/**
 * MAP_PUBLISH writes one key with every condition checked in the same atomic step.
 *
 * KEYS: meta, state, keys, expire, stream, result, index. ARGV: 1 key, 2 data, 3 publication
 * meta JSON, 4 tags JSON ('' none), 5 stream size, 6 stream TTL, 7 meta TTL, 8 key TTL (ms),
 * 9 max keys, 10 epoch if the position is missing, 11 pub/sub channel, 12 publish command,
 * 13 result TTL (0: no idempotency key), 14 key mode ('' | if_new | if_exists), 15 expected
 * offset ('' none), 16 expected epoch, 17 version (0 none), 18 version epoch as a JSON string,
 * 19 channel, 20 owner ('' none, else '=' and the user who must have written an existing key),
 * 21 '1' to restart an existing key's TTL when if_new finds it. Returns {offset, epoch, code}
 * (code: {@link MapWriteCode}).
 */
export const mapPublishScript = lua(`${common}
local result_key, index_key = KEYS[6], KEYS[7]
local R = {tonumber(ARGV[5]), tonumber(ARGV[6]), tonumber(ARGV[7]), tonumber(ARGV[8])}
local result_ttl = tonumber(ARGV[13])
local refused, epoch, top = preconditions(result_key, result_ttl, ARGV[10], R[1], ARGV[15], ARGV[16])
if refused then return refused end
local key, mode = ARGV[1], ARGV[14]
local existing = redis.call('hget', K.state, key)
if mode == 'if_new' and existing then
  if ARGV[21] == '1' and R[4] > 0 then
    redis.call('zadd', K.expire, now_ms() + R[4], key)
    sync_index(index_key, ARGV[19])
  end
  return {top, epoch, 2}
end
if mode == 'if_exists' and not existing then return {top, epoch, 3} end
if existing and owned_by_other(existing, ARGV[20]) then return {top, epoch, 8} end
local version, version_epoch = tonumber(ARGV[17]), ARGV[18]
if existing then
  local old_version, old_epoch = parse_entry(existing)
  if version > 0 and old_epoch == version_epoch and version <= old_version then return {top, epoch, 5} end
  if version == 0 then version, version_epoch = old_version, old_epoch end
elseif redis.call('hlen', K.state) >= tonumber(ARGV[9]) then
  return {top, epoch, 6}
end
local now = now_ms()
local offset = R[1] > 0 and top + 1 or 0
redis.call('hset', K.state, key,
  offset .. '\\n' .. version .. '\\n' .. version_epoch .. '\\n' .. ARGV[4] .. '\\n' .. ARGV[3] .. '\\n' .. ARGV[2])
if not existing then redis.call('zadd', K.keys, 0, key) end
if R[4] > 0 then redis.call('zadd', K.expire, now + R[4], key) else redis.call('zrem', K.expire, key) end
offset = change(epoch, R, now, ARGV[3], ARGV[2], ARGV[11], ARGV[12])
sync_index(index_key, ARGV[19])
remember(result_key, result_ttl, offset, epoch)
return {offset, epoch, 0}
`);

/**
 * MAP_REMOVE removes one key with its conditions in the same atomic step.
 *
 * KEYS: meta, state, keys, expire, stream, result, index. ARGV: 1 key, 2 info JSON ('' none),
 * 3 tags JSON ('' the entry's), 4 stream size, 5 stream TTL, 6 meta TTL, 7 key TTL, 8 epoch if
 * the position is missing, 9 pub/sub channel, 10 publish command, 11 result TTL, 12 expected
 * offset ('' none), 13 expected epoch, 14 channel, 15 owner (as MAP_PUBLISH's 20). Returns
 * {offset, epoch, code}.
 */
export const mapRemoveScript = lua(`${common}
local result_key, index_key = KEYS[6], KEYS[7]
local R = {tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6]), tonumber(ARGV[7])}
local result_ttl = tonumber(ARGV[11])
local refused, epoch, top = preconditions(result_key, result_ttl, ARGV[8], R[1], ARGV[12], ARGV[13])
if refused then return refused end
local entry = redis.call('hget', K.state, ARGV[1])
if not entry then return {top, epoch, 3} end
if owned_by_other(entry, ARGV[15]) then return {top, epoch, 8} end
local offset = remove_entry(epoch, R, now_ms(), ARGV[1], entry, ARGV[2], ARGV[3], ARGV[9], ARGV[10])
sync_index(index_key, ARGV[14])
remember(result_key, result_ttl, offset, epoch)
return {offset, epoch, 0}
`);

/**
 * MAP_EXPIRE removes up to `batch` keys of one channel whose TTL passed, each as a removal
 * (numbered, streamed and published like any other), with the retention of the channel's
 * last write. Atomic, and it takes the keys it removes from the expiry set, so nodes running
 * it at the same time remove each key exactly once.
 *
 * KEYS: meta, state, keys, expire, stream, index. ARGV: channel, batch, epoch if the position
 * is missing, pub/sub channel, publish command. Returns how many keys it removed.
 */
export const mapExpireScript = lua(`${common}
local now = now_ms()
local due = redis.call('zrangebyscore', K.expire, '-inf', now, 'LIMIT', 0, tonumber(ARGV[2]))
if #due > 0 then
  local epoch = ensure_epoch(ARGV[3])
  local r = redis.call('hmget', K.meta, 'ss', 'st', 'mt', 'kt')
  local R = {tonumber(r[1]) or 0, tonumber(r[2]) or 0, tonumber(r[3]) or 0, tonumber(r[4]) or 0}
  for _, key in ipairs(due) do
    local entry = redis.call('hget', K.state, key)
    if entry then remove_entry(epoch, R, now, key, entry, '', '', ARGV[4], ARGV[5])
    else redis.call('zrem', K.expire, key) end
  end
end
sync_index(KEYS[6], ARGV[1])
return #due
`);

/**
 * MAP_DUE lists up to `batch` channels with a key whose TTL passed (by the Redis clock).
 * KEYS: index. ARGV: batch.
 */
export const mapDueScript = lua(`
local t = redis.call('time')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
return redis.call('zrangebyscore', KEYS[1], '-inf', now, 'LIMIT', 0, tonumber(ARGV[1]))
`);

/**
 * MAP_STATE reads a page of entries (or one key) and the position in one atomic step,
 * creating the position when missing. KEYS: meta, state, keys, expire, stream. ARGV: epoch if
 * missing, meta TTL, cursor ('' first page), limit, key, '1' to read only that key. Returns
 * {top, epoch, next cursor, entries}.
 */
export const mapStateScript = lua(`${common}
local epoch, created = ensure_epoch(ARGV[1])
touch_meta(tonumber(ARGV[2]), created)
local top = tonumber(redis.call('hget', K.meta, 't'))
if ARGV[6] == '1' then
  local v = redis.call('hget', K.state, ARGV[5])
  if v then return {top, epoch, '', {v}} end
  return {top, epoch, '', {}}
end
local limit = tonumber(ARGV[4])
local from = ARGV[3] == '' and '-' or ('(' .. ARGV[3])
local keys = redis.call('zrangebylex', K.keys, from, '+', 'LIMIT', 0, limit + 1)
local cursor = ''
if #keys > limit then
  keys[#keys] = nil
  cursor = keys[#keys]
end
local entries = {}
for _, key in ipairs(keys) do
  local v = redis.call('hget', K.state, key)
  if v then entries[#entries + 1] = v end
end
return {top, epoch, cursor, entries}
`);

/**
 * MAP_STREAM reads the position, the oldest offset the stream keeps (-1: none) and a range of
 * changes in one atomic step, first dropping the changes older than the stream TTL.
 * KEYS: meta, state, keys, expire, stream. ARGV: epoch if missing, meta TTL, direction ('f',
 * 'r' or 'n'), first ID, last ID, count (0: no limit). Returns {top, epoch, oldest, entries}.
 */
export const mapStreamScript = lua(`${common}
local epoch, created = ensure_epoch(ARGV[1])
touch_meta(tonumber(ARGV[2]), created)
local r = redis.call('hmget', K.meta, 't', 'st')
if r[2] then trim_stream(tonumber(r[2]), now_ms()) end
local first = redis.call('xrange', K.stream, '-', '+', 'COUNT', 1)[1]
local oldest = -1
if first then oldest = tonumber(string.sub(first[1], 1, string.find(first[1], '-', 1, true) - 1)) end
local dir, from, to, count = ARGV[3], ARGV[4], ARGV[5], tonumber(ARGV[6])
local entries = {}
if dir == 'f' then
  if count > 0 then entries = redis.call('xrange', K.stream, from, to, 'COUNT', count)
  else entries = redis.call('xrange', K.stream, from, to) end
elseif dir == 'r' then
  if count > 0 then entries = redis.call('xrevrange', K.stream, to, from, 'COUNT', count)
  else entries = redis.call('xrevrange', K.stream, to, from) end
end
return {tonumber(r[1]), epoch, oldest, entries}
`);

/** MAP_CLEAR drops a channel's state, stream and position. KEYS: meta, state, keys, expire, stream, index. ARGV: channel. */
export const mapClearScript = lua(`
redis.call('del', KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5])
redis.call('zrem', KEYS[6], ARGV[1])
return 1
`);
