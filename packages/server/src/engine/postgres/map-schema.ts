/**
 * The PostgreSQL map broker's tables and SQL functions (schema version 3): the one place a map
 * channel's state, change stream and position are written, so every write, removal and key
 * expiry is one statement, atomic per channel, whichever node runs it.
 *
 * Tables:
 * - `<prefix>_map_meta`: one row per map channel: epoch, top offset, number of keys, when an
 *   empty channel's position expires (`meta_expires_at`, ms of the database clock), and the
 *   retention of its last write (which key expiry uses for the removals it makes). Locking this
 *   row orders a channel's changes.
 * - `<prefix>_map_state`: (channel, key) → the key's last write (offset, version, data, info,
 *   tags, score, the writer's user for owner checks, expiry). The key is `COLLATE "C"`: byte
 *   order, which is code point order in UTF-8, the memory and Redis brokers' page order; a page
 *   is a range scan of the primary key after the cursor.
 * - `<prefix>_map_stream`: (channel, offset) → one change; a stream read is a range scan.
 * - `<prefix>_map_results`: the first result of each (channel, idempotency key).
 *
 * Functions (all take times from the database clock, NOW_MS):
 * - `<prefix>_map_lock(channel, new_epoch, now, read_ttl)`: locks the meta row (creating it, or
 *   resetting an empty one past its meta TTL to a new epoch). Writes (read_ttl NULL) take it FOR
 *   UPDATE; reads take it FOR SHARE when nothing needs changing, so a page and its position are
 *   one consistent view without serialising readers.
 * - `<prefix>_map_change(…)`: numbers a change, appends it to the stream (trimmed to the stream
 *   size and TTL), updates the meta row and sends the NOTIFY: the single place a change is made,
 *   for writes, removals and expiry alike.
 * - `<prefix>_map_publish(…)`, `<prefix>_map_remove(…)`: the conditions (idempotency, expected
 *   position, key mode, owner, version, max keys) and the write, returning (offset, epoch, code).
 * - `<prefix>_map_expire(channel, keys)`: removes those of `keys` whose TTL passed, each as a
 *   removal; skips a channel another transaction holds (the next cleanup run gets it).
 *   Writes lock the meta row before anything else, so a committed entry always has its meta row.
 * - `<prefix>_map_read_state(…)`, `<prefix>_map_read_stream(…)`: the position, then the page.
 *
 * Notifications on `<prefix>_map_events` (map-codec.ts decodes them): `m` a change with its
 * data, `n` a change too large to carry (read from the stream), `x` an ephemeral change too
 * large for NOTIFY, stored in `<prefix>_notices`.
 *
 * @module
 */
import { NOTIFY_MAX_BYTES } from './publish-function.js';
import { NOW_MS, type Tables } from './tables.js';

/** MapWriteCode is the code a write function returns beside the position. */
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

/** mapTablesSql creates the map tables. */
function mapTablesSql(t: Tables): string {
  return `
CREATE TABLE ${t.mapMeta} (
  channel text PRIMARY KEY,
  epoch text NOT NULL,
  top bigint NOT NULL DEFAULT 0,
  num_keys bigint NOT NULL DEFAULT 0,
  meta_expires_at bigint NOT NULL DEFAULT 0,
  stream_size bigint NOT NULL DEFAULT 0,
  stream_ttl_ms bigint NOT NULL DEFAULT 0,
  meta_ttl_ms bigint NOT NULL DEFAULT 0,
  key_ttl_ms bigint NOT NULL DEFAULT 0
);
CREATE INDEX ${t.mapMeta}_expiry ON ${t.mapMeta} (meta_expires_at) WHERE num_keys = 0;
CREATE TABLE ${t.mapState} (
  channel text NOT NULL,
  key text COLLATE "C" NOT NULL,
  "offset" bigint NOT NULL,
  version bigint NOT NULL DEFAULT 0,
  version_epoch text NOT NULL DEFAULT '',
  data text NOT NULL,
  info jsonb,
  tags jsonb,
  score double precision NOT NULL DEFAULT 0,
  user_id text,
  expires_at bigint NOT NULL DEFAULT 0,
  PRIMARY KEY (channel, key)
);
CREATE INDEX ${t.mapState}_expiry ON ${t.mapState} (expires_at) WHERE expires_at > 0;
CREATE TABLE ${t.mapStream} (
  channel text NOT NULL,
  "offset" bigint NOT NULL,
  key text NOT NULL,
  removed boolean NOT NULL DEFAULT false,
  data text NOT NULL,
  info jsonb,
  tags jsonb,
  score double precision NOT NULL DEFAULT 0,
  created_at bigint NOT NULL,
  PRIMARY KEY (channel, "offset")
);
CREATE TABLE ${t.mapResults} (
  channel text NOT NULL,
  key text NOT NULL,
  "offset" bigint NOT NULL,
  epoch text NOT NULL,
  expires_at bigint NOT NULL,
  PRIMARY KEY (channel, key)
);
CREATE INDEX ${t.mapResults}_expiry ON ${t.mapResults} (expires_at);
`;
}

/** The retention parameters every change function takes, in order. */
const RETENTION = 'p_stream_size bigint, p_stream_ttl_ms bigint, p_meta_ttl_ms bigint, p_key_ttl_ms bigint';

/** mapLockSql: the meta row lock (see the module comment). */
function mapLockSql(t: Tables): string {
  return `
CREATE FUNCTION ${t.mapLock}(p_channel text, p_new_epoch text, p_now bigint, p_read_ttl_ms bigint)
RETURNS ${t.mapMeta} LANGUAGE plpgsql AS $fn$
DECLARE
  m ${t.mapMeta};
BEGIN
  IF p_read_ttl_ms IS NOT NULL THEN
    -- A read of a live channel whose position needs no extending only keeps writers out.
    SELECT * INTO m FROM ${t.mapMeta} WHERE channel = p_channel;
    IF FOUND AND (m.num_keys > 0 OR m.meta_expires_at >= p_now + p_read_ttl_ms) THEN
      SELECT * INTO m FROM ${t.mapMeta} WHERE channel = p_channel FOR SHARE;
      IF FOUND AND (m.num_keys > 0 OR m.meta_expires_at > p_now) THEN
        RETURN m;
      END IF;
    END IF;
  END IF;
  SELECT * INTO m FROM ${t.mapMeta} WHERE channel = p_channel FOR UPDATE;
  IF NOT FOUND THEN
    INSERT INTO ${t.mapMeta} (channel, epoch) VALUES (p_channel, p_new_epoch) ON CONFLICT (channel) DO NOTHING;
    SELECT * INTO m FROM ${t.mapMeta} WHERE channel = p_channel FOR UPDATE;
  ELSIF m.num_keys <= 0 AND m.meta_expires_at <= p_now THEN
    -- Empty and past its meta TTL: gone, as if never written. A fresh position (new epoch).
    DELETE FROM ${t.mapStream} WHERE channel = p_channel;
    UPDATE ${t.mapMeta} SET epoch = p_new_epoch, top = 0, num_keys = 0, meta_expires_at = 0
      WHERE channel = p_channel RETURNING * INTO m;
  END IF;
  IF p_read_ttl_ms IS NOT NULL AND m.meta_expires_at < p_now + p_read_ttl_ms THEN
    UPDATE ${t.mapMeta} SET meta_expires_at = p_now + p_read_ttl_ms WHERE channel = p_channel RETURNING * INTO m;
  END IF;
  RETURN m;
END
$fn$;
`;
}

/** mapChangeSql: numbering, stream, meta and NOTIFY of one change (the meta row is locked). */
function mapChangeSql(t: Tables): string {
  const nl = 'chr(10)';
  return `
CREATE FUNCTION ${t.mapChange}(p_channel text, p_epoch text, p_now bigint, p_delta_keys integer, ${RETENTION},
  p_key text, p_removed boolean, p_data text, p_info jsonb, p_tags jsonb, p_score double precision)
RETURNS bigint LANGUAGE plpgsql AS $fn$
DECLARE
  v_offset bigint;
  v_keep bigint;
  v_meta jsonb;
  v_payload text;
  v_id bigint;
BEGIN
  UPDATE ${t.mapMeta} SET
    top = CASE WHEN p_stream_size > 0 THEN top + 1 ELSE top END,
    num_keys = num_keys + p_delta_keys,
    meta_expires_at = greatest(meta_expires_at, p_now + greatest(p_meta_ttl_ms, p_stream_ttl_ms, p_key_ttl_ms)),
    stream_size = p_stream_size, stream_ttl_ms = p_stream_ttl_ms, meta_ttl_ms = p_meta_ttl_ms,
    key_ttl_ms = p_key_ttl_ms
  WHERE channel = p_channel
  RETURNING CASE WHEN p_stream_size > 0 THEN top ELSE 0 END INTO v_offset;
  IF p_stream_size > 0 THEN
    INSERT INTO ${t.mapStream} (channel, "offset", key, removed, data, info, tags, score, created_at)
      VALUES (p_channel, v_offset, p_key, p_removed, p_data, p_info, p_tags, p_score, p_now);
    -- Keep the newest stream_size changes, then only those younger than stream_ttl: both
    -- leave a prefix of the offsets, so each is a range of the primary key.
    DELETE FROM ${t.mapStream} WHERE channel = p_channel AND "offset" <= v_offset - p_stream_size;
    SELECT "offset" INTO v_keep FROM ${t.mapStream}
      WHERE channel = p_channel AND created_at > p_now - p_stream_ttl_ms ORDER BY "offset" LIMIT 1;
    DELETE FROM ${t.mapStream} WHERE channel = p_channel AND "offset" < coalesce(v_keep, v_offset + 1);
  END IF;
  v_meta := jsonb_build_object('key', p_key);
  IF p_removed THEN v_meta := v_meta || jsonb_build_object('removed', true); END IF;
  IF p_info IS NOT NULL THEN v_meta := v_meta || jsonb_build_object('info', p_info); END IF;
  IF p_tags IS NOT NULL THEN v_meta := v_meta || jsonb_build_object('tags', p_tags); END IF;
  IF p_score <> 0 THEN v_meta := v_meta || jsonb_build_object('score', p_score); END IF;
  v_payload := ${t.noticeHead}('m', p_channel) || v_offset::text || ${nl} || p_epoch || ${nl}
    || v_meta::text || ${nl} || p_data;
  IF octet_length(v_payload) <= ${NOTIFY_MAX_BYTES} THEN
    PERFORM pg_notify('${t.mapEvents}', v_payload);
  ELSIF p_stream_size > 0 THEN
    -- Too large to carry: receivers read it from the stream.
    PERFORM pg_notify('${t.mapEvents}', ${t.noticeHead}('n', p_channel) || v_offset::text || ${nl} || p_epoch);
  ELSE
    INSERT INTO ${t.notices} (payload, created_at) VALUES (v_payload, p_now) RETURNING id INTO v_id;
    PERFORM pg_notify('${t.mapEvents}', ${t.noticeHead}('x', p_channel) || v_id::text);
  END IF;
  RETURN v_offset;
END
$fn$;
`;
}

/**
 * preconditionsSql is the start every write function shares, in the memory broker's order:
 * lock, idempotency repeat, expected position. It declares nothing: the caller has `v_now`,
 * `m`, `v_offset`, `v_epoch` and the parameters named alike.
 */
function preconditionsSql(t: Tables): string {
  const c = MapWriteCode;
  return `
  m := ${t.mapLock}(p_channel, p_new_epoch, v_now, NULL);
  IF p_idempotency_key IS NOT NULL THEN
    SELECT r."offset", r.epoch INTO v_offset, v_epoch FROM ${t.mapResults} r
      WHERE r.channel = p_channel AND r.key = p_idempotency_key AND r.expires_at > v_now;
    IF FOUND THEN
      RETURN QUERY SELECT v_offset, v_epoch, ${c.idempotency};
      RETURN;
    END IF;
  END IF;
  IF p_exp_offset IS NOT NULL THEN
    IF p_stream_size <= 0 THEN
      RETURN QUERY SELECT m.top, m.epoch, ${c.needsStream};
      RETURN;
    END IF;
    IF p_exp_epoch IS DISTINCT FROM m.epoch OR p_exp_offset <> m.top THEN
      RETURN QUERY SELECT m.top, m.epoch, ${c.positionMismatch};
      RETURN;
    END IF;
  END IF;`;
}

/** rememberSql stores the result of an applied write under its idempotency key. */
function rememberSql(t: Tables): string {
  return `
  IF p_idempotency_key IS NOT NULL THEN
    INSERT INTO ${t.mapResults} AS r (channel, key, "offset", epoch, expires_at)
      VALUES (p_channel, p_idempotency_key, v_offset, m.epoch, v_now + p_result_ttl_ms)
      ON CONFLICT (channel, key) DO UPDATE SET "offset" = EXCLUDED."offset", epoch = EXCLUDED.epoch,
        expires_at = EXCLUDED.expires_at;
  END IF;`;
}

const WRITE_RESULT = 'RETURNS TABLE (r_offset bigint, r_epoch text, r_code integer)';

/** mapWriteSql: the publish and remove functions. */
function mapWriteSql(t: Tables): string {
  const c = MapWriteCode;
  const retention = 'p_stream_size, p_stream_ttl_ms, p_meta_ttl_ms, p_key_ttl_ms';
  const declare = `
DECLARE
  v_now bigint := ${NOW_MS};
  m ${t.mapMeta};
  e ${t.mapState};
  v_offset bigint;
  v_epoch text;`;
  return `
CREATE FUNCTION ${t.mapPublish}(p_channel text, p_key text, p_data text, p_info jsonb, p_tags jsonb,
  p_score double precision, ${RETENTION}, p_max_keys bigint, p_new_epoch text, p_key_mode text,
  p_exp_offset bigint, p_exp_epoch text, p_version bigint, p_version_epoch text,
  p_idempotency_key text, p_result_ttl_ms bigint, p_owner text, p_refresh boolean)
${WRITE_RESULT} LANGUAGE plpgsql AS $fn$${declare}
  v_found boolean;
  v_version bigint := p_version;
  v_version_epoch text := p_version_epoch;
BEGIN${preconditionsSql(t)}
  SELECT * INTO e FROM ${t.mapState} s WHERE s.channel = p_channel AND s.key = p_key;
  v_found := FOUND;
  IF p_key_mode = 'if_new' AND v_found THEN
    IF p_refresh AND p_key_ttl_ms > 0 THEN
      UPDATE ${t.mapState} s SET expires_at = v_now + p_key_ttl_ms WHERE s.channel = p_channel AND s.key = p_key;
    END IF;
    RETURN QUERY SELECT m.top, m.epoch, ${c.keyExists};
    RETURN;
  END IF;
  IF p_key_mode = 'if_exists' AND NOT v_found THEN
    RETURN QUERY SELECT m.top, m.epoch, ${c.keyNotFound};
    RETURN;
  END IF;
  IF p_owner IS NOT NULL AND v_found AND e.user_id IS DISTINCT FROM p_owner THEN
    RETURN QUERY SELECT m.top, m.epoch, ${c.notOwner};
    RETURN;
  END IF;
  IF v_found THEN
    IF p_version > 0 AND e.version_epoch = p_version_epoch AND p_version <= e.version THEN
      RETURN QUERY SELECT m.top, m.epoch, ${c.version};
      RETURN;
    END IF;
    IF p_version <= 0 THEN
      v_version := e.version;
      v_version_epoch := e.version_epoch;
    END IF;
  ELSIF m.num_keys >= p_max_keys THEN
    RETURN QUERY SELECT m.top, m.epoch, ${c.limit};
    RETURN;
  END IF;
  v_offset := ${t.mapChange}(p_channel, m.epoch, v_now, CASE WHEN v_found THEN 0 ELSE 1 END, ${retention},
    p_key, false, p_data, p_info, p_tags, p_score);
  INSERT INTO ${t.mapState} AS s (channel, key, "offset", version, version_epoch, data, info, tags, score,
      user_id, expires_at)
    VALUES (p_channel, p_key, v_offset, v_version, v_version_epoch, p_data, p_info, p_tags, p_score,
      p_info->>'user', CASE WHEN p_key_ttl_ms > 0 THEN v_now + p_key_ttl_ms ELSE 0 END)
    ON CONFLICT (channel, key) DO UPDATE SET "offset" = EXCLUDED."offset", version = EXCLUDED.version,
      version_epoch = EXCLUDED.version_epoch, data = EXCLUDED.data, info = EXCLUDED.info, tags = EXCLUDED.tags,
      score = EXCLUDED.score, user_id = EXCLUDED.user_id, expires_at = EXCLUDED.expires_at;${rememberSql(t)}
  RETURN QUERY SELECT v_offset, m.epoch, ${c.applied};
END
$fn$;

CREATE FUNCTION ${t.mapRemove}(p_channel text, p_key text, p_info jsonb, p_tags jsonb, ${RETENTION},
  p_new_epoch text, p_exp_offset bigint, p_exp_epoch text, p_idempotency_key text, p_result_ttl_ms bigint,
  p_owner text)
${WRITE_RESULT} LANGUAGE plpgsql AS $fn$${declare}
BEGIN${preconditionsSql(t)}
  SELECT * INTO e FROM ${t.mapState} s WHERE s.channel = p_channel AND s.key = p_key;
  IF NOT FOUND THEN
    RETURN QUERY SELECT m.top, m.epoch, ${c.keyNotFound};
    RETURN;
  END IF;
  IF p_owner IS NOT NULL AND e.user_id IS DISTINCT FROM p_owner THEN
    RETURN QUERY SELECT m.top, m.epoch, ${c.notOwner};
    RETURN;
  END IF;
  DELETE FROM ${t.mapState} s WHERE s.channel = p_channel AND s.key = p_key;
  -- The removal carries the entry's tags when it names none, so tags filters let it through.
  v_offset := ${t.mapChange}(p_channel, m.epoch, v_now, -1, ${retention},
    p_key, true, '', p_info, coalesce(p_tags, e.tags), 0);${rememberSql(t)}
  RETURN QUERY SELECT v_offset, m.epoch, ${c.applied};
END
$fn$;

CREATE FUNCTION ${t.mapExpire}(p_channel text, p_keys text[]) RETURNS integer LANGUAGE plpgsql AS $fn$
DECLARE
  v_now bigint := ${NOW_MS};
  m ${t.mapMeta};
  e ${t.mapState};
  v_removed integer := 0;
BEGIN
  -- Another node expiring this channel, or a write, holds the row: the next run gets it.
  SELECT * INTO m FROM ${t.mapMeta} WHERE channel = p_channel FOR UPDATE SKIP LOCKED;
  IF NOT FOUND THEN
    PERFORM 1 FROM ${t.mapMeta} WHERE channel = p_channel;
    IF NOT FOUND THEN
      -- Entries without a channel (written behind the engine's back): nobody to tell; drop them,
      -- or they would hold the head of every node's due list.
      DELETE FROM ${t.mapState} s WHERE s.channel = p_channel AND s.key = ANY(p_keys);
    END IF;
    RETURN -1;
  END IF;
  FOR e IN DELETE FROM ${t.mapState} s WHERE s.channel = p_channel AND s.key = ANY(p_keys)
      AND s.expires_at > 0 AND s.expires_at <= v_now RETURNING * LOOP
    PERFORM ${t.mapChange}(p_channel, m.epoch, v_now, -1, m.stream_size, m.stream_ttl_ms, m.meta_ttl_ms,
      m.key_ttl_ms, e.key, true, '', NULL, e.tags, 0);
    v_removed := v_removed + 1;
  END LOOP;
  RETURN v_removed;
END
$fn$;
`;
}

/** mapReadSql: the state and stream reads, each the position row first, then the page. */
function mapReadSql(t: Tables): string {
  const entry = 's.key::text, s."offset", s.data, s.info, s.tags, s.score';
  const none = 'NULL::text, NULL::bigint';
  const stream = 's."offset", s.key, s.removed, s.data, s.info, s.tags, s.score';
  return `
CREATE FUNCTION ${t.mapReadState}(p_channel text, p_new_epoch text, p_meta_ttl_ms bigint, p_cursor text,
  p_limit integer, p_key text)
RETURNS TABLE (r_epoch text, r_top bigint, r_key text, r_offset bigint, r_data text, r_info jsonb, r_tags jsonb,
  r_score double precision)
LANGUAGE plpgsql AS $fn$
DECLARE
  m ${t.mapMeta};
BEGIN
  m := ${t.mapLock}(p_channel, p_new_epoch, ${NOW_MS}, p_meta_ttl_ms);
  RETURN QUERY SELECT m.epoch, m.top, NULL::text, NULL::bigint, NULL::text, NULL::jsonb, NULL::jsonb,
    NULL::double precision;
  IF p_key IS NOT NULL THEN
    RETURN QUERY SELECT ${none}, ${entry} FROM ${t.mapState} s WHERE s.channel = p_channel AND s.key = p_key;
  ELSIF p_cursor = '' THEN
    RETURN QUERY SELECT ${none}, ${entry} FROM ${t.mapState} s WHERE s.channel = p_channel
      ORDER BY s.key LIMIT p_limit;
  ELSE
    RETURN QUERY SELECT ${none}, ${entry} FROM ${t.mapState} s
      WHERE s.channel = p_channel AND s.key > (p_cursor COLLATE "C") ORDER BY s.key LIMIT p_limit;
  END IF;
END
$fn$;

CREATE FUNCTION ${t.mapReadStream}(p_channel text, p_new_epoch text, p_meta_ttl_ms bigint, p_dir text,
  p_since bigint, p_limit bigint)
RETURNS TABLE (r_epoch text, r_top bigint, r_oldest bigint, r_offset bigint, r_key text, r_removed boolean,
  r_data text, r_info jsonb, r_tags jsonb, r_score double precision)
LANGUAGE plpgsql AS $fn$
DECLARE
  v_now bigint := ${NOW_MS};
  m ${t.mapMeta};
  v_cutoff bigint;
  v_oldest bigint;
BEGIN
  m := ${t.mapLock}(p_channel, p_new_epoch, v_now, p_meta_ttl_ms);
  -- Changes older than the stream TTL are gone for readers at once, whenever they are deleted.
  v_cutoff := v_now - m.stream_ttl_ms;
  SELECT s."offset" INTO v_oldest FROM ${t.mapStream} s
    WHERE s.channel = p_channel AND s.created_at > v_cutoff ORDER BY s."offset" LIMIT 1;
  RETURN QUERY SELECT m.epoch, m.top, coalesce(v_oldest, -1), NULL::bigint, NULL::text, NULL::boolean,
    NULL::text, NULL::jsonb, NULL::jsonb, NULL::double precision;
  IF p_dir = 'f' THEN
    RETURN QUERY SELECT NULL::text, NULL::bigint, NULL::bigint, ${stream} FROM ${t.mapStream} s
      WHERE s.channel = p_channel AND s."offset" > p_since AND s.created_at > v_cutoff
      ORDER BY s."offset" LIMIT p_limit;
  ELSIF p_dir = 'r' THEN
    RETURN QUERY SELECT NULL::text, NULL::bigint, NULL::bigint, ${stream} FROM ${t.mapStream} s
      WHERE s.channel = p_channel AND s."offset" < p_since AND s.created_at > v_cutoff
      ORDER BY s."offset" DESC LIMIT p_limit;
  END IF;
END
$fn$;
`;
}

/** mapSchemaSql is migration 3: the map tables and functions of `t`. */
export function mapSchemaSql(t: Tables): string {
  return [mapTablesSql(t), mapLockSql(t), mapChangeSql(t), mapWriteSql(t), mapReadSql(t)].join('\n');
}
