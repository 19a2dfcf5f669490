/**
 * Checks of the channel a client command names, as Centrifugo makes them for clients: an SDK
 * never sends a channel command without a channel, so a client that does is broken and is closed
 * with 3501 (as the centrifuge library closes it) instead of being told 107 and carrying on; and
 * a non-ASCII name is 107 where no channel_regex says what is allowed.
 *
 * @module
 */
import type { ChannelRules, ResolvedChannel } from '../channel-rules.js';
import type { Command } from '../protocol/types.js';
import { DisconnectCode, DisconnectError, ErrorCode, ProtocolError, disconnect } from '../protocol/codes.js';

/** requireChannel closes the connection with 3501 when a channel command names no channel. */
export function requireChannel(channel: string): void {
  if (channel === '') throw new DisconnectError(disconnect(DisconnectCode.BadRequest));
}

/**
 * resolveClientChannel resolves a channel a client names (ChannelRules.resolve) and refuses with
 * 107, as Centrifugo does for clients, a non-ASCII name in a namespace without channel_regex.
 */
export function resolveClientChannel(
  rules: Pick<ChannelRules, 'resolve' | 'clientNameAllowed'>,
  channel: string,
): ResolvedChannel {
  const rc = rules.resolve(channel);
  if (!rules.clientNameAllowed(rc)) {
    throw new ProtocolError(ErrorCode.BadRequest, 'bad request: a non-ASCII channel name needs a channel_regex');
  }
  return rc;
}

/**
 * outOfOrder tells whether a command breaks the protocol's order, which Centrifugo answers by
 * closing with 3501: anything but connect before connect, a second connect, or a command other
 * than `send` without an id (its reply could not be matched; the SDK never sends one).
 */
export function outOfOrder(connecting: boolean, cmd: Command): boolean {
  return connecting !== (cmd.method === 'connect') || (cmd.id === 0 && cmd.method !== 'send');
}
