/**
 * A streaming response body written straight to its socket, once the socket was taken over
 * from Node's HTTP server after the head (http/takeover.ts says why). The framing is what
 * Node's ServerResponse writes: each piece one chunk (`<hex length>\r\n<bytes>\r\n`), the end
 * `0\r\n\r\n` (RFC 9112 §7.1); a response without chunked encoding (an HTTP/1.0 client) is the
 * bytes as they are, ended by closing the connection. Either way the connection closes when
 * the body ends, as Node closes a `Connection: close` response's: it is written, then the
 * socket is destroyed, freeing its descriptor at once.
 *
 * The client sends nothing on a stream's connection after its request (commands go to
 * /emulation): bytes that arrive anyway, or the client closing its side, end the stream; a
 * socket error does too, without being thrown. No closure is made per connection: the
 * socket's listeners are shared functions.
 *
 * @module
 */
import type { Socket } from 'node:net';
import type { StreamSink } from './stream-sink.js';

const crlf = Buffer.from('\r\n');
const lastChunk = Buffer.from('0\r\n\r\n');

/** Bytes from the client after its request, or its end of the connection: the stream ends. */
function onClientInput(this: Socket): void {
  this.destroy();
}

/** A socket error closes the socket ('close' follows); the stream's session learns it from that. */
function ignoreError(): void {}

/** destroyAfterEnd frees the descriptor once the last bytes are written (or writing failed). */
function destroyAfterEnd(this: Socket): void {
  this.destroy();
}

/** chunk frames `data` as one chunk of a chunked body, in one buffer (one write). */
function chunk(data: Buffer): Buffer {
  const size = data.length.toString(16);
  const out = Buffer.allocUnsafe(size.length + data.length + 4);
  let at = out.write(size, 0, 'latin1');
  at += crlf.copy(out, at);
  at += data.copy(out, at);
  crlf.copy(out, at);
  return out;
}

/** SocketSink writes a stream's body to a socket taken over from the HTTP server. */
export class SocketSink implements StreamSink {
  readonly #socket: Socket;
  readonly #chunked: boolean;

  /** @param chunked the head announced `Transfer-Encoding: chunked` (else the body ends with the connection). */
  constructor(socket: Socket, chunked: boolean) {
    this.#socket = socket;
    this.#chunked = chunked;
    socket.on('error', ignoreError);
    socket.on('end', onClientInput);
    socket.on('data', onClientInput);
    // The HTTP server may have paused it (a response still draining when the request came):
    // a socket that is not read never learns that its client went away.
    socket.resume();
  }

  write(data: Buffer): void {
    // An empty chunk would be the last one: nothing to write.
    if (data.length === 0 || !this.#socket.writable) return;
    this.#socket.write(this.#chunked ? chunk(data) : data);
  }

  end(data: Buffer): void {
    const socket = this.#socket;
    if (!socket.writable) return;
    if (this.#chunked) socket.end(data.length === 0 ? lastChunk : Buffer.concat([chunk(data), lastChunk]));
    else socket.end(data);
    socket.once('finish', destroyAfterEnd);
  }

  destroy(): void {
    this.#socket.destroy();
  }

  get destroyed(): boolean {
    return this.#socket.destroyed;
  }

  get writableLength(): number {
    return this.#socket.writableLength;
  }

  get remoteAddress(): string {
    return this.#socket.remoteAddress ?? '';
  }

  onClose(listener: () => void): void {
    this.#socket.once('close', listener);
  }
}
