/**
 * Checks of a command's fields that Centrifugo answers with a disconnect rather than an error:
 * an SDK never sends a channel command without a channel, so a client that does is broken, and
 * is closed with 3501 as Centrifugo (the centrifuge library) closes it, instead of being told 107
 * and carrying on.
 *
 * @module
 */
import { DisconnectCode, DisconnectError, disconnect } from '../protocol/codes.js';

/** requireChannel closes the connection with 3501 when a channel command names no channel. */
export function requireChannel(channel: string): void {
  if (channel === '') throw new DisconnectError(disconnect(DisconnectCode.BadRequest));
}
