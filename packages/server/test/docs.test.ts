/**
 * Keeps the documentation in step with the code: the generated configuration reference, the
 * BW_ERR codes, the protocol's wire codes and the server API methods. Paths are resolved from
 * the compiled test (packages/server/dist/test/) to the repository's docs/ folder.
 *
 * @module
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { batchMethod } from '../src/http/api-batch.js';
import { apiMethods } from '../src/http/api-methods.js';
import { renderConfigReference } from '../src/config/reference.js';
import { errorCodes } from '../src/errors.js';
import { DisconnectCode, ErrorCode, UnsubscribeCode } from '../src/protocol/codes.js';

/** readDoc reads docs/<name> at the repository root. */
function readDoc(name: string): string {
  return readFileSync(new URL(`../../../../docs/${name}`, import.meta.url), 'utf8');
}

/** hasRowFor tells whether `text` has a Markdown table row whose first cell is `value`. */
function hasRowFor(text: string, value: string | number): boolean {
  const escaped = String(value).replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  return new RegExp(`^\\|\\s*\`?${escaped}\`?\\s*\\|`, 'm').test(text);
}

describe('docs', () => {
  it('docs/CONFIG.md is the generated configuration reference', () => {
    const expected = renderConfigReference();
    const actual = readDoc('CONFIG.md');
    assert.ok(
      actual === expected,
      'docs/CONFIG.md is out of date with src/config/schema.ts: run `npm run docs:config` and commit the result',
    );
  });

  it('docs/errors.md documents exactly the BW_ERR codes of src/errors.ts', () => {
    const text = readDoc('errors.md');
    const defined = Object.keys(errorCodes);
    const missing = defined.filter((c) => !hasRowFor(text, c));
    assert.deepEqual(
      missing,
      [],
      `codes in src/errors.ts without a row in the table of docs/errors.md: ${missing.join(', ')}`,
    );
    const documented = new Set(text.match(/BW_ERR_[A-Z0-9_]*[A-Z0-9]/g) ?? []);
    const unknown = [...documented].filter((c) => !defined.includes(c));
    assert.deepEqual(unknown, [], `codes in docs/errors.md that src/errors.ts does not define: ${unknown.join(', ')}`);
  });

  it('docs/PROTOCOL.md lists every error, disconnect and unsubscribe code', () => {
    const text = readDoc('PROTOCOL.md');
    const codes = [
      ...Object.entries(ErrorCode).map(([name, code]) => ({ kind: 'ErrorCode', name, code })),
      ...Object.entries(DisconnectCode).map(([name, code]) => ({ kind: 'DisconnectCode', name, code })),
      ...Object.entries(UnsubscribeCode).map(([name, code]) => ({ kind: 'UnsubscribeCode', name, code })),
    ];
    const missing = codes.filter((c) => !hasRowFor(text, c.code)).map((c) => `${c.kind}.${c.name} (${c.code})`);
    assert.deepEqual(missing, [], `codes missing from the tables of docs/PROTOCOL.md: ${missing.join(', ')}`);
  });

  it('docs/API.md has a section for every server API method', () => {
    const text = readDoc('API.md');
    const headings = new Set(
      [...text.matchAll(/^#{2,4}\s+`([a-z_]+)`\s*$/gm)].map((m) => m[1]).filter((m) => m !== undefined),
    );
    // `batch` is served by the transport (http/api-batch.ts), beside the table's methods.
    const methods: readonly string[] = [...apiMethods, batchMethod];
    const missing = methods.filter((m) => !headings.has(m));
    assert.deepEqual(missing, [], `methods without a "### \`method\`" section in docs/API.md: ${missing.join(', ')}`);
    const extra = [...headings].filter((h) => !methods.includes(h));
    assert.deepEqual(
      extra,
      [],
      `docs/API.md documents methods src/http/api-methods.ts does not have: ${extra.join(', ')}`,
    );
  });
});
