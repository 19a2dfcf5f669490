/**
 * Channel rules: which namespace a channel belongs to, whether its name is valid, and who
 * may see a user-limited channel. Pure functions over the config; no I/O.
 *
 * @module
 */
import type { ChannelOptions, Config } from './config/schema.js';
import type { MapRetention } from './engine/map-broker.js';
import { ErrorCode, ProtocolError } from './protocol/codes.js';

/** ResolvedChannel is a valid channel with its namespace options. */
export interface ResolvedChannel {
  readonly channel: string;
  /** Namespace name; '' for channels without a namespace. */
  readonly namespace: string;
  /** The channel name without its namespace prefix. */
  readonly name: string;
  readonly options: ChannelOptions;
  /** Starts with channel.private_prefix: needs a subscription token. */
  readonly isPrivate: boolean;
}

/**
 * How many resolved channels a ChannelRules remembers; past it, it forgets them all and starts
 * over (a bound, not an LRU: the usual working set of busy channels is far smaller).
 */
const RESOLVED_MAX = 4096;

/**
 * hasSpaceOrControl tells whether `s` has a character `/[\s\p{Cc}]/u` matches: a loop, not the
 * RegExp, because every publish and subscribe resolves its channel (issue 18). None of those
 * characters is astral, so UTF-16 units are as good as code points here.
 */
export function hasSpaceOrControl(s: string): boolean {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c > 0x20 && c < 0x7f) continue;
    if (c <= 0x20 || c <= 0xa0) return true; // C0 controls and space; DEL, C1 controls and NBSP
    if (c < 0x1680) continue;
    if (c === 0x1680 || (c >= 0x2000 && c <= 0x200a) || c === 0x2028 || c === 0x2029) return true;
    if (c === 0x202f || c === 0x205f || c === 0x3000 || c === 0xfeff) return true;
  }
  return false;
}

/** ChannelRules resolves channels against the configured namespaces. */
export class ChannelRules {
  readonly #cfg: Config['channel'];
  readonly #namespaces: Map<string, ChannelOptions>;
  readonly #regexes = new Map<string, RegExp>();
  /**
   * Channels resolved before, each with its (read-only, shared) answer: the config is frozen,
   * so a name resolves the same every time, and every publish and subscribe resolves one
   * (issue 18). Names that throw are not kept: they throw anew, as they did.
   */
  readonly #resolved = new Map<string, ResolvedChannel>();

  constructor(cfg: Config['channel']) {
    this.#cfg = cfg;
    this.#namespaces = new Map(cfg.namespaces.map((ns) => [ns.name, ns]));
    for (const [name, opts] of [['', cfg.without_namespace] as const, ...this.#namespaces]) {
      if (opts.channel_regex) this.#regexes.set(name, new RegExp(opts.channel_regex));
    }
  }

  /**
   * resolve validates `channel` and returns its namespace options. It throws ProtocolError
   * 107 (bad request) for an invalid name, also one its namespace's channel_regex rejects (as
   * Centrifugo answers clients), and 102 (unknown channel) for an unknown namespace.
   */
  resolve(channel: string): ResolvedChannel {
    const known = this.#resolved.get(channel);
    if (known !== undefined) return known;
    const rc = this.#resolveNew(channel);
    if (this.#resolved.size >= RESOLVED_MAX) this.#resolved.clear();
    this.#resolved.set(channel, rc);
    return rc;
  }

  /** #resolveNew is resolve for a channel not resolved before. */
  #resolveNew(channel: string): ResolvedChannel {
    const cfg = this.#cfg;
    if (channel.length === 0) throw new ProtocolError(ErrorCode.BadRequest, 'channel required');
    // A UTF-16 unit is at most 3 UTF-8 bytes: count the bytes only when it could matter.
    if (channel.length * 3 > cfg.max_length && Buffer.byteLength(channel) > cfg.max_length) {
      throw new ProtocolError(ErrorCode.BadRequest, `channel name longer than ${cfg.max_length} bytes`);
    }
    // Control characters and whitespace in names break logs and dashboards; reject them.
    if (hasSpaceOrControl(channel))
      throw new ProtocolError(ErrorCode.BadRequest, 'channel name has control or space characters');
    const isPrivate = cfg.private_prefix !== '' && channel.startsWith(cfg.private_prefix);
    const bare = isPrivate ? channel.slice(cfg.private_prefix.length) : channel;
    const boundary = bare.indexOf(cfg.namespace_boundary);
    let namespace = '';
    let name = bare;
    let options = cfg.without_namespace;
    if (boundary !== -1) {
      namespace = bare.slice(0, boundary);
      name = bare.slice(boundary + cfg.namespace_boundary.length);
      const ns = this.#namespaces.get(namespace);
      if (!ns) throw new ProtocolError(ErrorCode.UnknownChannel);
      options = ns;
    }
    const re = this.#regexes.get(namespace);
    if (re && !re.test(name))
      throw new ProtocolError(ErrorCode.BadRequest, 'bad request: channel name does not match channel_regex');
    return { channel, namespace, name, options, isPrivate };
  }

  /**
   * clientNameAllowed tells whether a client (not the server API) may name this channel: as
   * Centrifugo decides, a namespace with a channel_regex accepts what the regex accepts (resolve
   * checked it), one without accepts ASCII names only.
   */
  clientNameAllowed(rc: ResolvedChannel): boolean {
    return this.#regexes.has(rc.namespace) || !/[^\p{ASCII}]/u.test(rc.channel);
  }

  /**
   * allowedUsers returns the users a user-limited channel (`ns:room#alice,bob`) is open to,
   * or undefined when the channel is not user-limited or its namespace does not allow it.
   */
  allowedUsers(rc: ResolvedChannel): string[] | undefined {
    if (!rc.options.allow_user_limited_channels) return undefined;
    const at = rc.name.lastIndexOf(this.#cfg.user_boundary);
    if (at === -1) return undefined;
    return rc.name
      .slice(at + this.#cfg.user_boundary.length)
      .split(this.#cfg.user_separator)
      .filter((u) => u !== '');
  }

  /** historyMetaTtlMs returns the stream position lifetime for a namespace. */
  historyMetaTtlMs(opts: ChannelOptions): number {
    return opts.history_meta_ttl > 0 ? opts.history_meta_ttl : this.#cfg.history_meta_ttl;
  }

  /**
   * mapRetention is how long a map namespace's state and stream live, with Centrifugo's
   * derived defaults: a stream of 100 changes for 1 minute in durable and persistent modes,
   * none in ephemeral mode; persistent entries never expire.
   */
  mapRetention(opts: ChannelOptions): MapRetention {
    const m = opts.map;
    const streamed = m.mode !== 'ephemeral';
    return {
      keyTtlMs: m.mode === 'persistent' ? 0 : m.key_ttl,
      streamSize: streamed ? m.stream_size || 100 : 0,
      streamTtlMs: streamed ? m.stream_ttl || 60_000 : 0,
      metaTtlMs: m.meta_ttl > 0 ? m.meta_ttl : this.#cfg.history_meta_ttl,
      maxKeys: m.max_keys,
    };
  }

  /** isMap tells whether channels of a namespace are map channels (map, map_clients, map_users). */
  static isMap(opts: ChannelOptions): boolean {
    const t = opts.subscription_type;
    return t === 'map' || t === 'map_clients' || t === 'map_users';
  }

  /** hasHistory tells whether channels of a namespace keep history. */
  static hasHistory(opts: ChannelOptions): boolean {
    return opts.history_size > 0 && opts.history_ttl > 0;
  }
}
