/**
 * Checks of the channel a client command names, as Centrifugo makes them for clients: an SDK
 * never sends a channel command without a channel, so a client that does is broken and is closed
 * with 3501 (as the centrifuge library closes it) instead of being told 107 and carrying on; and
 * a non-ASCII name is 107 where no channel_regex says what is allowed.
 *
 * @module
 */
import type { ChannelRules, ResolvedChannel } from '../channel-rules.js';
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
