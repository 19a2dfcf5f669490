/**
 * The Hub: this node's index of sessions by client id, by user, and by channel. Fan-out
 * lives here: a publication is encoded once per channel per format (JSON, Protobuf) and the
 * same Buffer is handed to every subscribed session of that format. It knows sessions only as Subscribers (see subscriber.ts); the
 * node's hub is typed with its session class, so lookups return sessions.
 *
 * @module
 */
import { variantIndex, variantPublication, type ClientProfile } from '../protocol/publication-variants.js';
import type { ClientInfo, Publication, Push } from '../protocol/types.js';
import { DeltaFrames } from './delta-frames.js';
import { SharedFrames } from './shared-frames.js';
import type { SubState, Subscriber } from './subscriber.js';

/** Hub indexes this node's sessions (of type S) and subscriptions. */
export class Hub<S extends Subscriber = Subscriber> {
  readonly #sessions = new Map<string, S>();
  /** Sessions that opened a transport but sent no connect yet (not in #sessions). */
  readonly #connecting = new Set<S>();
  readonly #users = new Map<string, S | Set<S>>();
  /** channel → session → its subscription state; iterating yields the state with no lookup. */
  readonly #channels = new Map<string, Map<S, SubState>>();
  #numSubs = 0;
  /**
   * Receives, after each fan-out of a publication with variants, how many subscribers got
   * each payload: index 0 the publication's own data, i + 1 variant i (for metrics).
   */
  onVariantDeliveries: ((counts: readonly number[]) => void) | undefined;

  /** addConnecting tracks a session until it connects or closes (shutdown closes these too). */
  addConnecting(s: S): void {
    this.#connecting.add(s);
  }

  /** removeConnecting stops tracking a session that connected or closed. */
  removeConnecting(s: S): void {
    this.#connecting.delete(s);
  }

  /** connecting iterates over sessions that have not connected yet. */
  connecting(): IterableIterator<S> {
    return this.#connecting.values();
  }

  /** addSession registers a connected session. */
  addSession(s: S): void {
    this.#connecting.delete(s);
    this.#sessions.set(s.id, s);
    // Most users hold one connection: store it bare, and make a Set only for the second.
    const cur = this.#users.get(s.user);
    if (cur === undefined) this.#users.set(s.user, s);
    else if (cur instanceof Set) cur.add(s);
    else if (cur !== s) this.#users.set(s.user, new Set([cur, s]));
  }

  /** removeSession forgets a session (its subscriptions must be removed first). */
  removeSession(s: S): void {
    if (this.#sessions.get(s.id) !== s) return;
    this.#sessions.delete(s.id);
    const cur = this.#users.get(s.user);
    if (cur === s) this.#users.delete(s.user);
    else if (cur instanceof Set) {
      cur.delete(s);
      if (cur.size === 1) this.#users.set(s.user, cur.values().next().value as S);
    }
  }

  /** addSub indexes a subscription; returns true when it is the channel's first on this node. */
  addSub(channel: string, s: S, state: SubState): boolean {
    let subs = this.#channels.get(channel);
    const first = !subs;
    if (!subs) this.#channels.set(channel, (subs = new Map()));
    if (!subs.has(s)) this.#numSubs++;
    subs.set(s, state);
    return first;
  }

  /** removeSub removes a subscription; returns true when the channel has none left here. */
  removeSub(channel: string, s: S): boolean {
    const subs = this.#channels.get(channel);
    if (!subs || !subs.delete(s)) return false;
    this.#numSubs--;
    if (subs.size === 0) {
      this.#channels.delete(channel);
      return true;
    }
    return false;
  }

  /**
   * broadcastPublication delivers `pub` to every local subscriber; returns how many. `prev`, the
   * stream's publication before it (from the broker), is the base of delta subscriptions' deltas.
   */
  broadcastPublication(channel: string, pub: Publication, epoch = '', prev?: Publication): number {
    const subs = this.#channels.get(channel);
    if (!subs) return 0;
    if (pub.variants !== undefined) return this.#broadcastVariants(channel, pub, subs, epoch, prev);
    const frames = new SharedFrames({ type: 'pub', channel, pub });
    let deltas: DeltaFrames | undefined;
    for (const [session, state] of subs) {
      const frame =
        state.delta === true ? (deltas ??= new DeltaFrames(channel, pub, prev, frames)) : frames.for(session.codec);
      session.deliverPublication(state, pub, frame, epoch);
    }
    return subs.size;
  }

  /**
   * #broadcastVariants delivers a publication with variants: each subscriber gets the payload
   * its client's profile selects, encoded once per payload and format. Profiles are shared
   * between connections that declared the same, and subscribers of one kind tend to come in
   * runs, so the last choice is reused when the profile is the same object.
   */
  #broadcastVariants(
    channel: string,
    pub: Publication,
    subs: Map<S, SubState>,
    epoch: string,
    prev: Publication | undefined,
  ): number {
    const frames: Array<SharedFrames | undefined> = [];
    // Delta subscriptions: per payload too; a delta is sent only to a client whose base is prev's data.
    const deltas: Array<DeltaFrames | undefined> = [];
    const counts: number[] = new Array<number>(pub.variants!.length + 1).fill(0);
    let lastProfile: ClientProfile | undefined;
    let index = -1;
    for (const [session, state] of subs) {
      if (session.profile !== lastProfile) {
        lastProfile = session.profile;
        index = variantIndex(pub, lastProfile);
      }
      const chosen = variantPublication(pub, index);
      const f = (frames[index + 1] ??= new SharedFrames({ type: 'pub', channel, pub: chosen }));
      const frame =
        state.delta === true ? (deltas[index + 1] ??= new DeltaFrames(channel, chosen, prev, f)) : f.for(session.codec);
      if (session.deliverPublication(state, chosen, frame, epoch)) counts[index + 1]!++;
    }
    this.onVariantDeliveries?.(counts);
    return subs.size;
  }

  /** subscriptions iterates over the local subscribers of `channel` with their subscription state. */
  subscriptions(channel: string): IterableIterator<[S, SubState]> {
    return (this.#channels.get(channel) ?? new Map<S, SubState>()).entries();
  }

  /** broadcastJoin sends a join push to subscribers that asked for join/leave. */
  broadcastJoin(channel: string, info: ClientInfo): void {
    this.#broadcastPresenceEvent(channel, { type: 'join', channel, info });
  }

  /** broadcastLeave sends a leave push to subscribers that asked for join/leave. */
  broadcastLeave(channel: string, info: ClientInfo): void {
    this.#broadcastPresenceEvent(channel, { type: 'leave', channel, info });
  }

  #broadcastPresenceEvent(channel: string, push: Push): void {
    const subs = this.#channels.get(channel);
    if (!subs) return;
    let frames: SharedFrames | undefined;
    for (const [session, state] of subs) {
      if (!state.joinLeave) continue;
      frames ??= new SharedFrames(push);
      session.deliverEvent(state, frames.for(session.codec));
    }
  }

  /** session returns a connected session by client id. */
  session(clientId: string): S | undefined {
    return this.#sessions.get(clientId);
  }

  /** userSessions returns the sessions of a user (empty when none). */
  userSessions(user: string): ReadonlySet<S> {
    const cur = this.#users.get(user);
    if (cur === undefined) return new Set();
    return cur instanceof Set ? cur : new Set([cur]);
  }

  /** userConnectionCount counts a user's sessions without allocating. */
  userConnectionCount(user: string): number {
    const cur = this.#users.get(user);
    if (cur === undefined) return 0;
    return cur instanceof Set ? cur.size : 1;
  }

  /** sessions iterates over all sessions. */
  sessions(): IterableIterator<S> {
    return this.#sessions.values();
  }

  /** channels iterates over channels with local subscribers and their counts. */
  *channels(): IterableIterator<[string, number]> {
    for (const [ch, subs] of this.#channels) yield [ch, subs.size];
  }

  /** hasSubscribers tells whether `channel` has subscribers on this node. */
  hasSubscribers(channel: string): boolean {
    return this.#channels.has(channel);
  }

  get numClients(): number {
    return this.#sessions.size;
  }
  get numUsers(): number {
    return this.#users.size;
  }
  get numChannels(): number {
    return this.#channels.size;
  }
  get numSubs(): number {
    return this.#numSubs;
  }
}
