/**
 * Kill switches (incident 4: a buggy client build was saved by a switch that turned one
 * feature off): an operator turns off client publishing or history/presence reads in a
 * namespace, one RPC method, or new connections, at runtime, with a reason the refused
 * clients receive.
 *
 * This file holds one node's set of switches and the checks on the hot paths (a Map lookup,
 * nothing when no switch is on). Setting them cluster-wide is the node's job: the API
 * method applies a change here and sends it to every other node as a control message
 * (see control.ts). Switches live in memory: a restarted node gets the ones from
 * `protection.kill_switches` and asks the other nodes for theirs.
 *
 * @module
 */

/** KillSwitchKind is what a switch turns off. */
export type KillSwitchKind = 'publish' | 'rpc' | 'read' | 'connect';

/** killSwitchKinds lists the kinds, for validation. */
export const killSwitchKinds = ['publish', 'rpc', 'read', 'connect'] as const satisfies readonly KillSwitchKind[];

/** ANY is the target that matches every namespace or RPC method. */
export const ANY = '*';

/** KillSwitch is one switch that is on. */
export interface KillSwitch {
  kind: KillSwitchKind;
  /** Namespace (publish, read; '' for channels without one), RPC method (rpc), or '*' for all. */
  target: string;
  /** Why: sent to every client refused by this switch. */
  reason: string;
  /** When it was set (ms since the epoch). */
  since: number;
}

function key(kind: KillSwitchKind, target: string): string {
  return `${kind}\u0000${target}`;
}

/** KillSwitches is the set of switches on this node. */
export class KillSwitches {
  readonly #switches = new Map<string, KillSwitch>();

  /** size is the number of switches on. */
  get size(): number {
    return this.#switches.size;
  }

  /**
   * set turns a switch on, or replaces the reason of one that is on. A `connect` switch is
   * node-wide: its target is always '*'. Returns the switch as stored.
   */
  set(kind: KillSwitchKind, target: string, reason: string, since = Date.now()): KillSwitch {
    const sw: KillSwitch = { kind, target: kind === 'connect' ? ANY : target, reason, since };
    this.#switches.set(key(sw.kind, sw.target), sw);
    return sw;
  }

  /** remove turns a switch off; false when it was not on. */
  remove(kind: KillSwitchKind, target: string): boolean {
    return this.#switches.delete(key(kind, kind === 'connect' ? ANY : target));
  }

  /** list returns the switches that are on, oldest first. */
  list(): KillSwitch[] {
    return [...this.#switches.values()].sort((a, b) => a.since - b.since);
  }

  /** get returns the switch of exactly this kind and target, if on. */
  get(kind: KillSwitchKind, target: string): KillSwitch | undefined {
    return this.#switches.get(key(kind, kind === 'connect' ? ANY : target));
  }

  /**
   * find returns the switch that refuses `kind` for `target` (the exact target first, then
   * '*'), or undefined. Free when no switch is on.
   */
  find(kind: KillSwitchKind, target = ANY): KillSwitch | undefined {
    if (this.#switches.size === 0) return undefined;
    return this.#switches.get(key(kind, target)) ?? this.#switches.get(key(kind, ANY));
  }
}
