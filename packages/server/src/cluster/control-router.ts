/**
 * Routes the control messages other nodes send to the part of this node that handles each:
 * node info to the registry, surveys and their replies to the surveys, user commands to the
 * user commands, kill switch changes to the kill switch sync, relayed emulation requests to
 * this node's emulation sessions.
 *
 * @module
 */
import type { EmulationSessions } from '../client/emulation-sessions.js';
import type { ControlMessage } from './control.js';
import type { KillSwitchSync } from './kill-switch-sync.js';
import type { NodeRegistry } from './node-registry.js';
import type { Surveys } from './survey.js';
import type { UserCommands } from './user-commands.js';

/** ControlRouterContext names the handlers of control messages on one node. */
export interface ControlRouterContext {
  readonly nodeId: string;
  readonly nodes: Pick<NodeRegistry, 'update' | 'remove'>;
  readonly surveys: Pick<Surveys, 'answer' | 'onReply'>;
  readonly userCommands: Pick<UserCommands, 'receive'>;
  readonly killSwitches: Pick<KillSwitchSync, 'onSet' | 'onRemove' | 'onSyncRequest' | 'onState'>;
  /** This node's HTTP-streaming and SSE sessions, which relayed /emulation requests reach. */
  readonly emulation: Pick<EmulationSessions, 'deliver'>;
}

/** controlRouter returns the handler of every valid control message from another node. */
export function controlRouter(ctx: ControlRouterContext): (msg: ControlMessage) => void {
  return (msg) => {
    switch (msg.type) {
      case 'node_info':
        return ctx.nodes.update(msg.info);
      case 'node_leave':
        return ctx.nodes.remove(msg.from);
      case 'user_command':
        return ctx.userCommands.receive(msg.method, msg.body, msg.from);
      case 'survey':
        return ctx.surveys.answer(msg.from, msg.id, msg.op);
      case 'survey_reply':
        if (msg.to === ctx.nodeId) ctx.surveys.onReply(msg.id, msg.result);
        return;
      case 'kill_switch_set':
        return ctx.killSwitches.onSet(msg.switch, msg.from);
      case 'kill_switch_remove':
        return ctx.killSwitches.onRemove(msg.removal, msg.from);
      case 'kill_switch_sync':
        return ctx.killSwitches.onSyncRequest(msg.from);
      case 'emulation':
        // A session gone meanwhile drops the commands, as a local /emulation request does.
        if (msg.to === ctx.nodeId) ctx.emulation.deliver(msg.session, Buffer.from(msg.data, 'base64'));
        return;
      case 'kill_switch_state':
        if (msg.to === ctx.nodeId || msg.to === '*') ctx.killSwitches.onState(msg, msg.from);
        return;
    }
  };
}
