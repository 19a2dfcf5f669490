/**
 * The error a client gets from a kill switch: 108 (not available) with the operator's reason.
 * Not temporary on purpose: a switch is turned off by a person, not by time, and a client
 * told to retry would keep hammering the feature the switch protects (incident 4).
 *
 * @module
 */
import { ErrorCode, ProtocolError } from '../protocol/codes.js';
import type { KillSwitch } from './kill-switches.js';

/** killSwitchError is the reply error for a command refused by `sw`. */
export function killSwitchError(sw: KillSwitch): ProtocolError {
  return new ProtocolError(ErrorCode.NotAvailable, `disabled: ${sw.reason}`, false);
}
