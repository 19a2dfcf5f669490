/**
 * One node's part in the cluster, assembled: the control bus, the registry of the other nodes
 * (and this node's own periodic `node_info`), surveys, user commands and kill switch sync,
 * with the router between the bus and them.
 *
 * @module
 */
import type { Logger } from 'pino';
import type { EmulationSessions } from '../client/emulation-sessions.js';
import type { Config } from '../config/schema.js';
import type { Metrics } from '../metrics.js';
import type { BurstLog } from '../protection/burst-log.js';
import type { KillSwitches } from '../protection/kill-switches.js';
import type { RawJSON } from '../protocol/types.js';
import { ControlBus, type NodeInfo, type OutgoingControl } from './control.js';
import { controlRouter } from './control-router.js';
import { KillSwitchSync } from './kill-switch-sync.js';
import { NodeRegistry } from './node-registry.js';
import { Surveys } from './survey.js';
import { UserCommands, type UserCommandContext, type UserCommandSession } from './user-commands.js';

/** ClusterContext is what the cluster part needs from its node. */
export interface ClusterContext extends Pick<UserCommandContext, 'rules' | 'log' | 'sendMessage'> {
  readonly nodeId: string;
  /** node.info_interval, node.survey_timeout, protection.kill_switches. */
  readonly config: Readonly<Config>;
  readonly log: Logger;
  readonly burstLog: Pick<BurstLog, 'warn'>;
  readonly metrics: Pick<Metrics, 'killSwitches'>;
  /** The switches on this node. */
  readonly killSwitches: KillSwitches;
  /** Until the engine started, nothing is announced. */
  readonly engineStarted: boolean;
  /** The broker: its control channel reaches every node. */
  readonly broker: { publishControl(data: RawJSON): Promise<void> };
  /** This node's channels (with their subscriber counts) and users' sessions: the hub. */
  readonly hub: {
    channels(): Iterable<[string, number]>;
    userSessions(user: string): Iterable<UserCommandSession>;
  };
  /** This node's emulation sessions: /emulation requests other nodes relay reach them. */
  readonly emulation: Pick<EmulationSessions, 'deliver'>;
  /** info is this node's entry in `info`, sent to the others every node.info_interval. */
  info(): NodeInfo;
}

/** Cluster holds one node's part in the cluster. */
export class Cluster {
  /** Messages to and from the other nodes, through the broker. */
  readonly control: ControlBus;
  /** The other live nodes (from their node_info messages). */
  readonly nodes: NodeRegistry;
  /** Cluster-wide questions (channels API). */
  readonly surveys: Surveys;
  /** Methods on a user's connections, wherever the user is connected. */
  readonly userCommands: UserCommands;
  /** The kill switches, in step across the cluster. */
  readonly killSwitches: KillSwitchSync;
  readonly #ctx: ClusterContext;
  #infoTimer: NodeJS.Timeout | undefined;

  constructor(ctx: ClusterContext) {
    this.#ctx = ctx;
    const cfg = ctx.config;
    // Each part sends through the control bus, which routes what comes back.
    const send = (msg: OutgoingControl) => this.control.send(msg);
    this.nodes = new NodeRegistry(cfg.node.info_interval * 3);
    this.surveys = new Surveys({ send }, cfg.node.survey_timeout, {
      channels: () => Object.fromEntries(ctx.hub.channels()),
      log: ctx.log,
    });
    this.killSwitches = new KillSwitchSync(
      { switches: ctx.killSwitches, metrics: ctx.metrics, log: ctx.log, send },
      cfg.protection.kill_switches,
    );
    this.userCommands = new UserCommands({
      rules: ctx.rules,
      log: ctx.log,
      userSessions: (user) => ctx.hub.userSessions(user),
      sendMessage: (user, data) => ctx.sendMessage(user, data),
      send,
    });
    const route = controlRouter({
      nodeId: ctx.nodeId,
      nodes: this.nodes,
      surveys: this.surveys,
      userCommands: this.userCommands,
      killSwitches: this.killSwitches,
      emulation: ctx.emulation,
    });
    this.control = new ControlBus(ctx.nodeId, (data) => ctx.broker.publishControl(data), ctx.log, route);
  }

  /** start announces this node (when the engine started) and then every node.info_interval. */
  start(): void {
    this.publishInfo();
    this.#infoTimer = setInterval(() => this.publishInfo(), this.#ctx.config.node.info_interval);
    this.#infoTimer.unref();
  }

  /** stop ends the periodic info. */
  stop(): void {
    if (this.#infoTimer) clearInterval(this.#infoTimer);
  }

  /** leave tells the other nodes this one is gone (they drop it from `info` at once). */
  async leave(): Promise<void> {
    if (this.#ctx.engineStarted) await this.control.send({ type: 'node_leave' }).catch(() => undefined);
  }

  /** publishInfo sends this node's info to the others, once the engine started. */
  publishInfo(): void {
    if (!this.#ctx.engineStarted) return;
    this.control.send({ type: 'node_info', info: this.#ctx.info() }).catch((err: unknown) => {
      this.#ctx.burstLog.warn('control.node_info', { err }, 'node info not sent: the engine is unreachable');
    });
  }
}
