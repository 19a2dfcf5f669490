/**
 * The PresenceManager contract: who is in a channel right now.
 *
 * @module
 */
import type { ClientInfo } from '../protocol/types.js';

/** PresenceStats counts a channel's connections and distinct users. */
export interface PresenceStats {
  numClients: number;
  numUsers: number;
}

/**
 * PresenceManager keeps, per channel, the connections present in it.
 *
 * Contract: an entry added with `ttlMs` disappears after `ttlMs` unless added again (nodes
 * refresh their entries periodically, so a crashed node's clients vanish on their own);
 * `removePresence` removes it at once. Results are keyed by client id.
 */
export interface PresenceManager {
  addPresence(channel: string, info: ClientInfo, ttlMs: number): Promise<void>;
  removePresence(channel: string, clientId: string, userId: string): Promise<void>;
  presence(channel: string): Promise<Record<string, ClientInfo>>;
  presenceStats(channel: string): Promise<PresenceStats>;
  close(): Promise<void>;
  /**
   * isReady tells whether presence can be read and written right now. Optional: a manager
   * without it, such as the memory one, is always ready.
   */
  isReady?(): boolean;
}
