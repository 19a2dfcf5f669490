/**
 * The client side of RFC 6455 framing, by hand, for the raw-socket reader
 * ({@link RawWebSocket}): a parser of the unmasked frames a server sends and an encoder of the
 * masked frames a client must send.
 *
 * Why by hand and not `ws`: the fan-out load generator must consume hundreds of thousands of
 * deliveries per second on one core, and `ws`'s per-message work (a Receiver stream per socket,
 * a Buffer copy or concat per message, an event emit with a fresh Buffer, UTF-8 checks, close and
 * ping bookkeeping) is exactly the overhead that made the generator, not the server, the
 * bottleneck (issue 18). This parser hands each complete message to its callback as a byte
 * range of the TCP chunk it arrived in — no copy, no allocation — and copies only what it must:
 * a frame split across chunks (the pieces are copied and joined once, when the frame is
 * complete) and a fragmented message (its fragments are copied and joined at the final one). It
 * keeps no reference to a chunk after `push` returns, so the caller may read every socket into
 * one reused buffer (net's `onread`).
 *
 * What it does not do, because the bench's servers never need it: extensions (no
 * permessage-deflate is negotiated, so RSV bits must be 0), UTF-8 validation (the servers are
 * trusted; `ws` is run with skipUTF8Validation in the bench too), and messages over 64 MiB.
 *
 * @module
 */
import { createHash, randomFillSync } from 'node:crypto';

/** Opcodes of RFC 6455 §5.2. */
export const OP = { continuation: 0, text: 1, binary: 2, close: 8, ping: 9, pong: 10 } as const;

/** The largest message accepted (a bench push is a few hundred bytes; a page of history, KiBs). */
export const MAX_MESSAGE_BYTES = 64 * 1024 * 1024;

/** FrameEvents receive what a {@link FrameReader} parses. */
export interface FrameEvents {
  /**
   * A complete text or binary message in buf[start…end), valid only during the call (the
   * caller may reuse the chunk's memory afterwards); the reader never writes to it.
   */
  onMessage(binary: boolean, buf: Buffer, start: number, end: number): void;
  /** A ping with its payload (valid during the call): the client must answer with a pong carrying it. */
  onPing(payload: Buffer): void;
  /** A close frame: its code (1005 when it carries none) and reason. */
  onClose(code: number, reason: string): void;
  /** A protocol violation: the caller should fail the connection (close 1002). */
  onError(message: string): void;
}

/**
 * FrameReader parses the server → client byte stream into messages. Feed it every TCP chunk in
 * order with {@link FrameReader.push}; many frames per chunk and frames split across chunks are
 * both handled.
 */
export class FrameReader {
  /** Chunks of an incomplete frame, not yet joined; `held` is their total length. */
  private pending: Buffer[] = [];
  private held = 0;
  /** Bytes the incomplete frame needs in all (header + payload), 0 when its header is incomplete. */
  private need = 0;
  /** Fragments of a message whose final frame has not arrived, and its opcode. */
  private fragments: Buffer[] = [];
  private fragmentBytes = 0;
  private fragmentBinary = false;
  /** Set after a close frame or a protocol error: everything after is ignored. */
  private done = false;

  constructor(private readonly ev: FrameEvents) {}

  /** push parses one chunk of the stream, chunk[start…end). */
  push(chunk: Buffer, start = 0, end = chunk.length): void {
    if (this.done) return;
    if (this.held === 0) {
      this.parse(chunk, start, end);
      return;
    }
    // The pieces of a frame that straddles chunks are joined once, when the frame is complete
    // (or, while its header is incomplete, at once: then fewer than 10 bytes are held).
    this.pending.push(Buffer.from(chunk.subarray(start, end)));
    this.held += end - start;
    if (this.need > 0 && this.held < this.need) return;
    const joined = Buffer.concat(this.pending, this.held);
    this.pending = [];
    this.held = 0;
    this.parse(joined, 0, joined.length);
  }

  /** Parses every complete frame of buf[pos…n); keeps (a copy of) the incomplete rest for the next chunk. */
  private parse(buf: Buffer, pos: number, n: number): void {
    // Bytes the incomplete frame at `pos` needs in all; 0 while its header is incomplete.
    let need = 0;
    while (pos < n && !this.done) {
      if (n - pos < 2) break;
      const b0 = buf[pos] as number;
      const b1 = buf[pos + 1] as number;
      let len = b1 & 0x7f;
      let hdr = 2;
      if (len === 126) {
        if (n - pos < 4) break;
        len = buf.readUInt16BE(pos + 2);
        hdr = 4;
      } else if (len === 127) {
        if (n - pos < 10) break;
        const hi = buf.readUInt32BE(pos + 2);
        if (hi !== 0) return this.fail('frame longer than 4 GiB');
        len = buf.readUInt32BE(pos + 6);
        hdr = 10;
      }
      if ((b1 & 0x80) !== 0) return this.fail('masked frame from the server');
      if ((b0 & 0x70) !== 0) return this.fail('RSV bits set without a negotiated extension');
      if (len > MAX_MESSAGE_BYTES) return this.fail(`frame of ${len} bytes`);
      const end = pos + hdr + len;
      if (end > n) {
        need = hdr + len;
        break;
      }
      this.frame(b0, buf, pos + hdr, end);
      pos = end;
    }
    if (pos < n && !this.done) {
      const rest = Buffer.from(buf.subarray(pos, n));
      this.pending = [rest];
      this.held = rest.length;
      this.need = need;
    }
  }

  /** Handles one complete frame whose payload is buf[start…end). */
  private frame(b0: number, buf: Buffer, start: number, end: number): void {
    const fin = (b0 & 0x80) !== 0;
    const op = b0 & 0x0f;
    if (op >= 8) {
      if (!fin || end - start > 125) return this.fail('fragmented or long control frame');
      if (op === OP.ping) this.ev.onPing(Buffer.from(buf.subarray(start, end)));
      else if (op === OP.close) {
        this.done = true;
        const code = end - start >= 2 ? buf.readUInt16BE(start) : 1005;
        this.ev.onClose(code, end - start > 2 ? buf.toString('utf8', start + 2, end) : '');
      } else if (op !== OP.pong) this.fail(`unknown control opcode ${op}`);
      return;
    }
    if (op === OP.continuation) {
      if (this.fragments.length === 0) return this.fail('continuation frame without a message');
      this.addFragment(buf, start, end);
      if (fin) {
        const whole = Buffer.concat(this.fragments, this.fragmentBytes);
        this.fragments = [];
        this.fragmentBytes = 0;
        this.ev.onMessage(this.fragmentBinary, whole, 0, whole.length);
      }
      return;
    }
    if (op !== OP.text && op !== OP.binary) return this.fail(`unknown opcode ${op}`);
    if (this.fragments.length > 0) return this.fail('new message inside a fragmented one');
    if (fin) {
      // The hot path: one whole message, handed over in place.
      this.ev.onMessage(op === OP.binary, buf, start, end);
      return;
    }
    this.fragmentBinary = op === OP.binary;
    this.addFragment(buf, start, end);
  }

  private addFragment(buf: Buffer, start: number, end: number): void {
    this.fragmentBytes += end - start;
    if (this.fragmentBytes > MAX_MESSAGE_BYTES) return this.fail(`message over ${MAX_MESSAGE_BYTES} bytes`);
    // A copy: the chunk's memory may be reused once push returns.
    this.fragments.push(Buffer.from(buf.subarray(start, end)));
  }

  private fail(message: string): void {
    this.done = true;
    this.pending = [];
    this.held = 0;
    this.ev.onError(message);
  }
}

/** Random bytes for masking keys, refilled in blocks (one syscall per 1024 frames). */
const maskPool = Buffer.alloc(4096);
let maskPos = maskPool.length;

/**
 * encodeClientFrame builds one final client → server frame (RFC 6455 §5.3: every client frame
 * is masked with a fresh random key) of `opcode` carrying `payload`.
 */
export function encodeClientFrame(opcode: number, payload: Buffer): Buffer {
  const len = payload.length;
  const hdr = len < 126 ? 2 : len < 65_536 ? 4 : 10;
  const out = Buffer.allocUnsafe(hdr + 4 + len);
  out[0] = 0x80 | opcode;
  if (hdr === 2) out[1] = 0x80 | len;
  else if (hdr === 4) {
    out[1] = 0x80 | 126;
    out.writeUInt16BE(len, 2);
  } else {
    out[1] = 0x80 | 127;
    out.writeUInt32BE(Math.floor(len / 2 ** 32), 2);
    out.writeUInt32BE(len >>> 0, 6);
  }
  if (maskPos + 4 > maskPool.length) {
    randomFillSync(maskPool);
    maskPos = 0;
  }
  maskPool.copy(out, hdr, maskPos, maskPos + 4);
  maskPos += 4;
  for (let i = 0; i < len; i++) out[hdr + 4 + i] = (payload[i] as number) ^ (out[hdr + (i & 3)] as number);
  return out;
}

/** The GUID of RFC 6455 §1.3 that the server appends to the key before hashing. */
const WS_GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';

/** acceptFor is the `Sec-WebSocket-Accept` a server must answer to `Sec-WebSocket-Key: key`. */
export function acceptFor(key: string): string {
  return createHash('sha1')
    .update(key + WS_GUID)
    .digest('base64');
}
