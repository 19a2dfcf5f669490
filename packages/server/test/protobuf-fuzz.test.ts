/**
 * The Protobuf decoder under hostile input, as the JSON one is in bad-input.test.ts.
 *
 * Unit fuzz: many thousands of seeded inputs to `decodeProtobufFrame` — random bytes, valid
 * commands of every method, the same with bytes flipped, truncated or extended, malformed
 * varints, huge declared lengths, wrong wire types for known fields, unknown fields, and group
 * nesting bombs — must each return commands or throw FrameError, nothing else, and fast.
 *
 * Real sockets: on `centrifuge-protobuf` connections malformed binary frames close with 3501,
 * a text frame closes with 3506 (and a binary frame on a JSON connection), a publish whose
 * `data` is not JSON is answered 107 and the connection stays, replies to commands sent
 * together arrive as one valid stream, and a subscriber on the same server receives every
 * publication throughout.
 *
 * @module
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { create, fromBinary, toBinary, type MessageInitShape } from '@bufbuild/protobuf';
import { sizeDelimitedEncode, sizeDelimitedPeek } from '@bufbuild/protobuf/wire';
import WebSocket from 'ws';
import { FrameError } from '../src/protocol/decode.js';
import { CommandSchema, ReplySchema, type Reply as PbReply } from '../src/protocol/gen/client_pb.js';
import { decodeProtobufFrame } from '../src/protocol/protobuf-decode.js';
import { rawClient, startTestServer, waitUntil, type TestServer } from './helpers/server.js';
import { steadyStream } from './helpers/steady-stream.js';
import { mulberry32 } from './helpers/prng.js';

/** varint encodes `n` (a non-negative integer below 2^53) as a Protobuf varint. */
function varint(n: number): number[] {
  const out: number[] = [];
  while (n >= 0x80) {
    out.push((n % 0x80) | 0x80);
    n = Math.floor(n / 0x80);
  }
  out.push(n);
  return out;
}

/** delimited prefixes `body` with its length, as one command of a frame. */
function delimited(body: number[] | Uint8Array): Uint8Array {
  return Buffer.concat([Uint8Array.from(varint(body.length)), Uint8Array.from(body)]);
}

const encoder = new TextEncoder();
const json = (v: unknown): Uint8Array => encoder.encode(JSON.stringify(v));
type CommandInit = MessageInitShape<typeof CommandSchema>;

/** ProtoFuzzer makes the inputs of the unit fuzz, one kind at a time. */
class ProtoFuzzer {
  readonly #rnd: () => number;
  constructor(seed: number) {
    this.#rnd = mulberry32(seed);
  }
  int(n: number): number {
    return Math.floor(this.#rnd() * n);
  }
  bytes(max: number): Uint8Array {
    const b = new Uint8Array(this.int(max + 1));
    for (let i = 0; i < b.length; i++) b[i] = this.int(256);
    return b;
  }
  string(): string {
    const alphabet = 'ab:$#,. \n"\\\u0000\u00e9\u4e2d{}';
    let s = '';
    for (let i = this.int(10); i > 0; i--) s += alphabet[this.int(alphabet.length)];
    return s;
  }
  /** payload is JSON, or bytes that are not (107), or nothing. */
  payload(): Uint8Array {
    const r = this.int(4);
    if (r === 0) return this.bytes(12);
    if (r === 1) return new Uint8Array(0);
    return json(r === 2 ? { n: this.int(100), s: this.string() } : this.string());
  }
  /** command is a valid Command of a random method (or none: a pong). */
  command(): CommandInit {
    const id = this.int(4) === 0 ? 0 : 1 + this.int(1000);
    // Never empty: a command without its channel is refused (FrameError), as in JSON.
    const channel = `chat:${this.string()}`;
    const sub = {
      channel,
      token: this.string(),
      recover: this.int(2) === 0,
      offset: BigInt(this.int(1e6)),
      epoch: 'e',
    };
    switch (this.int(13)) {
      case 0:
        return { id, connect: { token: this.string(), data: this.payload(), subs: { [channel]: sub }, name: 'n' } };
      case 1:
        return { id, subscribe: { ...sub, data: this.payload(), positioned: true } };
      case 2:
        return { id, unsubscribe: { channel } };
      case 3: {
        // Never empty: a publish without data is refused (FrameError → 3501), as Centrifugo does.
        const data = this.payload();
        return { id, publish: { channel, data: data.length > 0 ? data : json(1) } };
      }
      case 4:
        return { id, presence: { channel } };
      case 5:
        return { id, presenceStats: { channel } };
      case 6:
        return {
          id,
          history: { channel, limit: this.int(20) - 5, since: { offset: BigInt(this.int(10)), epoch: 'e' } },
        };
      case 7:
        return { id, ping: {} };
      case 8:
        return { id, send: { data: this.payload() } };
      case 9:
        return { id, rpc: { method: this.string(), data: this.payload() } };
      case 10:
        return { id, refresh: { token: this.string() } };
      case 11:
        return { id, subRefresh: { channel, token: this.string() } };
      default:
        return { id };
    }
  }
  /** valid is a frame of one to three valid commands. */
  valid(): Uint8Array {
    const parts = Array.from({ length: 1 + this.int(3) }, () =>
      sizeDelimitedEncode(CommandSchema, create(CommandSchema, this.command())),
    );
    return Buffer.concat(parts);
  }
  /** mutated is a valid frame with bytes flipped, cut off or appended. */
  mutated(): Uint8Array {
    const f = Uint8Array.from(this.valid());
    switch (this.int(3)) {
      case 0:
        for (let n = 1 + this.int(4); n > 0 && f.length > 0; n--) {
          const at = this.int(f.length);
          f[at] = (f[at] as number) ^ (1 << this.int(8));
        }
        return f;
      case 1:
        return f.subarray(0, this.int(f.length));
      default:
        return Buffer.concat([f, this.bytes(16)]);
    }
  }
  /** malformedVarint is a length prefix that never ends, is over 10 bytes, or declares too much. */
  malformedVarint(): Uint8Array {
    switch (this.int(4)) {
      case 0:
        return Uint8Array.from(Array.from({ length: 1 + this.int(12) }, () => 0x80 | this.int(128)));
      case 1:
        return Uint8Array.from([...Array.from({ length: 10 + this.int(4) }, () => 0xff), 0x01, 0x08, 0x01]);
      case 2:
        // A declared length of up to 2^53 over a few real bytes.
        return Uint8Array.from([...varint(2 ** (20 + this.int(33))), ...this.bytes(8)]);
      default:
        // A valid command whose inner length-delimited field declares more than the command holds.
        return delimited([0x3a, ...varint(1000 + this.int(1e6)), 0x0a, 0x01, 0x61]);
    }
  }
  /** wrongWireType puts a known field of Command (1, 4–15) under a wire type it does not have. */
  wrongWireType(): Uint8Array {
    const field = this.pick([1, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15]);
    const wire = field === 1 ? this.pick([1, 2, 5]) : this.pick([0, 1, 5]);
    const value =
      wire === 0
        ? varint(this.int(1e6))
        : wire === 1
          ? [...this.bytes(8)].concat(Array(8).fill(0)).slice(0, 8)
          : wire === 5
            ? [1, 2, 3, 4]
            : [...varint(3), 1, 2, 3];
    return delimited([...varint(field * 8 + wire), ...value]);
  }
  /** unknownFields is a valid command with unknown fields of every wire type around it. */
  unknownFields(): Uint8Array {
    const body = [...toBinary(CommandSchema, create(CommandSchema, this.command()))];
    for (let n = 1 + this.int(4); n > 0; n--) {
      const field = 16 + this.int(5000);
      const wire = this.pick([0, 1, 2, 5]);
      const value =
        wire === 0
          ? varint(this.int(1e9))
          : wire === 1
            ? Array(8).fill(7)
            : wire === 2
              ? [...varint(4), 9, 9, 9, 9]
              : [1, 2, 3, 4];
      body.push(...varint(field * 8 + wire), ...value);
    }
    return delimited(body);
  }
  /** depthBomb nests groups (unknown field, or inside a known message field) thousands deep. */
  depthBomb(): Uint8Array {
    const depth = 100 + this.int(maxDepth - 100);
    const inner = Buffer.concat([groupStarts.subarray(0, depth * 2), groupEnds.subarray(0, depth * 2)]);
    if (this.int(2) === 0) return delimited(inner);
    // Inside publish (field 7 of Command).
    return delimited(Buffer.concat([Uint8Array.from([0x3a, ...varint(inner.length)]), inner]));
  }
  pick<T>(items: readonly T[]): T {
    return items[this.int(items.length)] as T;
  }
}

/** The deepest group bomb, and its tags made once: field 99 start group (0x9b 0x06), end group (0x9c 0x06). */
const maxDepth = 16_000;
const groupStarts = Buffer.alloc(maxDepth * 2, Buffer.from([0x9b, 0x06]));
const groupEnds = Buffer.alloc(maxDepth * 2, Buffer.from([0x9c, 0x06]));

/** The most one input may take to decode, in ms. */
const slowMs = 100;

const kinds = ['random', 'valid', 'mutated', 'varint', 'wiretype', 'unknown', 'depth'] as const;

describe('decodeProtobufFrame fuzz', () => {
  it('returns commands or throws FrameError for 20,000 hostile inputs, each fast', (t) => {
    const seed = Number(process.env['BULWARK_FUZZ_SEED'] ?? 20240611);
    const fz = new ProtoFuzzer(seed);
    const tally: Record<string, { ok: number; frameError: number }> = {};
    let slowest = 0;
    /**
     * CPU time spent decoding, in ms (making the inputs is not the decoder's cost). CPU time, not
     * wall time: on a machine shared with busy neighbours the wall clock also counts their turns.
     */
    let total = 0;
    for (let i = 0; i < 20_000; i++) {
      const kind = kinds[i % kinds.length] as (typeof kinds)[number];
      const input =
        kind === 'random'
          ? fz.bytes(64)
          : kind === 'valid'
            ? fz.valid()
            : kind === 'mutated'
              ? fz.mutated()
              : kind === 'varint'
                ? fz.malformedVarint()
                : kind === 'wiretype'
                  ? fz.wrongWireType()
                  : kind === 'unknown'
                    ? fz.unknownFields()
                    : fz.depthBomb();
      const count = (tally[kind] ??= { ok: 0, frameError: 0 });
      const t0 = performance.now();
      const cpu0 = process.cpuUsage();
      try {
        const { commands } = decodeProtobufFrame(input);
        assert.ok(commands.length > 0, `${kind}: no commands and no error`);
        count.ok++;
      } catch (err) {
        if (kind === 'valid') assert.fail(`a valid frame was refused: ${String(err)}`);
        if (!(err instanceof FrameError)) {
          assert.fail(`${kind} input ${Buffer.from(input).toString('hex').slice(0, 120)} threw ${String(err)}`);
        }
        count.frameError++;
      }
      const cpu = process.cpuUsage(cpu0);
      total += (cpu.user + cpu.system) / 1000;
      let took = performance.now() - t0;
      // An input over the bound is timed twice more and its fastest run counts: a neighbour
      // process taking the CPU (or a GC) slows one run, a decoder slow on the input slows every run.
      for (let retry = 0; retry < 2 && took >= slowMs; retry++) {
        const r0 = performance.now();
        try {
          decodeProtobufFrame(input);
        } catch {
          // its outcome was checked above
        }
        took = Math.min(took, performance.now() - r0);
      }
      slowest = Math.max(slowest, took);
    }
    // Every kind was exercised both ways where it can be (valid ones always decode).
    for (const kind of ['mutated', 'varint', 'wiretype'] as const)
      assert.ok(tally[kind]?.frameError, `${kind}: never refused`);
    assert.ok(tally['unknown']?.ok, 'unknown fields are skipped, not refused');
    assert.equal(tally['varint']?.ok, 0, 'a malformed or out-of-range length prefix is always refused');
    assert.ok(slowest < slowMs, `slowest input took ${slowest.toFixed(1)} ms`);
    assert.ok(total < 5000, `20,000 inputs took ${total.toFixed(0)} ms of CPU`);
    t.diagnostic(
      `seed ${seed}: decoded in ${total.toFixed(0)} ms of CPU, slowest ${slowest.toFixed(2)} ms: ${JSON.stringify(tally)}`,
    );
  });

  it('refuses a length prefix of 2^32 or more instead of reading it modulo 2^32', () => {
    const ping = [0x08, 0x01, 0x5a, 0x00]; // {id: 1, ping: {}}
    assert.equal(decodeProtobufFrame(delimited(ping)).commands.length, 1);
    for (const declared of [2 ** 32, 2 ** 32 + ping.length, 2 ** 35 + ping.length, 2 ** 53 - 1]) {
      assert.throws(() => decodeProtobufFrame(Uint8Array.from([...varint(declared), ...ping])), FrameError);
    }
  });

  it('skips unknown fields and decodes the known ones of the same command', () => {
    const body = [
      ...toBinary(CommandSchema, create(CommandSchema, { id: 7, ping: {} })),
      ...varint(99 * 8 + 2),
      2,
      1,
      1,
    ];
    assert.deepEqual(decodeProtobufFrame(delimited(body)).commands, [{ id: 7, method: 'ping', req: {} }]);
  });
});

// ---------------------------------------------------------------- real sockets

/** PbClient is a bare `centrifuge-protobuf` WebSocket client. */
interface PbClient {
  ws: WebSocket;
  replies: PbReply[];
  closed: Promise<number>;
  send(...cmds: CommandInit[]): void;
  reply(id: number): Promise<PbReply>;
}

async function pbClient(srv: TestServer): Promise<PbClient> {
  const ws = new WebSocket(srv.url, 'centrifuge-protobuf');
  const replies: PbReply[] = [];
  ws.on('message', (data: Buffer) => {
    let rest: Uint8Array = data;
    while (rest.length > 0) {
      const peek = sizeDelimitedPeek(rest);
      assert.ok(!peek.eof && peek.offset + peek.size <= rest.length, 'a reply frame that is not a delimited stream');
      replies.push(fromBinary(ReplySchema, rest.subarray(peek.offset, peek.offset + peek.size)));
      rest = rest.subarray(peek.offset + peek.size);
    }
  });
  const closed = new Promise<number>((resolve) => ws.on('close', (code) => resolve(code)));
  ws.on('error', () => undefined);
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
  });
  return {
    ws,
    replies,
    closed,
    send: (...cmds) =>
      ws.send(Buffer.concat(cmds.map((c) => sizeDelimitedEncode(CommandSchema, create(CommandSchema, c))))),
    reply: async (id) => {
      await waitUntil(() => replies.some((r) => r.id === id), 3000, `reply ${id}`);
      return replies.find((r) => r.id === id) as PbReply;
    },
  };
}

describe('Protobuf bad input over real sockets', () => {
  let srv: TestServer;
  before(async () => {
    // A write delay makes pushes flushed together common, as under load.
    srv = await startTestServer({ client: { write_delay: '10ms' } });
  });
  after(() => srv.close());

  it('malformed frames close 3501, wrong frame types 3506, non-JSON data is 107; a subscriber misses nothing', async (t) => {
    // The well-behaved subscriber, receiving throughout.
    const stream = await steadyStream(srv, t, 'open:pb', 2);
    const { received, client: good } = stream;

    const fz = new ProtoFuzzer(7);
    const malformed: Array<[string, Uint8Array]> = [
      ['random bytes', Uint8Array.from([0x05, 0xff, 0xff, 0xff])],
      ['unterminated varint', Uint8Array.from([0xff, 0xff, 0xff])],
      ['11-byte varint', Uint8Array.from([...Array(11).fill(0xff), 0x01])],
      ['huge declared length', Uint8Array.from([...varint(2 ** 31), 1, 2, 3])],
      ['wrong wire type', delimited([0x0a, 0x01, 0x41])],
      ['group bomb', fz.depthBomb()],
      ['mutated', Uint8Array.from([0x03, 0x08, 0x01, 0x5a])],
    ];
    const token = await srv.token('pb');
    for (const [name, frame] of malformed) {
      for (const connectFirst of [false, true]) {
        const c = await pbClient(srv);
        if (connectFirst) {
          c.send({ id: 1, connect: { token } });
          assert.ok((await c.reply(1)).connect, `${name}: connect`);
        }
        c.ws.send(frame);
        assert.equal(await c.closed, 3501, `${name} (connected: ${connectFirst})`);
      }
    }

    // A text frame on a Protobuf connection, a binary frame on a JSON one: 3506.
    const pbText = await pbClient(srv);
    pbText.ws.send('{"id":1,"connect":{}}');
    assert.equal(await pbText.closed, 3506);
    const jsonBinary = await rawClient(srv.url);
    t.after(() => jsonBinary.close());
    jsonBinary.send(Buffer.from(sizeDelimitedEncode(CommandSchema, create(CommandSchema, { id: 1, ping: {} }))), {
      binary: true,
    });
    assert.equal((await jsonBinary.waitClose()).code, 3506);

    // Publish data that is not JSON: 107, and the connection keeps working. Commands sent in one
    // frame are answered as one valid delimited stream (no separator between Protobuf replies).
    const c = await pbClient(srv);
    t.after(() => c.ws.terminate());
    c.send({ id: 1, connect: { token } });
    assert.ok((await c.reply(1)).connect);
    c.send(
      { id: 2, publish: { channel: 'open:pb', data: Uint8Array.from([0xff, 0x00, 0x7b]) } },
      { id: 3, ping: {} },
      { id: 4, ping: {} },
    );
    assert.equal((await c.reply(2)).error?.code, 107);
    assert.equal((await c.reply(3)).error?.code, 108, 'ping: not available, as Centrifugo');
    assert.equal((await c.reply(4)).error?.code, 108);
    c.send({ id: 5, publish: { channel: 'open:pb', data: json({ n: -1 }) } });
    assert.ok((await c.reply(5)).publish, 'a JSON publish after the 107 works');
    assert.equal(c.ws.readyState, WebSocket.OPEN);

    // A burst of publications flushed together reaches a Protobuf subscriber as one valid
    // delimited stream (the write queue joins Protobuf messages without a separator).
    c.send({ id: 6, subscribe: { channel: 'open:burst' } });
    assert.ok((await c.reply(6)).subscribe);
    await Promise.all(Array.from({ length: 50 }, (_, i) => srv.node.publish('open:burst', { b: i })));
    await waitUntil(() => c.replies.filter((r) => r.push?.pub !== undefined).length >= 50, 3000, 'burst');

    const published = await stream.stop();
    // The subscriber saw every server publication once, in order (and the Protobuf client's own).
    await waitUntil(() => received.filter((n) => n > 0).length >= published, 3000, 'subscriber caught up');
    assert.deepEqual(
      received.filter((n) => n > 0),
      Array.from({ length: published }, (_, i) => i + 1),
    );
    assert.ok(received.includes(-1));
    assert.equal(good.state, 'connected');
  });
});
