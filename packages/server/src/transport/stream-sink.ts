/**
 * Where an HTTP-streaming or SSE transport writes its body: the {@link StreamSink} contract,
 * and its sink on a Node `ServerResponse` ({@link ResponseSink}), used when the response's
 * socket could not be taken over from the HTTP server (http/takeover.ts; a taken-over socket
 * is a {@link SocketSink}, socket-sink.ts). Both write the same bytes.
 *
 * @module
 */
import type { ServerResponse } from 'node:http';

/** StreamSink is one streaming response body whose head is already sent. */
export interface StreamSink {
  /** write sends one piece of the body. */
  write(data: Buffer): void;
  /** end sends the last piece and ends the body; the connection closes once it is written. */
  end(data: Buffer): void;
  /** destroy drops the connection at once, unsent bytes included. */
  destroy(): void;
  /** destroyed is true once the connection is gone (either side). */
  readonly destroyed: boolean;
  /** Bytes accepted by write() and not yet handed to the kernel. */
  readonly writableLength: number;
  readonly remoteAddress: string;
  /** onClose calls `listener` once, when the body ended or the connection went away. */
  onClose(listener: () => void): void;
}

/** ResponseSink writes a stream through Node's ServerResponse (chunked framing by Node). */
export class ResponseSink implements StreamSink {
  readonly #res: ServerResponse;

  constructor(res: ServerResponse) {
    this.#res = res;
  }

  write(data: Buffer): void {
    this.#res.write(data);
  }

  end(data: Buffer): void {
    this.#res.end(data);
  }

  destroy(): void {
    this.#res.destroy();
  }

  get destroyed(): boolean {
    return this.#res.destroyed;
  }

  get writableLength(): number {
    return this.#res.writableLength;
  }

  get remoteAddress(): string {
    return this.#res.socket?.remoteAddress ?? '';
  }

  /** 'close' comes once: the response ended (the server closed it) or the peer went away. */
  onClose(listener: () => void): void {
    this.#res.once('close', listener);
  }
}
