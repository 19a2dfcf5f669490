/**
 * Log lines under test: a pino logger that parses every line a test server writes and
 * records the ones that are not a JSON object or that repeat a top-level key (a field that
 * shadows pino's own `level`, `time`, `msg`…, which log pipelines then misread). Servers of the
 * suites log through it at debug level, and each test file fails if any line was bad.
 *
 * @module
 */
import { after } from 'node:test';
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { pino, type Logger } from 'pino';

/** Lines that failed the check, with why. */
const bad: string[] = [];
let checked = 0;

/** topLevelKeys lists an object's top-level keys in order, duplicates included. Throws on bad JSON. */
export function topLevelKeys(line: string): string[] {
  const value: unknown = JSON.parse(line);
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new Error('not a JSON object');
  const keys: string[] = [];
  let depth = 0;
  let expectKey = false;
  for (let i = 0; i < line.length; i++) {
    const c = line[i];
    if (c === '"') {
      let j = i + 1;
      while (line[j] !== '"') j += line[j] === '\\' ? 2 : 1;
      if (depth === 1 && expectKey) keys.push(JSON.parse(line.slice(i, j + 1)) as string);
      expectKey = false;
      i = j;
    } else if (c === '{' || c === '[') {
      depth++;
      expectKey = c === '{' && depth === 1;
    } else if (c === '}' || c === ']') {
      depth--;
    } else if (c === ',' && depth === 1) {
      expectKey = true;
    }
  }
  return keys;
}

/** checkLine records `line` as bad when it is not a JSON object or repeats a top-level key. */
export function checkLine(line: string): void {
  checked++;
  try {
    const keys = topLevelKeys(line);
    const seen = new Set<string>();
    for (const k of keys) {
      if (seen.has(k)) bad.push(`key "${k}" twice: ${line}`);
      seen.add(k);
    }
  } catch (err) {
    bad.push(`${(err as Error).message}: ${line}`);
  }
}

/** checkedLogger is a debug-level pino logger whose every line is checked. */
export function checkedLogger(): Logger {
  let rest = '';
  const stream = new Writable({
    write(chunk: Buffer, _enc, done) {
      const lines = (rest + chunk.toString('utf8')).split('\n');
      rest = lines.pop() ?? '';
      for (const line of lines) if (line !== '') checkLine(line);
      done();
    },
  });
  return pino({ level: 'debug', base: { service: 'bulwark' } }, stream);
}

// Only in a test file's process: a helper process a test starts (e.g. churn-child.ts) imports
// the helpers too, and a node:test hook there would make it a test run writing to its stdout.
if (/\.test\.[cm]?js$/.test(process.argv[1] ?? '')) {
  after(() => {
    assert.deepEqual(bad, [], `${bad.length} of ${checked} log lines are not clean JSON objects`);
  });
}
