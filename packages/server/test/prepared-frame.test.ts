import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { markShared, preparedFrame } from '../src/transport/prepared-frame.js';

/** parseFrame decodes one unmasked server frame (RFC 6455 §5.2). */
function parseFrame(wire: Buffer): { fin: boolean; opcode: number; masked: boolean; payload: Buffer } {
  const b0 = wire[0] as number;
  const b1 = wire[1] as number;
  let len = b1 & 0x7f;
  let offset = 2;
  if (len === 126) {
    len = wire.readUInt16BE(2);
    offset = 4;
  } else if (len === 127) {
    len = Number(wire.readBigUInt64BE(2));
    offset = 10;
  }
  assert.equal(wire.length, offset + len, 'frame length matches its header');
  return { fin: (b0 & 0x80) !== 0, opcode: b0 & 0x0f, masked: (b1 & 0x80) !== 0, payload: wire.subarray(offset) };
}

describe('prepared frames', () => {
  for (const size of [0, 125, 126, 65535, 65536, 70000]) {
    it(`frames a ${size}-byte payload as one unmasked final text frame`, () => {
      const payload = markShared(Buffer.alloc(size, 'x'));
      const wire = preparedFrame(payload, false);
      assert.ok(wire);
      const f = parseFrame(wire);
      assert.deepEqual([f.fin, f.opcode, f.masked], [true, 1, false]);
      assert.ok(f.payload.equals(payload));
    });
  }

  it('builds a shared frame once and reuses it for every subscriber', () => {
    const payload = markShared(Buffer.from('{"push":{}}'));
    assert.equal(preparedFrame(payload, false), preparedFrame(payload, false));
  });

  it('does not prepare payloads that were not marked shared (replies go through ws)', () => {
    assert.equal(preparedFrame(Buffer.from('{"id":1}'), false), undefined);
  });
});
