/**
 * Just enough Redis for the bench to clean up after itself: check that Redis answers, and
 * delete the keys a run left under its unique prefix (Bulwark's Redis engine and shared cache
 * tier write under `engine.redis.prefix`). A few RESP commands over one socket; the bench has
 * no Redis client dependency and needs none for this.
 *
 * @module
 */
import net from 'node:net';

/** RespValue is a decoded RESP2 reply (an error reply becomes an Error value). */
export type RespValue = string | number | null | Error | RespValue[];

/** RespParse is a value and the offset just past it. */
export interface RespParse {
  value: RespValue;
  next: number;
}

/**
 * parseResp decodes one RESP2 value at `buf[pos…]`: simple string, error, integer, bulk string
 * (null for `$-1`) or array (null for `*-1`). Returns undefined when the buffer ends before the
 * value does (wait for more bytes); throws on a byte that starts no RESP value.
 */
export function parseResp(buf: Buffer, pos = 0): RespParse | undefined {
  if (pos >= buf.length) return undefined;
  const eol = buf.indexOf('\r\n', pos);
  if (eol === -1) return undefined;
  const type = String.fromCharCode(buf[pos] as number);
  const line = buf.toString('utf8', pos + 1, eol);
  const after = eol + 2;
  switch (type) {
    case '+':
      return { value: line, next: after };
    case '-':
      return { value: new Error(line), next: after };
    case ':':
      return { value: Number(line), next: after };
    case '$': {
      const len = Number(line);
      if (len < 0) return { value: null, next: after };
      if (buf.length < after + len + 2) return undefined;
      return { value: buf.toString('utf8', after, after + len), next: after + len + 2 };
    }
    case '*': {
      const count = Number(line);
      if (count < 0) return { value: null, next: after };
      const items: RespValue[] = [];
      let next = after;
      for (let i = 0; i < count; i++) {
        const item = parseResp(buf, next);
        if (item === undefined) return undefined;
        items.push(item.value);
        next = item.next;
      }
      return { value: items, next };
    }
    default:
      throw new Error(`not a RESP reply (byte ${JSON.stringify(type)} at ${pos})`);
  }
}

/** encodeCommand encodes a command as a RESP array of bulk strings. */
export function encodeCommand(args: readonly string[]): string {
  return `*${args.length}\r\n${args.map((a) => `$${Buffer.byteLength(a)}\r\n${a}\r\n`).join('')}`;
}

/** MiniRedis sends commands one after another over one connection. */
class MiniRedis {
  private buf: Buffer = Buffer.alloc(0);
  private waiting: Array<(v: RespValue) => void> = [];
  private failure: Error | undefined;

  private constructor(private readonly socket: net.Socket) {
    socket.on('data', (chunk: Buffer) => {
      this.buf = this.buf.length === 0 ? chunk : Buffer.concat([this.buf, chunk]);
      for (;;) {
        const parsed = parseResp(this.buf);
        if (parsed === undefined) break;
        this.buf = this.buf.subarray(parsed.next);
        this.waiting.shift()?.(parsed.value);
      }
    });
    const fail = (err: Error) => {
      this.failure ??= err;
      for (const w of this.waiting.splice(0)) w(this.failure);
    };
    socket.on('error', fail);
    socket.on('close', () => fail(new Error('redis connection closed')));
  }

  static connect(url: string, timeoutMs: number): Promise<MiniRedis> {
    const u = new URL(url);
    return new Promise((resolve, reject) => {
      const socket = net.connect({ host: u.hostname || '127.0.0.1', port: Number(u.port || 6379) });
      socket.setTimeout(timeoutMs, () => socket.destroy(new Error(`redis ${url}: no answer in ${timeoutMs} ms`)));
      socket.once('error', reject);
      socket.once('connect', () => {
        socket.off('error', reject);
        const client = new MiniRedis(socket);
        const auth = u.password
          ? [...(u.username ? [decodeURIComponent(u.username)] : []), decodeURIComponent(u.password)]
          : [];
        const db = u.pathname.slice(1);
        (async () => {
          if (auth.length) await client.command(['AUTH', ...auth]);
          if (db) await client.command(['SELECT', db]);
        })().then(
          () => resolve(client),
          (err: unknown) => {
            client.close();
            reject(err as Error);
          },
        );
      });
    });
  }

  /** command sends one command and resolves with its reply; an error reply rejects. */
  async command(args: readonly string[]): Promise<RespValue> {
    if (this.failure) throw this.failure;
    const reply = await new Promise<RespValue>((resolve) => {
      this.waiting.push(resolve);
      this.socket.write(encodeCommand(args));
    });
    if (reply instanceof Error) throw reply;
    return reply;
  }

  close(): void {
    this.socket.destroy();
  }
}

/** redisReachable resolves with undefined when Redis at `url` answers PING, else the reason it does not. */
export async function redisReachable(url: string, timeoutMs = 2000): Promise<string | undefined> {
  try {
    const r = await MiniRedis.connect(url, timeoutMs);
    try {
      await r.command(['PING']);
    } finally {
      r.close();
    }
    return undefined;
  } catch (err) {
    return `Redis at ${url} does not answer (${(err as Error).message})`;
  }
}

/**
 * deleteKeysWithPrefix removes every key starting with `prefix` (SCAN + UNLINK) and resolves
 * with how many it removed. `prefix` must be a run's own unique prefix: glob characters in it
 * are escaped, and an empty prefix is refused.
 */
export async function deleteKeysWithPrefix(url: string, prefix: string, timeoutMs = 5000): Promise<number> {
  if (prefix === '') throw new Error('deleteKeysWithPrefix: refusing an empty prefix');
  const pattern = `${prefix.replace(/[*?[\]\\]/g, '\\$&')}*`;
  const r = await MiniRedis.connect(url, timeoutMs);
  let removed = 0;
  try {
    let cursor = '0';
    do {
      const reply = (await r.command(['SCAN', cursor, 'MATCH', pattern, 'COUNT', '1000'])) as [string, string[]];
      cursor = reply[0];
      if (reply[1].length > 0) removed += (await r.command(['UNLINK', ...reply[1]])) as number;
    } while (cursor !== '0');
  } finally {
    r.close();
  }
  return removed;
}
