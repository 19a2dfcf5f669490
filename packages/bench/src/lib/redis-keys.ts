/**
 * Just enough of the Redis protocol (RESP2) for a scenario that runs Bulwark on the Redis
 * engine: check that Redis answers before starting servers (a clear error instead of nodes that
 * never turn ready), and remove the run's keys afterwards (`<prefix>.*`, which is where Bulwark
 * keeps everything under `engine.redis.prefix`). The bench has no Redis client dependency, and
 * these two jobs do not justify one.
 *
 * @module
 */
import net from 'node:net';

/** RespValue is a decoded RESP2 reply. */
export type RespValue = string | number | null | RespError | RespValue[];

/** RespError is an error reply (`-ERR …`). */
export class RespError extends Error {}

/** encodeCommand encodes a command as a RESP array of bulk strings. */
export function encodeCommand(args: readonly string[]): Buffer {
  let out = `*${args.length}\r\n`;
  for (const a of args) out += `$${Buffer.byteLength(a)}\r\n${a}\r\n`;
  return Buffer.from(out);
}

/**
 * parseResp decodes the reply starting at buf[pos]: the value and the position after it, or
 * undefined when the buffer does not yet hold all of it.
 */
export function parseResp(buf: Buffer, pos = 0): { value: RespValue; next: number } | undefined {
  const eol = buf.indexOf('\r\n', pos);
  if (eol === -1) return undefined;
  const type = String.fromCharCode(buf[pos] as number);
  const line = buf.toString('utf8', pos + 1, eol);
  const after = eol + 2;
  switch (type) {
    case '+':
      return { value: line, next: after };
    case '-':
      return { value: new RespError(line), next: after };
    case ':':
      return { value: Number(line), next: after };
    case '$': {
      const len = Number(line);
      if (len < 0) return { value: null, next: after };
      if (buf.length < after + len + 2) return undefined;
      return { value: buf.toString('utf8', after, after + len), next: after + len + 2 };
    }
    case '*': {
      const n = Number(line);
      if (n < 0) return { value: null, next: after };
      const items: RespValue[] = [];
      let p = after;
      for (let i = 0; i < n; i++) {
        const item = parseResp(buf, p);
        if (!item) return undefined;
        items.push(item.value);
        p = item.next;
      }
      return { value: items, next: p };
    }
    default:
      throw new Error(`unexpected RESP type byte ${JSON.stringify(type)}`);
  }
}

/** RedisAddress is where Redis listens, read from a `redis://host:port` URL. */
export interface RedisAddress {
  host: string;
  port: number;
}

/** parseRedisUrl reads host and port of a `redis://host[:port][/db]` URL (no auth, no TLS). */
export function parseRedisUrl(url: string): RedisAddress {
  const u = new URL(url);
  if (u.protocol !== 'redis:') throw new Error(`only redis:// URLs are supported, got ${url}`);
  return { host: u.hostname || '127.0.0.1', port: u.port ? Number(u.port) : 6379 };
}

/** A single connection sending one command at a time. */
class RedisConnection {
  private buf = Buffer.alloc(0);
  private waiting: ((v: RespValue | Error) => void) | undefined;

  private constructor(private readonly socket: net.Socket) {
    socket.on('data', (chunk: Buffer) => {
      this.buf = Buffer.concat([this.buf, chunk]);
      const r = parseResp(this.buf);
      if (!r || !this.waiting) return;
      this.buf = this.buf.subarray(r.next);
      const w = this.waiting;
      this.waiting = undefined;
      w(r.value);
    });
    socket.on('error', (err) => this.waiting?.(err));
    socket.on('close', () => this.waiting?.(new Error('Redis closed the connection')));
  }

  static open(addr: RedisAddress, timeoutMs: number): Promise<RedisConnection> {
    return new Promise((resolve, reject) => {
      const socket = net.connect({ host: addr.host, port: addr.port });
      const timer = setTimeout(() => {
        socket.destroy();
        reject(new Error(`no connection to Redis at ${addr.host}:${addr.port} in ${timeoutMs} ms`));
      }, timeoutMs);
      socket.once('connect', () => {
        clearTimeout(timer);
        resolve(new RedisConnection(socket));
      });
      socket.once('error', (err) => {
        clearTimeout(timer);
        reject(new Error(`Redis at ${addr.host}:${addr.port}: ${err.message}`));
      });
    });
  }

  command(args: readonly string[], timeoutMs = 5000): Promise<RespValue> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`Redis ${args[0]}: no reply in ${timeoutMs} ms`)), timeoutMs);
      this.waiting = (v) => {
        clearTimeout(timer);
        if (v instanceof Error) reject(v);
        else resolve(v);
      };
      this.socket.write(encodeCommand(args));
    });
  }

  close(): void {
    this.socket.destroy();
  }
}

/** redisPing resolves when Redis at `url` answers PING, or rejects saying why not. */
export async function redisPing(url: string, timeoutMs = 2000): Promise<void> {
  const conn = await RedisConnection.open(parseRedisUrl(url), timeoutMs);
  try {
    const reply = await conn.command(['PING'], timeoutMs);
    if (reply !== 'PONG') throw new Error(`Redis at ${url} answered PING with ${String(reply)}`);
  } finally {
    conn.close();
  }
}

/** deleteKeysWithPrefix removes every key `<prefix>.*` with SCAN + UNLINK; resolves to how many. */
export async function deleteKeysWithPrefix(url: string, prefix: string): Promise<number> {
  if (prefix.length < 8 || /[*?[\]]/.test(prefix)) throw new Error(`refusing to delete keys under "${prefix}"`);
  const conn = await RedisConnection.open(parseRedisUrl(url), 2000);
  let removed = 0;
  try {
    let cursor = '0';
    do {
      const reply = await conn.command(['SCAN', cursor, 'MATCH', `${prefix}.*`, 'COUNT', '1000']);
      if (!Array.isArray(reply) || typeof reply[0] !== 'string' || !Array.isArray(reply[1])) {
        throw new Error(`unexpected SCAN reply: ${JSON.stringify(reply)}`);
      }
      cursor = reply[0];
      const keys = reply[1].filter((k): k is string => typeof k === 'string');
      if (keys.length > 0) {
        const n = await conn.command(['UNLINK', ...keys]);
        if (typeof n === 'number') removed += n;
      }
    } while (cursor !== '0');
  } finally {
    conn.close();
  }
  return removed;
}
