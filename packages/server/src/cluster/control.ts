/**
 * Control messages: what one node tells the others through the broker's control channel
 * (`Broker.publishControl`, delivered to every node, the sender included). It is the only
 * way nodes talk to each other — no cluster protocol of our own — so a change made through
 * any node's API reaches the whole cluster as fast as the engine delivers a publication.
 *
 * Messages from other nodes are external input: each is validated, and one that does not
 * parse is logged and dropped, never thrown into the broker's delivery loop.
 *
 * @module
 */
import type { Logger } from 'pino';
import { z } from 'zod';
import { killSwitchKinds } from '../protection/kill-switches.js';
import type { RawJSON } from '../protocol/types.js';

const killSwitch = z.object({
  kind: z.enum(killSwitchKinds),
  target: z.string(),
  reason: z.string(),
  since: z.number(),
});

/** NodeInfo is what a node tells the others about itself (the `info` API method lists them). */
const nodeInfo = z.object({
  uid: z.string(),
  name: z.string(),
  version: z.string(),
  num_clients: z.number(),
  num_users: z.number(),
  num_channels: z.number(),
  num_subs: z.number(),
  uptime: z.number(),
});

/** NodeInfo is one node's entry in the `info` API result. */
export type NodeInfo = z.output<typeof nodeInfo>;

/** The server API methods that act on a user's connections wherever they are. */
export const userCommandMethods = ['subscribe', 'unsubscribe', 'disconnect', 'refresh', 'send'] as const;

const controlMessage = z.discriminatedUnion('type', [
  // Sent every node.info_interval: the other nodes list it in `info` until it stops.
  z.object({ type: z.literal('node_info'), from: z.string(), info: nodeInfo }),
  // Sent at shutdown: the other nodes forget it at once.
  z.object({ type: z.literal('node_leave'), from: z.string() }),
  // A server API call on a user's connections, run by every other node on its own sessions.
  // `body` is the API request body as received; each node validates it again.
  z.object({
    type: z.literal('user_command'),
    from: z.string(),
    method: z.enum(userCommandMethods),
    body: z.unknown(),
  }),
  // A question to every node (e.g. its channels); each answers with a survey_reply to `from`.
  z.object({ type: z.literal('survey'), from: z.string(), id: z.string(), op: z.enum(['channels']) }),
  z.object({ type: z.literal('survey_reply'), from: z.string(), to: z.string(), id: z.string(), result: z.unknown() }),
  z.object({ type: z.literal('kill_switch_set'), from: z.string(), switch: killSwitch }),
  z.object({
    type: z.literal('kill_switch_remove'),
    from: z.string(),
    removal: z.object({ kind: z.enum(killSwitchKinds), target: z.string(), at: z.number() }),
  }),
  // An /emulation request that reached another node than the one holding its session (`to`):
  // `data` is the commands, base64, as the client sent them (bounded by the sender's
  // emulation.max_request_body_size). Only node `to` acts on it.
  z.object({
    type: z.literal('emulation'),
    from: z.string(),
    to: z.string(),
    session: z.string().max(256),
    data: z.string(),
  }),
  // A node that (re)joined — started, or got its engine connection back — asks for the others' state.
  z.object({ type: z.literal('kill_switch_sync'), from: z.string() }),
  // Switches on and removals, with their times: the answer to a sync, addressed to the node that
  // asked, or ('*') what a node that (re)joined tells every node.
  z.object({
    type: z.literal('kill_switch_state'),
    from: z.string(),
    to: z.string(),
    switches: z.array(killSwitch),
    removed: z.array(z.object({ kind: z.enum(killSwitchKinds), target: z.string(), at: z.number() })),
  }),
]);

/** ControlMessage is one validated control message. */
export type ControlMessage = z.output<typeof controlMessage>;

/** OutgoingControl is a control message before the bus stamps its sender. */
export type OutgoingControl = ControlMessage extends infer M ? (M extends unknown ? Omit<M, 'from'> : never) : never;

/** ControlBus sends and receives control messages for one node. */
export class ControlBus {
  readonly #nodeId: string;
  readonly #publish: (data: RawJSON) => Promise<void>;
  readonly #log: Logger;
  readonly #handle: (msg: ControlMessage) => void;

  /**
   * `publish` sends to every node (the broker's publishControl); `handle` receives every valid
   * message from another node (this node's own are skipped).
   */
  constructor(
    nodeId: string,
    publish: (data: RawJSON) => Promise<void>,
    log: Logger,
    handle: (msg: ControlMessage) => void,
  ) {
    this.#nodeId = nodeId;
    this.#publish = publish;
    this.#log = log;
    this.#handle = handle;
  }

  /** send publishes a message to every node. */
  send(msg: OutgoingControl): Promise<void> {
    return this.#publish(JSON.stringify({ ...msg, from: this.#nodeId }) as RawJSON);
  }

  /**
   * receive handles one control message from the broker. The sender already applied its own
   * change, so its echo is skipped: applying it again could undo a later change made on the
   * sender in between.
   */
  receive(data: RawJSON): void {
    let parsed: unknown;
    try {
      parsed = JSON.parse(data);
    } catch {
      this.#log.warn({ bytes: data.length }, 'control message dropped: not JSON');
      return;
    }
    const result = controlMessage.safeParse(parsed);
    if (!result.success) {
      this.#log.warn({ issue: result.error.issues[0]?.message }, 'control message dropped: unknown or invalid');
      return;
    }
    if (result.data.from === this.#nodeId) return;
    this.#handle(result.data);
  }
}
