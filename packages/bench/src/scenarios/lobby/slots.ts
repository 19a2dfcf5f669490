/**
 * The lobby scenario's vocabulary: lobby channels, slot keys, what a slot holds, and how a
 * player chooses a free slot from its mirror — pure, so the tests check the choice directly.
 *
 * @module
 */
import type { SlotPick } from './types.js';

/** The map namespace every lobby is in. */
export const NAMESPACE = 'lobby';

/** channelOf is lobby `n`'s map channel. */
export const channelOf = (n: number): string => `${NAMESPACE}:${n}`;

/** lobbyOf reads a lobby channel back; -1 when it is not one. */
export function lobbyOf(channel: string): number {
  const m = /^lobby:(\d{1,9})$/.exec(channel);
  return m === null ? -1 : Number(m[1]);
}

/** slotKey is slot `i`'s key (1-based, as a game shows it). */
export const slotKey = (i: number): string => `slot-${i}`;

/** slotIndex reads a slot key back (1..slots); -1 when it is not one. */
export function slotIndex(key: string, slots: number): number {
  const m = /^slot-(\d{1,6})$/.exec(key);
  const i = m === null ? -1 : Number(m[1]);
  return i >= 1 && i <= slots ? i : -1;
}

/**
 * SlotValue is what a slot holds: the player, and when (performance.now() of the load
 * generator, ms) the write was sent, which times its delivery to every other member.
 */
export interface SlotValue {
  player: string;
  t: number;
}

/** slotValue is the value a player writes to take a slot now. */
export function slotValue(player: string, nowMs = performance.now()): SlotValue {
  return { player, t: Math.round(nowMs * 1000) / 1000 };
}

/** readSlotValue reads a slot's value; undefined when it is not one. */
export function readSlotValue(data: unknown): SlotValue | undefined {
  if (typeof data !== 'object' || data === null) return undefined;
  const d = data as { player?: unknown; t?: unknown };
  return typeof d.player === 'string' && typeof d.t === 'number' ? { player: d.player, t: d.t } : undefined;
}

/** freeSlots are the slots (1..slots) a mirror does not hold, less those already tried, in order. */
export function freeSlots(held: ReadonlyMap<string, unknown>, slots: number, tried: ReadonlySet<number>): number[] {
  const out: number[] = [];
  for (let i = 1; i <= slots; i++) if (!held.has(slotKey(i)) && !tried.has(i)) out.push(i);
  return out;
}

/**
 * pickSlot chooses among free slots: the lowest (a game filling its next slot: every joiner
 * races for the same one) or one at random. `free` is not empty.
 */
export function pickSlot(free: readonly number[], pick: SlotPick, rand: () => number = Math.random): number {
  const i = pick === 'lowest' ? 0 : Math.min(free.length - 1, Math.floor(rand() * free.length));
  return free[i] as number;
}

/** pickLobby chooses a lobby at random, another than `last` when there is another. */
export function pickLobby(lobbies: number, last: number, rand: () => number = Math.random): number {
  if (lobbies <= 1) return 0;
  for (;;) {
    const n = Math.min(lobbies - 1, Math.floor(rand() * lobbies));
    if (n !== last) return n;
  }
}
