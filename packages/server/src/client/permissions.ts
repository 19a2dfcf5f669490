/**
 * Channel permissions of a client: who may subscribe, publish, and read presence and history,
 * from the namespace's allow_* options, private channels and user-limited channels. Pure
 * checks, no I/O; `client.insecure` (local demos only) is decided here and nowhere else.
 *
 * @module
 */
import type { ChannelRules, ResolvedChannel } from '../channel-rules.js';
import { ErrorCode, ProtocolError } from '../protocol/codes.js';

/** ReadKind is a read a client asks for (the presence and history commands). */
export type ReadKind = 'presence' | 'history';

/** Permissions decides what a client may do on a channel; errors are ProtocolError 103. */
export class Permissions {
  readonly #insecure: boolean;
  readonly #rules: ChannelRules;

  /**
   * @param insecure client.insecure: every connection is accepted without a token and every
   *   channel permission check is lifted, as in Centrifugo (local demos only).
   */
  constructor(insecure: boolean, rules: ChannelRules) {
    this.#insecure = insecure;
    this.#rules = rules;
  }

  /** verifiesTokens is false in insecure mode: tokens are then ignored, not verified. */
  get verifiesTokens(): boolean {
    return !this.#insecure;
  }

  /**
   * anonymousAllowed tells whether a connect without a token (and without a connect proxy)
   * is accepted: in insecure mode, or with client.allow_anonymous_connect_without_token.
   */
  anonymousAllowed(allowAnonymousConnect: boolean): boolean {
    return this.#insecure || allowAnonymousConnect;
  }

  /** checkRefresh refuses a client `refresh` in insecure mode (no token to refresh): 108. */
  checkRefresh(): void {
    if (this.#insecure) throw new ProtocolError(ErrorCode.NotAvailable);
  }

  /**
   * checkSubscribe allows a subscribe without a token: never to a private channel, to a
   * user-limited channel only for its users, else with allow_subscribe_for_client (anonymous
   * clients also need allow_subscribe_for_anonymous, which extends it as in Centrifugo).
   */
  checkSubscribe(rc: ResolvedChannel, user: string): void {
    if (this.#insecure) return;
    if (rc.isPrivate) throw new ProtocolError(ErrorCode.PermissionDenied);
    const users = this.#rules.allowedUsers(rc);
    if (users !== undefined) {
      if (user !== '' && users.includes(user)) return;
      throw new ProtocolError(ErrorCode.PermissionDenied);
    }
    const o = rc.options;
    if (!o.allow_subscribe_for_client || (user === '' && !o.allow_subscribe_for_anonymous)) {
      throw new ProtocolError(ErrorCode.PermissionDenied);
    }
  }

  /**
   * checkPublish allows a client publish (without a publish proxy, which decides instead): with
   * allow_publish_for_client, or allow_publish_for_subscriber while subscribed; an anonymous
   * client also needs allow_publish_for_anonymous (Centrifugo's rule).
   */
  checkPublish(rc: ResolvedChannel, user: string, subscribed: boolean): void {
    const o = rc.options;
    const who = user !== '' || o.allow_publish_for_anonymous;
    const allowed =
      this.#insecure || (who && (o.allow_publish_for_client || (o.allow_publish_for_subscriber && subscribed)));
    if (!allowed) throw new ProtocolError(ErrorCode.PermissionDenied);
  }

  /**
   * checkMapWrite allows a client's map publish or removal by the namespace's map.allow_*
   * options, by the same rule as checkPublish (a subscriber is one whose subscribe is live).
   */
  checkMapWrite(kind: 'publish' | 'remove', rc: ResolvedChannel, user: string, subscribed: boolean): void {
    const m = rc.options.map;
    const forAnon = kind === 'publish' ? m.allow_publish_for_anonymous : m.allow_remove_for_anonymous;
    const forClient = kind === 'publish' ? m.allow_publish_for_client : m.allow_remove_for_client;
    const forSub = kind === 'publish' ? m.allow_publish_for_subscriber : m.allow_remove_for_subscriber;
    const allowed = this.#insecure || ((user !== '' || forAnon) && (forClient || (forSub && subscribed)));
    if (!allowed) throw new ProtocolError(ErrorCode.PermissionDenied);
  }

  /** checkRead allows a presence or history read, by the same rule as checkPublish. */
  checkRead(kind: ReadKind, rc: ResolvedChannel, user: string, subscribed: boolean): void {
    const o = rc.options;
    const forAnon = kind === 'presence' ? o.allow_presence_for_anonymous : o.allow_history_for_anonymous;
    const forClient = kind === 'presence' ? o.allow_presence_for_client : o.allow_history_for_client;
    const forSub = kind === 'presence' ? o.allow_presence_for_subscriber : o.allow_history_for_subscriber;
    const allowed = this.#insecure || ((user !== '' || forAnon) && (forClient || (forSub && subscribed)));
    if (!allowed) throw new ProtocolError(ErrorCode.PermissionDenied);
  }
}
