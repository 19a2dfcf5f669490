/**
 * One player of the lobby scenario: a {@link MapClient} connection kept for the whole run (no
 * reconnects), and the loop it plays. Join a random lobby (subscribe to its map), take a free
 * slot its mirror shows with a conditional write (the namespace makes every client write
 * `if_new`: a slot someone took meanwhile answers 113, and the player tries the next free one,
 * or gives up when none is left), stay a while, leave (remove its slot, unsubscribe), and
 * maybe join another lobby, until the run ends. Players in a lobby at the end stay there: the
 * final state the exactness check compares.
 *
 * A player whose last attempt found free slots and lost every race keeps trying past the end
 * (up to the settle bound): the verdict asks that every player who found a free slot got one,
 * and a race lost in the run's last second is not a starved player.
 *
 * @module
 */
import { sleep } from '../../harness/util.js';
import { MapClient } from '../../load/map-client.js';
import type { MapEntry } from '../../load/map-mirror.js';
import { channelOf, freeSlots, pickLobby, pickSlot, readSlotValue, slotKey, slotValue } from './slots.js';
import { LobbyTallies } from './tallies.js';
import type { LobbyOptions } from './types.js';

/** JoinOutcome is how one attempt at a lobby ended. */
export type JoinOutcome = 'joined' | 'full' | 'lost' | 'error';

/** The run's clock: when players start, when they stop, and how long a loser may keep trying. */
export interface PlayClock {
  startAt: number;
  endAt: number;
  retryUntil: number;
}

/** LobbyPlayer is one player and its connection. */
export class LobbyPlayer {
  readonly client: MapClient;
  /** The lobby it is subscribed to, if any. */
  lobby: number | undefined;
  /** The slot key it believes it holds (in `lobby`), if any. */
  held: string | undefined;
  sawFree = false;
  gotSlot = false;
  gone = false;
  /** How its last attempt ended. */
  last: JoinOutcome | undefined;
  /** The slot it is giving up, until it has unsubscribed (its own removal is not another's). */
  #leaving: string | undefined;

  constructor(
    readonly user: string,
    url: string,
    secret: string,
    private readonly o: LobbyOptions,
    private readonly t: LobbyTallies,
  ) {
    this.client = new MapClient({
      url,
      user,
      secret,
      onChange: (channel, e, atMs) => this.#onChange(channel, e, atMs),
      onOwnDelivery: (_channel, e, ms, atMs) => {
        t.own.add(ms);
        t.timeline.sample('own', ms, atMs);
        if (e.removed !== true) t.ownTakesDelivered++;
      },
    });
  }

  /** play runs the player's loop until the run ends (see the module note). */
  async play(clock: PlayClock): Promise<void> {
    const o = this.o;
    await sleep(Math.max(0, clock.startAt + Math.random() * o.rampSeconds * 1000 - performance.now()));
    let lastLobby = -1;
    for (;;) {
      const now = performance.now();
      const overtime = this.last === 'lost' && !this.gotSlot && now < clock.retryUntil;
      if (!this.client.isOpen || (now >= clock.endAt && !overtime)) return;
      lastLobby = pickLobby(o.lobbies, lastLobby);
      const outcome = await this.join(lastLobby);
      this.last = outcome;
      if (outcome === 'joined') {
        const hold = (o.holdMinSeconds + Math.random() * (o.holdMaxSeconds - o.holdMinSeconds)) * 1000;
        // The run ends while it is in the lobby: it stays, holding its slot.
        if (performance.now() + hold >= clock.endAt) return;
        await sleep(hold);
        if (!(await this.leave())) return;
        if (Math.random() * 100 >= o.rejoinPercent) {
          this.gone = true;
          return;
        }
      }
      await sleep(Math.random() * o.pauseSeconds * 1000);
    }
  }

  /** join subscribes to lobby `n` and tries to take a free slot; unsubscribes unless it got one. */
  async join(n: number): Promise<JoinOutcome> {
    const t = this.t;
    const channel = channelOf(n);
    t.joinAttempts++;
    try {
      const info = await this.client.subscribe(channel, this.o.pageSize);
      t.subscribed++;
      t.subscribeMs.add(info.ms);
      t.snapshotEntries.add(info.entries);
      t.snapshotBytes.add(info.bytes);
      t.snapshotRequests.add(info.requests);
      t.snapshotRestarts += info.restarts;
    } catch (err) {
      LobbyTallies.bump(t.subscribeErrors, errorLabel(err));
      return 'error';
    }
    this.lobby = n;
    const tried = new Set<number>();
    let outcome: JoinOutcome = 'full';
    for (;;) {
      const mirror = this.client.mirror(channel);
      if (mirror === undefined) {
        outcome = 'error';
        break;
      }
      const free = freeSlots(mirror.entries, this.o.slots, tried);
      if (free.length === 0) break;
      this.sawFree = true;
      const slot = pickSlot(free, this.o.pick);
      // The last free slot as this player's mirror shows it: the race the scenario is about.
      const lastSlot = this.o.slots - mirror.size === 1;
      const key = slotKey(slot);
      let r;
      try {
        r = await this.client.publish(channel, key, slotValue(this.user));
      } catch (err) {
        LobbyTallies.bump(t.writeErrors, errorLabel(err));
        outcome = 'error';
        break;
      }
      t.writeReply.add(r.ms);
      if (r.code === 0) {
        this.held = key;
        this.gotSlot = true;
        t.joined++;
        t.ownTakesOk++;
        t.timeline.count('joins');
        return 'joined';
      }
      if (r.code !== 113) {
        LobbyTallies.bump(t.writeErrors, r.code);
        outcome = 'error';
        break;
      }
      t.conflicts++;
      if (lastSlot) t.lastSlotConflicts++;
      t.timeline.count('conflicts');
      tried.add(slot);
      outcome = 'lost';
    }
    if (outcome === 'full') t.fullOnArrival++;
    if (outcome === 'lost') t.fullAfterConflict++;
    await this.#unsubscribe();
    return outcome;
  }

  /** leave removes the player's slot and unsubscribes; false (and it stays) when the removal failed. */
  async leave(): Promise<boolean> {
    const t = this.t;
    if (this.lobby === undefined || this.held === undefined) return true;
    const channel = channelOf(this.lobby);
    this.#leaving = this.held;
    t.removalSentAt.set(`${channel}\0${this.held}`, performance.now());
    try {
      const r = await this.client.remove(channel, this.held);
      t.writeReply.add(r.ms);
      if (r.code !== 0) {
        LobbyTallies.bump(t.leaveErrors, r.code);
        return false;
      }
    } catch (err) {
      LobbyTallies.bump(t.leaveErrors, errorLabel(err));
      return false;
    }
    this.held = undefined;
    t.leaves++;
    t.timeline.count('leaves');
    await this.#unsubscribe();
    this.#leaving = undefined;
    return true;
  }

  async #unsubscribe(): Promise<void> {
    if (this.lobby === undefined) return;
    const channel = channelOf(this.lobby);
    this.lobby = undefined;
    try {
      await this.client.unsubscribe(channel);
    } catch (err) {
      LobbyTallies.bump(this.t.subscribeErrors, `unsubscribe: ${errorLabel(err)}`);
    }
  }

  /** #onChange times another member's write as this player's mirror receives it. */
  #onChange(channel: string, e: MapEntry, atMs: number): void {
    const t = this.t;
    let sentAt: number | undefined;
    if (e.removed === true) {
      if (e.key === this.held || e.key === this.#leaving) return;
      sentAt = t.removalSentAt.get(`${channel}\0${e.key}`);
    } else {
      const v = readSlotValue(e.data);
      if (v === undefined || v.player === this.user) return;
      sentAt = v.t;
    }
    if (sentAt === undefined) return;
    t.others.add(atMs - sentAt);
    t.timeline.sample('others', atMs - sentAt, atMs);
  }
}

/** errorLabel names a failure for tallies: "subscribe lobby:3: error 106 …" → "106"; else its message, cut. */
export function errorLabel(err: unknown): string {
  const message = (err as Error).message;
  return /error (-?\d+)/.exec(message)?.[1] ?? message.slice(0, 60);
}
