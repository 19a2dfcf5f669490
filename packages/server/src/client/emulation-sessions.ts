/**
 * The emulation sessions of one node: the HTTP-streaming and SSE connections, by the session
 * id their clients send in every /emulation request. A request (or a relayed one from another
 * node, cluster/control.ts) hands its commands to the session here, as a WebSocket message
 * would be handed to its session.
 *
 * Session ids are 128 random bits, never the client id: client ids are public (presence,
 * join/leave), and whoever knows a session id can send commands as its connection.
 *
 * @module
 */
import { randomBytes } from 'node:crypto';

/** EmulationTarget is a session that takes the commands of emulation requests. */
export interface EmulationTarget {
  /** handleFrame takes one frame of commands in the connection's format. */
  handleFrame(frame: Buffer): void;
}

/** newSessionId makes an unguessable emulation session id (128 random bits, base64url). */
export function newSessionId(): string {
  return randomBytes(16).toString('base64url');
}

/** EmulationSessions indexes this node's emulation sessions by session id. */
export class EmulationSessions {
  readonly #sessions = new Map<string, EmulationTarget>();

  /** size is the number of emulation sessions open on this node. */
  get size(): number {
    return this.#sessions.size;
  }

  /** add registers a session under `id` until {@link remove}. */
  add(id: string, target: EmulationTarget): void {
    this.#sessions.set(id, target);
  }

  /** remove forgets session `id` (its stream ended). */
  remove(id: string): void {
    this.#sessions.delete(id);
  }

  /**
   * deliver hands `frame` to session `id`; false when this node holds no such session (it
   * closed, or never was here), and the frame is dropped.
   */
  deliver(id: string, frame: Buffer): boolean {
    const target = this.#sessions.get(id);
    if (target === undefined) return false;
    target.handleFrame(frame);
    return true;
  }
}
