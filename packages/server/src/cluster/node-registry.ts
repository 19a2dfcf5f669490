/**
 * The other live nodes, as learned from their `node_info` control messages. A node that stops
 * sending them (crashed, partitioned) is forgotten after a few intervals; one that shuts down
 * says so (`node_leave`) and is forgotten at once.
 *
 * @module
 */
import type { NodeInfo } from './control.js';

/** NodeRegistry holds the latest info of every other live node. */
export class NodeRegistry {
  readonly #ttlMs: number;
  readonly #now: () => number;
  readonly #nodes = new Map<string, { info: NodeInfo; expiresAt: number }>();

  /** A node is live for `ttlMs` after its last info. */
  constructor(ttlMs: number, now: () => number = Date.now) {
    this.#ttlMs = ttlMs;
    this.#now = now;
  }

  /** update records a node's info (and that it is alive). */
  update(info: NodeInfo): void {
    this.#nodes.set(info.uid, { info, expiresAt: this.#now() + this.#ttlMs });
  }

  /** remove forgets a node that left. */
  remove(uid: string): void {
    this.#nodes.delete(uid);
  }

  /** has tells whether node `uid` is live (its last info within the TTL). */
  has(uid: string): boolean {
    const n = this.#nodes.get(uid);
    return n !== undefined && n.expiresAt > this.#now();
  }

  /** list returns the live nodes, forgetting the expired ones. */
  list(): NodeInfo[] {
    const now = this.#now();
    const out: NodeInfo[] = [];
    for (const [uid, n] of this.#nodes) {
      if (n.expiresAt <= now) this.#nodes.delete(uid);
      else out.push(n.info);
    }
    return out;
  }

  /** size is the number of live nodes. */
  get size(): number {
    return this.list().length;
  }
}
