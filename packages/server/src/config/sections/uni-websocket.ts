/**
 * The `uni_websocket` section of the config: Centrifugo's unidirectional WebSocket transport
 * (`/connection/uni_websocket`), where a client without an SDK sends one connect request and
 * then only receives pushes. Keys are named as in Centrifugo v6.
 *
 * @module
 */
import { z } from 'zod';

/** uniWebsocketSection is the `uni_websocket` section. */
export const uniWebsocketSection = z
  .strictObject({
    enabled: z
      .boolean()
      .default(false)
      .describe('Serve the unidirectional WebSocket endpoint at /connection/uni_websocket (404 while off).'),
    message_size_limit: z
      .number()
      .int()
      .min(256)
      .default(65_536)
      .describe(
        'Largest message a unidirectional WebSocket client may send, in bytes (its first message is the connect request); larger closes with 1009.',
      ),
    compression: z
      .boolean()
      .default(false)
      .describe('permessage-deflate on unidirectional WebSocket connections; costs CPU per message, off by default.'),
    join_push_messages: z
      .boolean()
      .default(false)
      .describe(
        'Join the pushes written together into one WebSocket message, separated by newlines (the client must split them). Off: one push per WebSocket message.',
      ),
    disable_disconnect_push: z
      .boolean()
      .default(false)
      .describe('Do not send the `disconnect` push before closing; the close frame still carries the code and reason.'),
  })
  .prefault({});
