/**
 * The config `bulwark start --demo` runs on when no config file is given: the embedded
 * engine, a `board` namespace for the bulletin board page, HTTP-streaming and SSE for browsers
 * behind proxies that break WebSocket, and fresh random secrets made at each start. Nothing here is a default secret: the values are random and printed.
 *
 * @module
 */
import { randomBytes } from 'node:crypto';
import type { ConfigInput } from '../config/schema.js';

/** demoConfig returns a new demo configuration with fresh secrets. */
export function demoConfig(): ConfigInput {
  return {
    client: { token: { hmac_secret_key: randomBytes(32).toString('base64url') } },
    http_api: { key: randomBytes(24).toString('base64url') },
    demo: { enabled: true },
    // The page falls back to these when a proxy breaks WebSocket.
    http_stream: { enabled: true },
    sse: { enabled: true },
    channel: {
      namespaces: [
        {
          name: 'board',
          presence: true,
          join_leave: true,
          force_push_join_leave: true,
          history_size: 50,
          history_ttl: '24h',
          force_recovery: true,
          allow_subscribe_for_client: true,
          allow_publish_for_subscriber: true,
          allow_history_for_subscriber: true,
          allow_presence_for_subscriber: true,
        },
      ],
    },
  };
}
