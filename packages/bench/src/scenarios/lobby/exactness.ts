/**
 * The lobby scenario's end-state check, pure: every player's mirror against the server's map
 * of its lobby (entries and stream position), and the slots themselves — no player in two
 * slots, every slot held by a player who believes it holds it, no player believing in a slot
 * the server does not give it.
 *
 * @module
 */
import { lobbyOf, readSlotValue, slotIndex } from './slots.js';
import type { ExactnessResult } from './types.js';

/** ServerLobby is a lobby's map as the server API reads it (map_read_state, every page). */
export interface ServerLobby {
  entries: Map<string, unknown>;
  offset: number;
  epoch: string;
}

/** PlayerView is what a player holds and believes at the end. */
export interface PlayerView {
  user: string;
  /** The lobby channel it is subscribed to, with its mirror, if any. */
  channel?: string;
  mirror?: { entries: ReadonlyMap<string, unknown>; offset: number; epoch: string };
  /** The slot key it believes it holds (in `channel`), if any. */
  held?: string;
}

/** How many differing mirrors the result describes. */
const EXAMPLES = 5;

/** describeDiff says how a mirror differs from the server's entries (first differing keys). */
export function describeDiff(mine: ReadonlyMap<string, unknown>, server: ReadonlyMap<string, unknown>): string {
  const diffs: string[] = [];
  for (const k of new Set([...mine.keys(), ...server.keys()])) {
    const a = mine.has(k) ? JSON.stringify(mine.get(k)) : 'absent';
    const b = server.has(k) ? JSON.stringify(server.get(k)) : 'absent';
    if (a !== b) diffs.push(`${k}: mirror ${a}, server ${b}`);
  }
  return diffs.slice(0, 3).join('; ');
}

/** sameEntries tells whether two maps hold the same keys with the same values (as JSON). */
export function sameEntries(a: ReadonlyMap<string, unknown>, b: ReadonlyMap<string, unknown>): boolean {
  if (a.size !== b.size) return false;
  for (const [k, v] of a) if (!b.has(k) || JSON.stringify(b.get(k)) !== JSON.stringify(v)) return false;
  return true;
}

/** judgeExactness compares every player's view with the server's lobbies (keyed by channel). */
export function judgeExactness(
  players: readonly PlayerView[],
  server: ReadonlyMap<string, ServerLobby>,
  slots: number,
): ExactnessResult {
  const r: ExactnessResult = {
    mirrors: 0,
    equal: 0,
    atPosition: 0,
    examples: [],
    slotsHeld: 0,
    doubleHeld: 0,
    strangers: 0,
    phantoms: 0,
    malformed: 0,
  };
  const belief = new Map<string, string>();
  for (const p of players) {
    if (p.held !== undefined && p.channel !== undefined) belief.set(p.user, `${p.channel}\0${p.held}`);
    if (p.channel === undefined || p.mirror === undefined) continue;
    r.mirrors++;
    const s = server.get(p.channel) ?? { entries: new Map<string, unknown>(), offset: 0, epoch: '' };
    if (sameEntries(p.mirror.entries, s.entries)) r.equal++;
    else if (r.examples.length < EXAMPLES) {
      r.examples.push(`${p.user} in ${p.channel}: ${describeDiff(p.mirror.entries, s.entries)}`);
    }
    if (p.mirror.offset === s.offset && p.mirror.epoch === s.epoch) r.atPosition++;
  }
  // The server's side: who holds which slot.
  const holdings = new Map<string, number>();
  for (const [channel, lobby] of server) {
    for (const [key, data] of lobby.entries) {
      const v = readSlotValue(data);
      if (lobbyOf(channel) < 0 || slotIndex(key, slots) < 0 || v === undefined) {
        r.malformed++;
        continue;
      }
      r.slotsHeld++;
      holdings.set(v.player, (holdings.get(v.player) ?? 0) + 1);
      if (belief.get(v.player) !== `${channel}\0${key}`) r.strangers++;
    }
  }
  for (const n of holdings.values()) if (n > 1) r.doubleHeld++;
  for (const [user, where] of belief) {
    const [channel = '', key = ''] = where.split('\0');
    const v = readSlotValue(server.get(channel)?.entries.get(key));
    if (v?.player !== user) r.phantoms++;
  }
  return r;
}
