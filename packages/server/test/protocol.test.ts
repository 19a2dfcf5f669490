import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { DisconnectCode, ErrorCode, ProtocolError, disconnect, isReconnectAllowed } from '../src/protocol/codes.js';
import { FrameError, decodeFrame } from '../src/protocol/decode.js';
import {
  encodeConnectResult,
  encodeErrorReply,
  encodeHistoryResult,
  encodePresenceResult,
  encodePublicationPush,
  encodeReply,
  encodeSubscribeResult,
  encodePush,
} from '../src/protocol/encode.js';
import { asRaw, type Publication } from '../src/protocol/types.js';

describe('decodeFrame', () => {
  it('decodes one command per line, in order, skipping blank lines', () => {
    const frame = [
      '{"id":1,"connect":{"token":"t","name":"js"}}',
      '',
      '{"id":2,"subscribe":{"channel":"chat:a","recover":true,"offset":5,"epoch":"x"}}',
      '{"id":3,"publish":{"channel":"chat:a","data":{"text":"hi"}}}',
    ].join('\n');
    const { commands } = decodeFrame(frame);
    assert.deepEqual(
      commands.map((c) => [c.id, c.method]),
      [
        [1, 'connect'],
        [2, 'subscribe'],
        [3, 'publish'],
      ],
    );
    const sub = commands[1];
    assert.ok(sub?.method === 'subscribe');
    assert.equal(sub.req.channel, 'chat:a');
    assert.equal(sub.req.offset, 5);
    assert.equal(sub.req.epoch, 'x');
    assert.equal(sub.req.recover, true);
  });

  it('treats an empty object as the pong', () => {
    assert.deepEqual(decodeFrame('{}').commands, [{ id: 0, method: 'pong', req: {} }]);
  });

  it('accepts offsets as decimal strings (uint64 in JSON)', () => {
    const c = decodeFrame('{"id":1,"history":{"channel":"a","since":{"offset":"12","epoch":"e"},"limit":3}}')
      .commands[0];
    assert.ok(c?.method === 'history');
    assert.deepEqual(c.req.since, { offset: 12, epoch: 'e' });
    assert.equal(c.req.limit, 3);
  });

  it('ignores unknown fields, as protobuf does (newer SDKs send more)', () => {
    const c = decodeFrame('{"id":4,"subscribe":{"channel":"a","flag":1,"tf":{"x":1},"phase":2}}').commands[0];
    assert.ok(c?.method === 'subscribe');
    assert.equal(c.req.channel, 'a');
    // tf and flag are read now: tf is kept as sent (checked at subscribe), flag as a number.
    assert.deepEqual(c.req.tf, { x: 1 });
    assert.equal(c.req.flag, 1);
  });

  it('refuses a subscribe whose tf is not an object, or whose flag is not an integer (3501)', () => {
    assert.throws(() => decodeFrame('{"id":1,"subscribe":{"channel":"a","tf":"region=eu"}}'), /subscribe\.tf/);
    assert.throws(() => decodeFrame('{"id":1,"subscribe":{"channel":"a","tf":[1]}}'), /subscribe\.tf/);
    assert.throws(() => decodeFrame('{"id":1,"subscribe":{"channel":"a","flag":"2"}}'), /subscribe\.flag/);
  });

  it('decodes connect subs (recovery of server-side subscriptions)', () => {
    const c = decodeFrame('{"id":1,"connect":{"subs":{"news":{"recover":true,"offset":3,"epoch":"e"}}}}').commands[0];
    assert.ok(c?.method === 'connect');
    assert.deepEqual(c.req.subs?.['news'], {
      channel: 'news',
      token: undefined,
      recover: true,
      epoch: 'e',
      offset: 3,
      data: undefined,
      positioned: undefined,
      recoverable: undefined,
      join_leave: undefined,
      tf: undefined,
      flag: undefined,
      delta: undefined,
      type: undefined,
      phase: undefined,
      cursor: undefined,
      limit: undefined,
    });
  });

  it('marks unknown methods without failing the frame', () => {
    const { commands } = decodeFrame('{"id":9,"frobnicate":{}}');
    assert.deepEqual(commands, [{ id: 9, method: undefined }]);
  });

  const malformed: Array<[string, string]> = [
    ['not JSON', '{"id":1,'],
    ['an array', '[1,2]'],
    ['wrong channel type', '{"id":1,"subscribe":{"channel":5}}'],
    ['missing channel', '{"id":1,"subscribe":{}}'],
    ['negative offset', '{"id":1,"subscribe":{"channel":"a","offset":-1}}'],
    ['fractional id', '{"id":1.5,"subscribe":{"channel":"a"}}'],
    ['id above uint32', '{"id":4294967296,"subscribe":{"channel":"a"}}'],
    ['two methods', '{"id":1,"subscribe":{"channel":"a"},"publish":{"channel":"a","data":1}}'],
    ['method body not an object', '{"id":1,"publish":"x"}'],
    ['publish without data', '{"id":1,"publish":{"channel":"a"}}'],
    ['refresh without token', '{"id":1,"refresh":{}}'],
    ['boolean as string', '{"id":1,"subscribe":{"channel":"a","recover":"yes"}}'],
    ['since not an object', '{"id":1,"history":{"channel":"a","since":3}}'],
    ['only blank lines', '\n\n'],
  ];
  for (const [name, frame] of malformed) {
    it(`rejects ${name}`, () => assert.throws(() => decodeFrame(frame), FrameError));
  }

  it('rejects the whole frame when one line is malformed (no half-applied batch)', () => {
    assert.throws(() => decodeFrame('{"id":1,"ping":{}}\n{"id":2,"subscribe":{"channel":1}}'), FrameError);
  });
});

describe('encode', () => {
  const pub: Publication = {
    offset: 7,
    data: asRaw({ text: 'hi' }),
    info: { user: 'u1', client: 'c1', conn_info: asRaw({ name: 'Ann' }) },
    tags: { k: 'v' },
  };

  it('encodes a publication push with raw data spliced in', () => {
    const text = encodePublicationPush('chat:a', pub);
    assert.deepEqual(JSON.parse(text), {
      push: {
        channel: 'chat:a',
        pub: {
          data: { text: 'hi' },
          info: { user: 'u1', client: 'c1', conn_info: { name: 'Ann' } },
          offset: 7,
          tags: { k: 'v' },
        },
      },
    });
  });

  it('omits offset 0 (no history), as protobuf JSON does', () => {
    const text = encodePublicationPush('a', { offset: 0, data: asRaw(1) });
    assert.deepEqual(JSON.parse(text), { push: { channel: 'a', pub: { data: 1 } } });
  });

  it('escapes channel names', () => {
    const text = encodePublicationPush('a"b\\c', { offset: 0, data: asRaw(null) });
    assert.equal((JSON.parse(text) as { push: { channel: string } }).push.channel, 'a"b\\c');
  });

  it('encodes subscribe and connect results with only set fields', () => {
    assert.equal(encodeSubscribeResult({}), '{}');
    assert.deepEqual(
      JSON.parse(
        encodeSubscribeResult({
          recoverable: true,
          positioned: true,
          epoch: 'e',
          offset: 3,
          recovered: true,
          was_recovering: true,
          publications: [pub],
        }),
      ),
      {
        recoverable: true,
        positioned: true,
        epoch: 'e',
        offset: 3,
        recovered: true,
        was_recovering: true,
        publications: [JSON.parse(encodePublicationPush('x', pub)).push.pub],
      },
    );
    assert.deepEqual(
      JSON.parse(
        encodeConnectResult({
          client: 'c',
          version: '1',
          ping: 25,
          pong: true,
          expires: true,
          ttl: 60,
          subs: { n: { offset: 2 } },
        }),
      ),
      { client: 'c', version: '1', ping: 25, pong: true, expires: true, ttl: 60, subs: { n: { offset: 2 } } },
    );
  });

  it('encodes replies, errors, history, presence and unsubscribe pushes', () => {
    assert.deepEqual(JSON.parse(encodeReply(5, 'publish', '{}')), { id: 5, publish: {} });
    assert.deepEqual(JSON.parse(encodeErrorReply(6, new ProtocolError(ErrorCode.TooManyRequests).toWire())), {
      id: 6,
      error: { code: 111, message: 'too many requests', temporary: true },
    });
    assert.deepEqual(JSON.parse(encodeHistoryResult([], 0, '')), {});
    assert.deepEqual(JSON.parse(encodePresenceResult({ c1: { user: 'u', client: 'c1' } })), {
      presence: { c1: { user: 'u', client: 'c1' } },
    });
    assert.deepEqual(
      JSON.parse(encodePush({ type: 'unsubscribe', channel: 'a', code: 2000, reason: 'server unsubscribe' })),
      {
        push: { channel: 'a', unsubscribe: { code: 2000, reason: 'server unsubscribe' } },
      },
    );
  });
});

describe('codes', () => {
  it('marks only internal and too-many-requests errors temporary by default', () => {
    for (const code of Object.values(ErrorCode)) {
      const temporary = new ProtocolError(code).temporary;
      assert.equal(temporary, code === ErrorCode.Internal || code === ErrorCode.TooManyRequests, `code ${code}`);
    }
  });

  it('follows the protocol reconnect ranges', () => {
    assert.equal(isReconnectAllowed(DisconnectCode.Shutdown), true);
    assert.equal(isReconnectAllowed(DisconnectCode.Slow), true);
    assert.equal(isReconnectAllowed(DisconnectCode.InvalidToken), false);
    assert.equal(isReconnectAllowed(DisconnectCode.BadRequest), false);
    assert.equal(isReconnectAllowed(4000), true);
    assert.equal(isReconnectAllowed(4500), false);
    assert.equal(isReconnectAllowed(5000), true);
    for (const code of Object.values(DisconnectCode)) {
      assert.equal(isReconnectAllowed(code), code < 3500, `code ${code}`);
    }
  });

  it('keeps disconnect reasons within a WebSocket close frame', () => {
    for (const code of Object.values(DisconnectCode)) {
      assert.ok(Buffer.byteLength(disconnect(code).reason) < 123, `code ${code}`);
    }
  });
});
