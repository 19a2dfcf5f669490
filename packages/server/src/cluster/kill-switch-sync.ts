/**
 * Kill switches across the cluster: a change made on one node (set, remove) applies here at
 * once and travels to every other node as a control message; a node that (re)joins asks the
 * others for their state and merges it, the latest change of each switch winning. Every
 * change is counted in bulwark_kill_switches and logged.
 *
 * @module
 */
import type { Logger } from 'pino';
import type { Metrics } from '../metrics.js';
import type {
  KillSwitch,
  KillSwitchKind,
  KillSwitchRemoval,
  KillSwitchState,
  KillSwitches,
} from '../protection/kill-switches.js';
import type { OutgoingControl } from './control.js';

/** KillSwitchSyncContext is what the kill switch sync needs from its node. */
export interface KillSwitchSyncContext {
  /** The switches on this node (what sessions and admission check). */
  readonly switches: KillSwitches;
  readonly metrics: Pick<Metrics, 'killSwitches'>;
  readonly log: Logger;
  /** send publishes a control message to every other node. */
  send(msg: OutgoingControl): Promise<void>;
}

/** A switch as configured (protection.kill_switches). */
export interface ConfiguredKillSwitch {
  kind: KillSwitchKind;
  target: string;
  reason: string;
}

/** KillSwitchSync keeps one node's kill switches in step with the cluster's. */
export class KillSwitchSync {
  readonly #ctx: KillSwitchSyncContext;

  /** The configured switches are on from the start, at time 0. */
  constructor(ctx: KillSwitchSyncContext, configured: readonly ConfiguredKillSwitch[]) {
    this.#ctx = ctx;
    // Time 0: a removal made at runtime anywhere in the cluster wins over the config's switch.
    for (const sw of configured) ctx.switches.set(sw.kind, sw.target, sw.reason, 0);
    ctx.metrics.killSwitches.set(ctx.switches.size);
  }

  /** set turns a switch on (or changes its reason) here at once and on every other node. */
  async set(kind: KillSwitchKind, target: string, reason: string): Promise<KillSwitch> {
    // A change made here is the latest known: set() stamps it after every change it knows.
    const sw = this.#ctx.switches.set(kind, target, reason) as KillSwitch;
    this.#changed(sw, true);
    await this.#ctx.send({ type: 'kill_switch_set', switch: sw });
    return sw;
  }

  /** remove turns a switch off here and on every other node; false if it was not on here. */
  async remove(kind: KillSwitchKind, target: string): Promise<boolean> {
    const switches = this.#ctx.switches;
    const wasOn = switches.isOn(kind, target);
    const removal = switches.remove(kind, target) as KillSwitchRemoval;
    if (wasOn) this.#changed({ kind, target }, false);
    // Sent even when it was not on here: another node may have missed the change that removed it.
    await this.#ctx.send({ type: 'kill_switch_remove', removal });
    return wasOn;
  }

  /** list returns the switches on here, oldest first. */
  list(): KillSwitch[] {
    return this.#ctx.switches.list();
  }

  /**
   * requestSync asks the other nodes for their switches (at engine start and reconnect), and
   * tells them its own. Both halves are needed: when several nodes lost the engine together
   * (a Redis restart drops every pub/sub connection), the first one back asks while the others
   * cannot hear it yet; the last one back then brings them its switches as it returns.
   */
  requestSync(): void {
    this.#ctx.send({ type: 'kill_switch_sync' }).catch((err: unknown) => {
      this.#ctx.log.warn({ err }, 'kill switch sync request failed; switches changed meanwhile may be missing here');
    });
    this.#tell('*');
  }

  /** onSet applies a switch another node turned on. */
  onSet(sw: KillSwitch, from: string): void {
    const applied = this.#ctx.switches.set(sw.kind, sw.target, sw.reason, sw.since);
    if (applied !== undefined) this.#changed(applied, true, from);
  }

  /** onRemove applies a switch another node turned off. */
  onRemove(removal: KillSwitchRemoval, from: string): void {
    const switches = this.#ctx.switches;
    const wasOn = switches.isOn(removal.kind, removal.target);
    if (switches.remove(removal.kind, removal.target, removal.at) !== undefined && wasOn) {
      this.#changed(removal, false, from);
    }
  }

  /** onSyncRequest answers a node that asked for the switches (when there is anything to tell). */
  onSyncRequest(from: string): void {
    this.#tell(from);
  }

  /** #tell sends this node's switches and removals to node `to` ('*': every node), if it has any. */
  #tell(to: string): void {
    const state = this.#ctx.switches.state();
    if (state.switches.length === 0 && state.removed.length === 0) return;
    this.#ctx
      .send({ type: 'kill_switch_state', to, ...state })
      .catch((err: unknown) => this.#ctx.log.warn({ err }, 'kill switch state not sent'));
  }

  /** onState merges another node's answer to this node's sync request. */
  onState(state: KillSwitchState, from: string): void {
    // The latest change of each switch wins, so missed sets and missed removals both heal.
    const { on, off } = this.#ctx.switches.merge(state);
    for (const sw of on) this.#changed(sw, true, from);
    for (const r of off) this.#changed(r, false, from);
  }

  #changed(sw: Pick<KillSwitch, 'kind' | 'target'> & { reason?: string }, on: boolean, from?: string): void {
    this.#ctx.metrics.killSwitches.set(this.#ctx.switches.size);
    this.#ctx.log.warn(
      { kind: sw.kind, target: sw.target, reason: sw.reason, from },
      on ? 'kill switch on' : 'kill switch off',
    );
  }
}
