/**
 * The Server-Sent Events transport (`/connection/sse` with bidirectional emulation, and
 * `/connection/uni_sse`), JSON only: every protocol message is one event, `data: <json>` and a
 * blank line, so an EventSource hands each message to its `message` listener alone (the write
 * queue hands over a flush's messages unjoined, and each becomes an event). JSON text never
 * holds a raw newline, so a message is always one `data:` line.
 *
 * Everything else — closing with a disconnect push, the close timeout, backpressure — is the
 * HTTP-streaming transport's.
 *
 * @module
 */
import { HttpStreamTransport } from './transport-http-stream.js';

const prefix = Buffer.from('data: ');
const eventEnd = Buffer.from('\n\n');
const blankLine = Buffer.from('\r\n');

/** SseTransport adapts one event-stream response to the Transport contract. */
export class SseTransport extends HttpStreamTransport {
  /** start writes the first bytes of the stream (a blank line), so proxies and clients see it open. */
  start(): void {
    this.sink.write(blankLine);
  }

  protected override encode(messages: readonly Buffer[]): Buffer {
    const parts: Buffer[] = [];
    for (const m of messages) parts.push(prefix, m, eventEnd);
    return Buffer.concat(parts);
  }
}
