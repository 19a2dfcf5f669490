/**
 * Log lines: the default logger never writes one of pino's own fields twice, and the check the
 * suites' servers log through (helpers/log-check.ts) finds a line that does.
 *
 * @module
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { defaultLogger } from '../src/node/logger.js';
import { topLevelKeys } from './helpers/log-check.js';

/** capture collects the lines a logger writes. */
function capture(): { stream: Writable; lines: string[] } {
  const lines: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, done) {
      lines.push(
        ...chunk
          .toString('utf8')
          .split('\n')
          .filter((l) => l !== ''),
      );
      done();
    },
  });
  return { stream, lines };
}

describe('log lines', () => {
  it('the default logger renames fields that would shadow pino’s own', () => {
    const { stream, lines } = capture();
    const log = defaultLogger('info', stream);
    log.warn({ level: 'connect', time: 5, msg: 'x', lagMs: 60 }, 'load shedding');
    const keys = topLevelKeys(lines[0] ?? '');
    assert.equal(new Set(keys).size, keys.length, `duplicate keys in ${lines[0]}`);
    const line = JSON.parse(lines[0] ?? '') as Record<string, unknown>;
    assert.equal(line['level'], 40);
    assert.equal(line['level_'], 'connect');
    assert.equal(line['time_'], 5);
    assert.equal(line['msg'], 'load shedding');
    assert.equal(line['lagMs'], 60);
  });

  it('the suites’ check sees a key written twice', () => {
    const { stream, lines } = capture();
    pino({ level: 'info' }, stream).warn({ level: 'connect' }, 'shadowed');
    const keys = topLevelKeys(lines[0] ?? '');
    assert.deepEqual(
      keys.filter((k) => k === 'level'),
      ['level', 'level'],
    );
  });

  it('reads keys only at the top level, and strings with escapes', () => {
    assert.deepEqual(topLevelKeys('{"a":{"level":1},"b":"x\\"level\\":","c":[{"level":2}]}'), ['a', 'b', 'c']);
  });
});
