/**
 * A lean keep-alive HTTP/1.1 client connection on a plain TCP socket, for the api-publish
 * scenario's closed loop: one request at a time (the next one is written when the reply has
 * arrived), the request written whole in one `write`, the reply framed by its Content-Length.
 *
 * Why not `node:http`'s client: at tens of thousands of requests a second its per-request
 * machinery (an OutgoingMessage, an IncomingMessage, the llhttp parser callbacks, header
 * objects) costs the load generator more CPU than the floor server spends answering, and the
 * load generator shares its one core with nothing else to spare: it would measure itself.
 * This client does what a benchmark client such as wrk does: a pre-built request text, and a
 * reply parsed only as far as status line, framing (Content-Length, or chunked as Node's
 * `http` sends a body written after `writeHead`) and body. A reply it cannot frame (neither,
 * a malformed chunk, bytes nobody asked for) fails the request and closes the connection, so
 * it is counted as an error, never misread.
 *
 * @module
 */
import net from 'node:net';

/** HttpReply is a reply as far as this client reads it. */
export interface HttpReply {
  status: number;
  body: string;
}

/** ReplyCallback receives a request's reply, or why there is none. */
export type ReplyCallback = (err: Error | undefined, reply: HttpReply | undefined) => void;

/** Longest reply head accepted: past it the peer is not answering like an API server. */
const MAX_HEAD_BYTES = 16 * 1024;
const HEAD_END = Buffer.from('\r\n\r\n');
const CONTENT_LENGTH = /\r\ncontent-length:[ \t]*(\d+)/i;
const CHUNKED = /\r\ntransfer-encoding:[ \t]*chunked/i;
const CRLF = Buffer.from('\r\n');

/**
 * decodeChunked reads a chunked body starting at `from` in `buf`: its text and where it ends
 * (after the last chunk and the trailers), `incomplete` when more bytes must come first, or
 * `malformed`.
 */
export function decodeChunked(buf: Buffer, from: number): { body: string; end: number } | 'incomplete' | 'malformed' {
  const parts: Buffer[] = [];
  let pos = from;
  for (;;) {
    const lineEnd = buf.indexOf(CRLF, pos);
    if (lineEnd === -1) return buf.length - pos > 64 ? 'malformed' : 'incomplete';
    // The size in hex, maybe followed by extensions (";name=value"), which say nothing we need.
    const sizeText = buf.toString('latin1', pos, lineEnd).split(';', 1)[0]?.trim() ?? '';
    if (!/^[0-9a-f]+$/i.test(sizeText)) return 'malformed';
    const size = parseInt(sizeText, 16);
    if (size === 0) {
      // The last chunk, then trailer lines (usually none), then an empty line.
      if (buf.length < lineEnd + 4) return 'incomplete';
      if (buf[lineEnd + 2] === 13 && buf[lineEnd + 3] === 10) {
        return { body: Buffer.concat(parts).toString('utf8'), end: lineEnd + 4 };
      }
      const trailersEnd = buf.indexOf(HEAD_END, lineEnd);
      if (trailersEnd === -1) return 'incomplete';
      return { body: Buffer.concat(parts).toString('utf8'), end: trailersEnd + HEAD_END.length };
    }
    const dataStart = lineEnd + CRLF.length;
    const dataEnd = dataStart + size;
    if (buf.length < dataEnd + CRLF.length) return 'incomplete';
    if (buf[dataEnd] !== 13 || buf[dataEnd + 1] !== 10) return 'malformed';
    parts.push(buf.subarray(dataStart, dataEnd));
    pos = dataEnd + CRLF.length;
  }
}

/**
 * requestHead is the head of a POST request up to and without its Content-Length line, to be
 * completed by {@link postRequest}: built once per run, so a request costs one concatenation.
 */
export function requestHead(path: string, hostPort: string, headers: Record<string, string>): string {
  const extra = Object.entries(headers)
    .map(([k, v]) => `${k}: ${v}\r\n`)
    .join('');
  return `POST ${path} HTTP/1.1\r\nHost: ${hostPort}\r\n${extra}`;
}

/** postRequest is the whole request text: `head` (see {@link requestHead}), Content-Length, body. */
export function postRequest(head: string, body: string): string {
  return `${head}Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`;
}

/** KeepAliveConnection is one keep-alive connection with at most one request in flight. */
export class KeepAliveConnection {
  /** Set once the socket closed (by either side); every later request fails at once. */
  closed = false;
  /** Why the connection closed, if not by {@link KeepAliveConnection.close}. */
  closeReason: string | undefined;

  private pending: ReplyCallback | undefined;
  /** Bytes of a reply received so far, when it came in several chunks. */
  private partial: Buffer | undefined;

  private constructor(private readonly socket: net.Socket) {
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('error', (err) => this.fail(err.message));
    socket.on('close', () => this.fail('connection closed by the server'));
  }

  /** connect opens a connection to `host`:`port`; rejects if it cannot within `timeoutMs`. */
  static connect(port: number, host = '127.0.0.1', timeoutMs = 5000): Promise<KeepAliveConnection> {
    return new Promise((resolve, reject) => {
      const socket = net.connect({ port, host });
      const timer = setTimeout(() => socket.destroy(new Error(`connect: no answer in ${timeoutMs} ms`)), timeoutMs);
      socket.once('error', (err) => {
        clearTimeout(timer);
        reject(err);
      });
      socket.once('connect', () => {
        clearTimeout(timer);
        socket.removeAllListeners('error');
        resolve(new KeepAliveConnection(socket));
      });
    });
  }

  /** busy says whether a request is waiting for its reply. */
  get busy(): boolean {
    return this.pending !== undefined;
  }

  /**
   * send writes `request` (a whole request text, see {@link postRequest}) and calls `done` once
   * with its reply or an error. Throws if a request is already in flight: the closed loop never
   * pipelines, and a caller that tries to has a bug.
   */
  send(request: string, done: ReplyCallback): void {
    if (this.pending) throw new Error('a request is already in flight on this connection');
    if (this.closed) {
      done(new Error(this.closeReason ?? 'connection closed'), undefined);
      return;
    }
    this.pending = done;
    this.socket.write(request);
  }

  /** close destroys the socket; a request in flight fails. */
  close(): void {
    this.fail('closed by the load generator');
    this.socket.destroy();
  }

  private onData(chunk: Buffer): void {
    const buf = this.partial ? Buffer.concat([this.partial, chunk]) : chunk;
    this.partial = undefined;
    const headEnd = buf.indexOf(HEAD_END);
    if (headEnd === -1) {
      if (buf.length > MAX_HEAD_BYTES) this.protocolError(`reply head longer than ${MAX_HEAD_BYTES} bytes`);
      else this.partial = buf;
      return;
    }
    const head = buf.toString('latin1', 0, headEnd);
    const bodyStart = headEnd + HEAD_END.length;
    const length = CONTENT_LENGTH.exec(head);
    let body: string;
    let end: number;
    if (length) {
      end = bodyStart + Number(length[1]);
      if (buf.length < end) {
        this.partial = buf;
        return;
      }
      body = buf.toString('utf8', bodyStart, end);
    } else if (CHUNKED.test(head)) {
      const chunked = decodeChunked(buf, bodyStart);
      if (chunked === 'incomplete') {
        this.partial = buf;
        return;
      }
      if (chunked === 'malformed') {
        this.protocolError('malformed chunked reply');
        return;
      }
      ({ body, end } = chunked);
    } else {
      this.protocolError(`reply without Content-Length or chunked body: ${head.split('\r\n', 1)[0] ?? ''}`);
      return;
    }
    if (buf.length > end) {
      this.protocolError(`${buf.length - end} bytes after the reply, unasked for`);
      return;
    }
    // "HTTP/1.1 200 OK": the status is the three digits after the first space.
    const status = Number(head.slice(9, 12));
    const done = this.pending;
    this.pending = undefined;
    if (!done) {
      this.protocolError('a reply without a request');
      return;
    }
    done(undefined, { status, body });
  }

  /** protocolError fails the request in flight and closes: the stream can no longer be framed. */
  private protocolError(why: string): void {
    this.fail(why);
    this.socket.destroy();
  }

  private fail(why: string): void {
    if (!this.closed) {
      this.closed = true;
      this.closeReason = why;
    }
    const done = this.pending;
    this.pending = undefined;
    done?.(new Error(why), undefined);
  }
}
