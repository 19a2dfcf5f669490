/**
 * Kill switches (incident 4: a buggy client build was saved by a switch that turned one
 * feature off): an operator turns off client publishing or history/presence reads in a
 * namespace, one RPC method, or new connections, at runtime, with a reason the refused
 * clients receive.
 *
 * This file holds one node's set of switches and the checks on the hot paths (a Map lookup,
 * nothing when no switch is on). Setting them cluster-wide is the node's job: the API
 * method applies a change here and sends it to every other node as a control message
 * (see cluster/control.ts). Switches live in memory: a restarted node starts with the ones in
 * `protection.kill_switches` and asks the other nodes for their state.
 *
 * @module
 */
import { killSwitchKinds } from '../config/sections/protection.js';

export { killSwitchKinds };

/** KillSwitchKind is what a switch turns off. */
export type KillSwitchKind = (typeof killSwitchKinds)[number];

/** ANY is the target that matches every namespace or RPC method. */
export const ANY = '*';

/** KillSwitch is one switch that is on. */
export interface KillSwitch {
  kind: KillSwitchKind;
  /**
   * Namespace (publish, read; '' for channels without one), RPC method (rpc), proxy target
   * (proxy: `client.proxy.connect`, `channel.proxy.subscribe`, `rpc.proxy`, a `proxies[]`
   * name…), or '*' for all.
   */
  target: string;
  /** Why: sent to every client refused by this switch. */
  reason: string;
  /** When it was set (ms since the epoch). */
  since: number;
}

function key(kind: KillSwitchKind, target: string): string {
  return `${kind}\u0000${target}`;
}

/** KillSwitchRemoval records when a switch was turned off, so a late copy of it stays off. */
export interface KillSwitchRemoval {
  kind: KillSwitchKind;
  target: string;
  /** When it was turned off (ms since the epoch). */
  at: number;
}

/** KillSwitchState is everything a node knows about switches: the ones on, and the removals. */
export interface KillSwitchState {
  switches: KillSwitch[];
  removed: KillSwitchRemoval[];
}

/**
 * KillSwitches is the set of switches on this node.
 *
 * Nodes exchange changes and, when one (re)joins, whole states; each change carries its time
 * and the latest one wins, so every node converges on the same switches whatever order the
 * messages arrive in and whichever it missed. Removals are kept (one small entry per switch
 * ever removed) so that a node that missed one learns it from any other node.
 */
export class KillSwitches {
  readonly #switches = new Map<string, KillSwitch>();
  readonly #removed = new Map<string, KillSwitchRemoval>();

  /** size is the number of switches on. */
  get size(): number {
    return this.#switches.size;
  }

  /**
   * set turns a switch on, or replaces the reason of one that is on, unless a later change of
   * the same switch is known. A `connect` switch is node-wide: its target is always '*'.
   * Without `since` (a change made here), the time is now, and never before a change already
   * known. Returns the switch as stored, or undefined when a later change wins.
   */
  set(kind: KillSwitchKind, target: string, reason: string, since?: number): KillSwitch | undefined {
    const t = kind === 'connect' ? ANY : target;
    const k = key(kind, t);
    const at = since ?? Math.max(Date.now(), this.#latest(k) + 1);
    if (at < this.#latest(k)) return undefined;
    const sw: KillSwitch = { kind, target: t, reason, since: at };
    this.#switches.set(k, sw);
    this.#removed.delete(k);
    return sw;
  }

  /**
   * remove turns a switch off unless it was set later than `at` (default: now, never before a
   * change already known). Returns the removal when it applied, undefined when a later set wins.
   */
  remove(kind: KillSwitchKind, target: string, at?: number): KillSwitchRemoval | undefined {
    const t = kind === 'connect' ? ANY : target;
    const k = key(kind, t);
    const when = at ?? Math.max(Date.now(), this.#latest(k) + 1);
    const current = this.#switches.get(k);
    if (current !== undefined && when < current.since) return undefined;
    const prior = this.#removed.get(k);
    if (prior !== undefined && prior.at >= when) return prior;
    this.#switches.delete(k);
    const removal: KillSwitchRemoval = { kind, target: t, at: when };
    this.#removed.set(k, removal);
    return removal;
  }

  /** isOn tells whether exactly this switch is on. */
  isOn(kind: KillSwitchKind, target: string): boolean {
    return this.#switches.has(key(kind, kind === 'connect' ? ANY : target));
  }

  /** list returns the switches that are on, oldest first. */
  list(): KillSwitch[] {
    return [...this.#switches.values()].sort((a, b) => a.since - b.since);
  }

  /** state returns the switches on and the removals, for a node that asks. */
  state(): KillSwitchState {
    return { switches: this.list(), removed: [...this.#removed.values()] };
  }

  /**
   * merge applies another node's state, change by change, the latest winning. Returns what
   * changed here: switches turned on (or re-reasoned) and switches turned off.
   */
  merge(state: KillSwitchState): { on: KillSwitch[]; off: KillSwitchRemoval[] } {
    const on: KillSwitch[] = [];
    const off: KillSwitchRemoval[] = [];
    for (const sw of state.switches) {
      const before = this.#switches.get(key(sw.kind, sw.target));
      if (before !== undefined && before.since === sw.since && before.reason === sw.reason) continue;
      const applied = this.set(sw.kind, sw.target, sw.reason, sw.since);
      if (applied !== undefined) on.push(applied);
    }
    for (const r of state.removed) {
      const wasOn = this.isOn(r.kind, r.target);
      const applied = this.remove(r.kind, r.target, r.at);
      if (applied !== undefined && wasOn) off.push(applied);
    }
    return { on, off };
  }

  /**
   * find returns the switch that refuses `kind` for `target` (the exact target first, then
   * '*'), or undefined. Free when no switch is on.
   */
  find(kind: KillSwitchKind, target = ANY): KillSwitch | undefined {
    if (this.#switches.size === 0) return undefined;
    return this.#switches.get(key(kind, target)) ?? this.#switches.get(key(kind, ANY));
  }

  /** #latest is the time of the last known change of a switch (−∞ when none). */
  #latest(k: string): number {
    return Math.max(this.#switches.get(k)?.since ?? -Infinity, this.#removed.get(k)?.at ?? -Infinity);
  }
}
