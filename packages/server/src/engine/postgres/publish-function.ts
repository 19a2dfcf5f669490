/**
 * The SQL publish functions (schema version 2): the one place a publication with history is
 * written. The engine's own publish (broker-postgres.ts) calls `<prefix>_publish_raw`, and a
 * game backend calls `<prefix>_publish` inside its own transaction, so a publication commits
 * with the game write or not at all, and both paths lock, number, trim, remember and notify
 * the same way (docs/POSTGRESQL.md, "Publishing from your own transaction").
 *
 * - `<prefix>_notice_head(kind, channel)`: the start of a notification (codec.ts), with the
 *   channel's length in UTF-16 code units as JavaScript counts it (characters beyond the Basic
 *   Multilingual Plane count twice).
 * - `<prefix>_notify(channel, payload)`: pg_notify on `<prefix>_events`, through the notices
 *   table when the payload is larger than NOTIFY allows. Transactional: sent at COMMIT.
 * - `<prefix>_publish_raw(…)`: the engine's publish, every option explicit (ms, raw JSON text).
 * - `<prefix>_publish(p_channel, p_data jsonb, …)`: the backend's, with Centrifugo's parameter
 *   names where it has them (`p_channel`, `p_data`, `p_meta_ttl`, `p_idempotency_key`,
 *   `p_tags`) and returning Centrifugo's columns (`channel_offset`, `epoch`, `suppressed`,
 *   `suppress_reason`).
 *
 * @module
 */
import { NOW_MS, type Tables } from './tables.js';

/** NOTIFY payloads must stay below 8000 bytes (PostgreSQL's limit); larger go through the notices table. */
export const NOTIFY_MAX_BYTES = 7900;

/** Default `p_meta_ttl` of `<prefix>_publish`: channel.history_meta_ttl's default. */
const DEFAULT_META_TTL = '720 hours';

/** Default `p_idempotent_result_ttl` of `<prefix>_publish`: channel.idempotent_result_ttl's default. */
const DEFAULT_RESULT_TTL = '5 minutes';

/** publishFunctionsSql is the SQL that creates (or replaces) the publish functions of `t`. */
export function publishFunctionsSql(t: Tables): string {
  const nl = 'chr(10)';
  return `
CREATE OR REPLACE FUNCTION ${t.noticeHead}(p_kind text, p_channel text) RETURNS text
LANGUAGE sql IMMUTABLE AS $fn$
  SELECT p_kind || ${nl}
    || (length(p_channel) + length(regexp_replace(p_channel, '[^\\U00010000-\\U0010FFFF]', '', 'g')))::text
    || ${nl} || p_channel || ${nl}
$fn$;

CREATE OR REPLACE FUNCTION ${t.notify}(p_channel text, p_payload text) RETURNS void
LANGUAGE plpgsql AS $fn$
DECLARE
  v_id bigint;
BEGIN
  IF octet_length(p_payload) <= ${NOTIFY_MAX_BYTES} THEN
    PERFORM pg_notify('${t.events}', p_payload);
  ELSE
    INSERT INTO ${t.notices} (payload, created_at) VALUES (p_payload, ${NOW_MS}) RETURNING id INTO v_id;
    PERFORM pg_notify('${t.events}', ${t.noticeHead}('x', p_channel) || v_id::text);
  END IF;
END
$fn$;

CREATE OR REPLACE FUNCTION ${t.publishRaw}(
  p_channel text, p_data text, p_new_epoch text, p_idempotency_key text, p_result_ttl_ms bigint,
  p_history_size bigint, p_history_ttl_ms bigint, p_meta_ttl_ms bigint,
  p_info jsonb, p_tags jsonb, p_time bigint, p_variants jsonb, p_delta boolean,
  p_version bigint, p_version_epoch text)
RETURNS TABLE (channel_offset bigint, epoch text, suppressed boolean, suppress_reason text)
LANGUAGE plpgsql AS $fn$
#variable_conflict use_column
DECLARE
  v_key text := coalesce(p_idempotency_key, '');
  v_epoch text; v_top bigint; v_version bigint; v_version_epoch text;
  v_history bigint; v_meta bigint; v_now bigint;
  v_offset bigint; v_first_epoch text; v_meta_json jsonb;
BEGIN
  IF p_history_size > 0 AND p_history_ttl_ms > 0 THEN
    -- Creates or locks the channel's stream row: the lock orders the channel's publishes.
    INSERT INTO ${t.streams} AS s (channel, epoch) VALUES (p_channel, p_new_epoch)
      ON CONFLICT (channel) DO UPDATE SET top = s.top
      RETURNING s.epoch, s.top, s.version, s.version_epoch, s.history_expires_at, s.meta_expires_at, ${NOW_MS}
      INTO v_epoch, v_top, v_version, v_version_epoch, v_history, v_meta, v_now;
    IF v_meta < v_now THEN
      v_epoch := p_new_epoch; v_top := 0; v_version := 0; v_version_epoch := ''; v_history := 0; v_meta := 0;
      DELETE FROM ${t.publications} WHERE channel = p_channel;
    ELSIF v_history > 0 AND v_history < v_now THEN
      v_history := 0;
      DELETE FROM ${t.publications} WHERE channel = p_channel;
    END IF;
    IF v_key <> '' THEN
      SELECT r."offset", r.epoch INTO v_offset, v_first_epoch FROM ${t.results} r
        WHERE r.channel = p_channel AND r.key = v_key AND r.expires_at >= ${NOW_MS};
      IF FOUND THEN
        RETURN QUERY SELECT v_offset, v_first_epoch, true, 'idempotency'::text;
        RETURN;
      END IF;
    END IF;
    IF coalesce(p_version, 0) > 0 THEN
      IF v_version > 0 AND (coalesce(p_version_epoch, '') = '' OR p_version_epoch = v_version_epoch)
         AND v_version >= p_version THEN
        RETURN QUERY SELECT v_top, v_epoch, true, 'version'::text;
        RETURN;
      END IF;
      v_version := p_version; v_version_epoch := coalesce(p_version_epoch, '');
    END IF;
    v_top := v_top + 1;
    INSERT INTO ${t.publications} (channel, "offset", data, info, tags, time, variants, delta)
      VALUES (p_channel, v_top, p_data, p_info, p_tags, p_time, p_variants, coalesce(p_delta, false));
    IF v_top > p_history_size THEN
      DELETE FROM ${t.publications} WHERE channel = p_channel AND "offset" <= v_top - p_history_size;
    END IF;
    v_history := greatest(v_history, v_now + p_history_ttl_ms);
    v_meta := greatest(v_meta, v_now + p_meta_ttl_ms, v_history);
    UPDATE ${t.streams} SET epoch = v_epoch, top = v_top, version = v_version, version_epoch = v_version_epoch,
      history_expires_at = v_history, meta_expires_at = v_meta WHERE channel = p_channel;
    IF v_key <> '' THEN
      INSERT INTO ${t.results} (channel, key, "offset", epoch, expires_at)
        VALUES (p_channel, v_key, v_top, v_epoch, v_now + p_result_ttl_ms)
        ON CONFLICT (channel, key) DO UPDATE SET "offset" = EXCLUDED."offset", epoch = EXCLUDED.epoch,
          expires_at = EXCLUDED.expires_at;
    END IF;
    PERFORM ${t.notify}(p_channel, ${t.noticeHead}('h', p_channel) || v_top::text || ${nl} || v_epoch);
    RETURN QUERY SELECT v_top, v_epoch, false, ''::text;
    RETURN;
  END IF;
  -- Without history: the publication travels in the notification itself.
  IF v_key <> '' THEN
    INSERT INTO ${t.results} AS r (channel, key, "offset", epoch, expires_at)
      VALUES (p_channel, v_key, 0, '', ${NOW_MS} + p_result_ttl_ms)
      ON CONFLICT (channel, key) DO UPDATE SET "offset" = 0, epoch = '', expires_at = EXCLUDED.expires_at
      WHERE r.expires_at < ${NOW_MS}
      RETURNING r."offset" INTO v_offset;
    IF NOT FOUND THEN
      SELECT r."offset", r.epoch INTO v_offset, v_first_epoch FROM ${t.results} r
        WHERE r.channel = p_channel AND r.key = v_key AND r.expires_at >= ${NOW_MS};
      IF FOUND THEN
        RETURN QUERY SELECT v_offset, v_first_epoch, true, 'idempotency'::text;
      ELSE
        RETURN QUERY SELECT 0::bigint, ''::text, false, ''::text;
      END IF;
      RETURN;
    END IF;
  END IF;
  v_meta_json := jsonb_strip_nulls(jsonb_build_object('info', p_info, 'tags', p_tags, 'time', p_time,
    'variants', CASE WHEN jsonb_array_length(coalesce(p_variants, '[]'::jsonb)) > 0 THEN p_variants END));
  PERFORM ${t.notify}(p_channel, ${t.noticeHead}('p', p_channel)
    || CASE WHEN v_meta_json = '{}'::jsonb THEN '' ELSE v_meta_json::text END || ${nl} || p_data);
  RETURN QUERY SELECT 0::bigint, ''::text, false, ''::text;
END
$fn$;

CREATE OR REPLACE FUNCTION ${t.publish}(
  p_channel text,
  p_data jsonb,
  p_history_size integer DEFAULT NULL,
  p_history_ttl interval DEFAULT NULL,
  p_idempotency_key text DEFAULT NULL,
  p_tags jsonb DEFAULT NULL,
  p_meta_ttl interval DEFAULT NULL,
  p_idempotent_result_ttl interval DEFAULT NULL,
  p_version bigint DEFAULT NULL,
  p_version_epoch text DEFAULT NULL,
  p_delta boolean DEFAULT NULL)
RETURNS TABLE (channel_offset bigint, epoch text, suppressed boolean, suppress_reason text)
LANGUAGE plpgsql AS $fn$
BEGIN
  IF p_channel IS NULL OR p_channel = '' THEN
    RAISE EXCEPTION '${t.publish}: p_channel is required' USING ERRCODE = '22023';
  END IF;
  IF p_data IS NULL THEN
    RAISE EXCEPTION '${t.publish}: p_data is required (JSON null is ''null''::jsonb)' USING ERRCODE = '22023';
  END IF;
  IF p_history_size IS NULL OR p_history_ttl IS NULL THEN
    RAISE EXCEPTION '${t.publish}: pass p_history_size and p_history_ttl (the namespace''s channel history_size and history_ttl; 0 for a publication without history)'
      USING ERRCODE = '22023';
  END IF;
  RETURN QUERY SELECT * FROM ${t.publishRaw}(
    p_channel, p_data::text,
    translate(encode(substr(decode(md5(random()::text || clock_timestamp()::text || pg_backend_pid()::text), 'hex'), 1, 6), 'base64'), '+/', '-_'),
    p_idempotency_key,
    ceil(extract(epoch FROM coalesce(p_idempotent_result_ttl, interval '${DEFAULT_RESULT_TTL}')) * 1000)::bigint,
    p_history_size,
    ceil(extract(epoch FROM p_history_ttl) * 1000)::bigint,
    ceil(extract(epoch FROM coalesce(p_meta_ttl, interval '${DEFAULT_META_TTL}')) * 1000)::bigint,
    NULL, p_tags, NULL, NULL, coalesce(p_delta, false),
    coalesce(p_version, 0), coalesce(p_version_epoch, ''));
END
$fn$;
`;
}
