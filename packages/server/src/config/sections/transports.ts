/**
 * The HTTP-based transports' sections of the config, with Centrifugo v6's names and defaults:
 * bidirectional emulation over HTTP-streaming (`http_stream`) and Server-Sent Events (`sse`),
 * the endpoint that takes their clients' later commands (`emulation`), and the unidirectional
 * `uni_http_stream` and `uni_sse`. Every transport is off by default, as in Centrifugo.
 *
 * @module
 */
import { z } from 'zod';

/** bodySize is a `max_request_body_size` key: bytes, Centrifugo's 64 KiB by default. */
function bodySize(what: string) {
  return z.number().int().min(256).default(65_536).describe(`Largest ${what} in bytes; a larger one is answered 413.`);
}

/** httpStreamSection is the `http_stream` section. */
export const httpStreamSection = z
  .strictObject({
    enabled: z
      .boolean()
      .default(false)
      .describe(
        "Serve HTTP-streaming with bidirectional emulation at /connection/http_stream (JSON and Protobuf; the JavaScript SDK's `http_stream` transport), and the /emulation endpoint its clients send commands to.",
      ),
    max_request_body_size: bodySize('HTTP-streaming connect request body (the POST that opens the stream)'),
  })
  .prefault({});

/** sseSection is the `sse` section. */
export const sseSection = z
  .strictObject({
    enabled: z
      .boolean()
      .default(false)
      .describe(
        "Serve Server-Sent Events with bidirectional emulation at /connection/sse (JSON; the JavaScript SDK's `sse` transport), and the /emulation endpoint its clients send commands to.",
      ),
    max_request_body_size: bodySize(
      'SSE connect request body when the stream opens with POST (browsers open it with GET and the `cf_connect` URL parameter)',
    ),
  })
  .prefault({});

/** emulationSection is the `emulation` section. */
export const emulationSection = z
  .strictObject({
    max_request_body_size: bodySize('/emulation request body (the commands of one HTTP-streaming or SSE client)'),
  })
  .prefault({});

/** uniHttpStreamSection is the `uni_http_stream` section. */
export const uniHttpStreamSection = z
  .strictObject({
    enabled: z
      .boolean()
      .default(false)
      .describe(
        'Serve unidirectional HTTP-streaming at /connection/uni_http_stream: POST a connect request (JSON), receive newline-delimited JSON pushes.',
      ),
    max_request_body_size: bodySize('unidirectional HTTP-streaming connect request body'),
  })
  .prefault({});

/** uniSseSection is the `uni_sse` section. */
export const uniSseSection = z
  .strictObject({
    enabled: z
      .boolean()
      .default(false)
      .describe(
        'Serve unidirectional Server-Sent Events at /connection/uni_sse: the connect request in the `cf_connect` URL parameter (GET, as EventSource sends) or the body (POST), pushes as `data:` events.',
      ),
    max_request_body_size: bodySize('unidirectional SSE connect request body when it opens with POST'),
  })
  .prefault({});
