/**
 * The connections-scale verdict: every connection made and held, RSS per connection and handshake
 * p99 within the limits.
 *
 * @module
 */
import { check, type Check } from '../../harness/scenario.js';
import { round } from '../../harness/util.js';
import { PING_INTERVAL_SECONDS } from './options.js';
import { type ConnectionsScaleResult, type ConnectionsScaleLimits } from './types.js';

/** perConnection is (after − before) / connections, rounded; NaN without connections. */
export function perConnection(before: number, after: number, connections: number): number {
  return connections > 0 ? Math.round((after - before) / connections) : Number.NaN;
}

/**
 * judgeConnectionsScale turns a result into the verdicts: every connection established, none
 * closed during the idle hold, server memory per connection and handshake p99 within the
 * limits, and — when the hold outlasts the server's ping interval — every connection answered
 * a ping (it really is alive, not a half-open socket).
 */
export function judgeConnectionsScale(
  r: ConnectionsScaleResult,
  limits: ConnectionsScaleLimits,
  pingIntervalSeconds = PING_INTERVAL_SECONDS,
): Check[] {
  const checks = [
    check('connections established', r.connected, '==', r.requested, 'conns'),
    check(
      'established connections closed before the end of the hold',
      r.hold.closedDuring + r.hold.closedBefore,
      '==',
      0,
      'conns',
    ),
    check(
      'server RSS per idle connection (process tree)',
      round(r.server.rssPerConnectionBytes / 1024, 2),
      '<=',
      limits.rssPerConnectionKiB,
      'KiB',
    ),
    check('handshake p99 (open → subscribed)', r.handshakeMs.p99, '<=', limits.handshakeP99Ms, 'ms'),
  ];
  if (r.hold.seconds >= pingIntervalSeconds + 3) {
    checks.push(check('connections that answered a server ping', r.hold.pinged, '==', r.connected, 'conns'));
  }
  return checks;
}
