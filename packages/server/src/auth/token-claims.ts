/**
 * The claims of connection and subscription tokens, as Centrifugo defines them: their types
 * and their decoding from a verified JWT payload (`sub`, `channel`, `channels`, `subs`,
 * `info`/`b64info`, `data`/`b64data`, `expire_at`/`exp`, `override`, `meta`, `client`). A claim
 * of the wrong type makes the token invalid.
 *
 * @module
 */
import { TextDecoder } from 'node:util';
import type { JWTPayload } from 'jose';
import { asRaw, type RawJSON } from '../protocol/types.js';
import { invalid } from './token-rejection.js';

/**
 * SubscriptionOverride holds the per-subscription overrides of namespace options a token may
 * carry (Centrifugo's `override` object of `{ "value": bool }` fields, flattened). An absent
 * field means "use the namespace option"; `{}` in the token means `false`, as in Centrifugo.
 */
export interface SubscriptionOverride {
  presence?: boolean;
  joinLeave?: boolean;
  forcePushJoinLeave?: boolean;
  forcePositioning?: boolean;
  forceRecovery?: boolean;
}

/** TokenSubscribeOptions are the options of one server-side subscription from a `subs` claim. */
export interface TokenSubscribeOptions {
  /** Channel info (`info`, or `b64info` decoded), shown in presence and join/leave. */
  info?: RawJSON;
  /** Data for the subscribe context in the connect reply (`data`, or `b64data` decoded). */
  data?: RawJSON;
  /** Overrides of the namespace's options for this connection. */
  override?: SubscriptionOverride;
  /** The server-enforced tags filter (`server_tags_filter`, Bulwark's own), checked at connect. */
  serverTagsFilter?: Readonly<Record<string, unknown>>;
}

/** ConnectTokenClaims are the verified, type-checked claims of a connection token. */
export interface ConnectTokenClaims {
  /** The user ID (`sub`); `''` is an anonymous user. */
  user: string;
  /**
   * Unix seconds when the connection expires, 0 for never: `expire_at` when the token has it
   * (0 or less meaning never), else `exp`, else 0.
   */
  expireAt: number;
  /** Connection info (`info`, or `b64info` decoded; `b64info` wins), shown to other clients. */
  info?: RawJSON;
  /**
   * Server-side subscriptions from the `channels` claim. Empty when `subs` is present and not
   * empty: Centrifugo then ignores `channels`, and so must the caller.
   */
  channels: string[];
  /** Server-side subscriptions with options, from the `subs` claim (a null-prototype object). */
  subs?: Record<string, TokenSubscribeOptions>;
  /** Server-only connection metadata (`meta`); never sent to clients. */
  meta?: RawJSON;
  /**
   * What the client can render (`features`, Bulwark's own claim), tested by publication
   * variants' `has` / `lacks` conditions.
   */
  features?: string[];
}

/** SubscriptionTokenClaims are the verified claims of a subscription token. */
export interface SubscriptionTokenClaims {
  /** The user ID (`sub`); equal to the connection's user once verified. */
  user: string;
  /** The channel (`channel`); equal to the requested channel once verified. */
  channel: string;
  /**
   * Unix seconds when the subscription expires, 0 for never: `expire_at` when present (0 or less
   * meaning never; `exp` still limits the token itself), else `exp`, else 0.
   */
  expireAt: number;
  /** Channel info (`info`, or `b64info` decoded), shown in presence, join/leave and publications. */
  info?: RawJSON;
  /** Data for the subscribe reply (`data`, or `b64data` decoded). */
  data?: RawJSON;
  /** Overrides of the namespace's options for this subscription. */
  override?: SubscriptionOverride;
  /** The client ID the token is bound to (`client`), when it is bound to one. */
  client?: string;
  /**
   * The server-enforced publication tags filter (`server_tags_filter`, a FilterNode object;
   * Bulwark's own, named as Centrifugo PRO names it), checked and compiled at subscribe.
   */
  serverTagsFilter?: Claims;
}

type Claims = Readonly<Record<string, unknown>>;

function isObject(value: unknown): value is Claims {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** A string claim; absent or null → undefined; any other type → invalid token. */
function stringClaim(claims: Claims, name: string, where = 'claim '): string | undefined {
  const value = claims[name];
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'string') throw invalid(`${where}"${name}" must be a string`);
  return value;
}

/** A JSON claim kept raw; absent or null → undefined. */
function jsonClaim(claims: Claims, name: string): RawJSON | undefined {
  const value = claims[name];
  return value === undefined || value === null ? undefined : asRaw(value);
}

const strictBase64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;
const utf8 = new TextDecoder('utf-8', { fatal: true });

/** A base64 claim (standard alphabet, padded) holding JSON text; absent, null or '' → undefined. */
function base64JsonClaim(claims: Claims, name: string, where: string): RawJSON | undefined {
  const text = stringClaim(claims, name, where);
  if (text === undefined || text === '') return undefined;
  if (!strictBase64.test(text)) throw invalid(`${where}"${name}" is not valid base64`);
  let value: unknown;
  try {
    value = JSON.parse(utf8.decode(Buffer.from(text, 'base64')));
  } catch (err) {
    throw invalid(`${where}"${name}" does not decode to UTF-8 JSON text`, err);
  }
  return asRaw(value);
}

/** `info`/`b64info` (or `data`/`b64data`): the base64 form wins when present, as in Centrifugo. */
function rawOrBase64(claims: Claims, name: string, where = 'claim '): RawJSON | undefined {
  return base64JsonClaim(claims, `b64${name}`, where) ?? jsonClaim(claims, name);
}

/** `expire_at` if present (≤ 0 → 0, never), else `exp`, else 0. */
function expireAtClaim(claims: Claims): number {
  const expireAt = claims['expire_at'];
  if (expireAt !== undefined && expireAt !== null) {
    if (typeof expireAt !== 'number' || !Number.isFinite(expireAt)) {
      throw invalid('claim "expire_at" must be a number');
    }
    return expireAt > 0 ? Math.floor(expireAt) : 0;
  }
  const exp = claims['exp'];
  return typeof exp === 'number' && exp > 0 ? Math.floor(exp) : 0;
}

const overrideFields: ReadonlyArray<readonly [string, keyof SubscriptionOverride]> = [
  ['presence', 'presence'],
  ['join_leave', 'joinLeave'],
  ['force_push_join_leave', 'forcePushJoinLeave'],
  ['force_positioning', 'forcePositioning'],
  ['force_recovery', 'forceRecovery'],
];

/** The `override` object: `{ presence: { value: true }, … }`; absent or null → undefined. */
function overrideClaim(claims: Claims, where: string): SubscriptionOverride | undefined {
  const value = claims['override'];
  if (value === undefined || value === null) return undefined;
  if (!isObject(value)) throw invalid(`${where}"override" must be an object`);
  const override: SubscriptionOverride = {};
  for (const [wire, field] of overrideFields) {
    const boolValue = value[wire];
    if (boolValue === undefined || boolValue === null) continue;
    if (!isObject(boolValue)) throw invalid(`${where}"override.${wire}" must be an object like {"value": true}`);
    const flag = boolValue['value'];
    if (flag !== undefined && flag !== null && typeof flag !== 'boolean') {
      throw invalid(`${where}"override.${wire}.value" must be a boolean`);
    }
    override[field] = flag === true;
  }
  return override;
}

function subscribeOptions(value: unknown, channel: string): TokenSubscribeOptions {
  if (value === null) return {};
  if (!isObject(value)) throw invalid(`claim "subs" entry "${channel}" must be an object`);
  const where = `claim "subs" entry "${channel}": `;
  const options: TokenSubscribeOptions = {};
  const info = rawOrBase64(value, 'info', where);
  if (info !== undefined) options.info = info;
  const data = rawOrBase64(value, 'data', where);
  if (data !== undefined) options.data = data;
  const filter = value['server_tags_filter'];
  if (filter !== undefined && filter !== null) {
    if (!isObject(filter)) throw invalid(`${where}"server_tags_filter" must be an object (a FilterNode)`);
    options.serverTagsFilter = filter;
  }
  const override = overrideClaim(value, where);
  if (override !== undefined) options.override = override;
  return options;
}

/** parseConnectClaims decodes and type-checks the claims of a verified connection token. */
export function parseConnectClaims(claims: JWTPayload): ConnectTokenClaims {
  const user = stringClaim(claims, 'sub') ?? '';
  if (stringClaim(claims, 'channel')) {
    // A subscription token used as a connection token: Centrifugo rejects it explicitly.
    throw invalid('connection token must not have a "channel" claim (is this a subscription token?)');
  }

  let channels: string[] = [];
  const rawChannels = claims['channels'];
  if (rawChannels !== undefined && rawChannels !== null) {
    if (!Array.isArray(rawChannels) || !rawChannels.every((ch) => typeof ch === 'string' && ch !== '')) {
      throw invalid('claim "channels" must be an array of non-empty strings');
    }
    channels = rawChannels as string[];
  }

  let subs: Record<string, TokenSubscribeOptions> | undefined;
  const rawSubs = claims['subs'];
  if (rawSubs !== undefined && rawSubs !== null) {
    if (!isObject(rawSubs)) throw invalid('claim "subs" must be an object of channel → options');
    subs = Object.create(null) as Record<string, TokenSubscribeOptions>;
    for (const [channel, value] of Object.entries(rawSubs)) {
      if (channel === '') throw invalid('claim "subs" has an empty channel name');
      subs[channel] = subscribeOptions(value, channel);
    }
    if (Object.keys(subs).length > 0) channels = [];
  }

  const result: ConnectTokenClaims = { user, expireAt: expireAtClaim(claims), channels };
  const info = rawOrBase64(claims, 'info');
  if (info !== undefined) result.info = info;
  if (subs !== undefined) result.subs = subs;
  const meta = jsonClaim(claims, 'meta');
  if (meta !== undefined) result.meta = meta;
  const features = claims['features'];
  if (features !== undefined && features !== null) {
    if (!Array.isArray(features) || features.length > 64 || !features.every(isFeature)) {
      throw invalid('claim "features" must be an array of at most 64 strings of 1 to 64 characters');
    }
    result.features = features as string[];
  }
  return result;
}

function isFeature(f: unknown): boolean {
  return typeof f === 'string' && f.length > 0 && f.length <= 64;
}

/** parseSubscriptionClaims decodes and type-checks the claims of a verified subscription token. */
export function parseSubscriptionClaims(claims: JWTPayload): SubscriptionTokenClaims {
  const user = stringClaim(claims, 'sub') ?? '';
  const channel = stringClaim(claims, 'channel');
  if (!channel) throw invalid('subscription token must have a "channel" claim');
  const result: SubscriptionTokenClaims = { user, channel, expireAt: expireAtClaim(claims) };
  const info = rawOrBase64(claims, 'info');
  if (info !== undefined) result.info = info;
  const data = rawOrBase64(claims, 'data');
  if (data !== undefined) result.data = data;
  const override = overrideClaim(claims, 'claim ');
  if (override !== undefined) result.override = override;
  const client = stringClaim(claims, 'client');
  if (client) result.client = client;
  const filter = claims['server_tags_filter'];
  if (filter !== undefined && filter !== null) {
    if (!isObject(filter)) throw invalid('claim "server_tags_filter" must be an object (a FilterNode)');
    result.serverTagsFilter = filter;
  }
  return result;
}
