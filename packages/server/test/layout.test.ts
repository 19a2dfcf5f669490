/**
 * Keeps the house in order (docs/ARCHITECTURE.md): the server's rooms import only downward,
 * no source file takes part in an import circle (type-only imports count: they tie the rooms
 * as much as any), no source file grows past the size one concept needs, and every file opens
 * with a comment saying what it is for. Reads the TypeScript sources, resolved from the
 * compiled test (packages/server/dist/test/).
 *
 * @module
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const serverSrc = fileURLToPath(new URL('../../src/', import.meta.url));
const benchSrc = fileURLToPath(new URL('../../../bench/src/', import.meta.url));

/**
 * The layers of packages/server/src, lowest first. A room is a top-level folder or file of
 * src/; a room may import rooms of its own layer or below, never above. Within a layer the
 * file graph must still be free of circles.
 */
const serverLayers: readonly (readonly string[])[] = [
  ['protocol', 'util', 'errors.ts', 'version.ts', 'capacity'],
  ['config', 'transport', 'metrics.ts'],
  ['engine', 'auth', 'protection', 'proxy', 'cache', 'channel-rules.ts'],
  ['cluster', 'client', 'outbox', 'jetstream'],
  ['http'],
  ['node', 'node.ts'],
  ['cli', 'index.ts'],
];

/**
 * The layers of packages/bench/src: the harness (processes, stats, reports, flags) below the
 * load clients and the servers the bench starts, scenarios above them, the CLI on top.
 */
const benchLayers: readonly (readonly string[])[] = [['harness'], ['load', 'servers'], ['scenarios'], ['main.ts']];

/** The most lines a source file may have: past it, it holds more than one concept. */
const maxLines = 520;

/** Code generated from proto/client.proto (npm run proto): one file per .proto, no purpose comment of ours. */
const generated = (file: string): boolean => file.startsWith('protocol/gen/');

/** sourceFiles lists the .ts files under `dir`, as paths relative to it. */
function sourceFiles(dir: string, sub = ''): string[] {
  const out: string[] = [];
  for (const entry of readdirSync(join(dir, sub), { withFileTypes: true })) {
    const rel = sub === '' ? entry.name : `${sub}/${entry.name}`;
    if (entry.isDirectory()) out.push(...sourceFiles(dir, rel));
    else if (entry.name.endsWith('.ts') && !entry.name.endsWith('.d.ts')) out.push(rel);
  }
  return out.sort();
}

/** importsOf returns the files of the same tree that `file` imports (relative specifiers only). */
function importsOf(root: string, file: string): string[] {
  const text = readFileSync(join(root, file), 'utf8');
  const out: string[] = [];
  const re = /^\s*(?:import|export)\b[^;]*?\bfrom\s+'(\.[^']+)'|^\s*import\s+'(\.[^']+)'|import\('(\.[^']+)'\)/gms;
  for (const m of text.matchAll(re)) {
    const spec = m[1] ?? m[2] ?? m[3];
    if (spec === undefined) continue;
    const target = relative(root, join(root, dirname(file), spec)).replace(/\.js$/, '.ts');
    out.push(target);
  }
  return out;
}

/** roomOf is a file's room: its top-level folder, or the file itself at the top. */
function roomOf(file: string): string {
  const slash = file.indexOf('/');
  return slash === -1 ? file : file.slice(0, slash);
}

/** findCircles returns every import circle of the graph (each once, as a path of files). */
export function findCircles(graph: ReadonlyMap<string, readonly string[]>): string[][] {
  const circles: string[][] = [];
  const state = new Map<string, 'open' | 'done'>();
  const stack: string[] = [];
  const visit = (f: string): void => {
    state.set(f, 'open');
    stack.push(f);
    for (const g of graph.get(f) ?? []) {
      if (!graph.has(g)) continue;
      const s = state.get(g);
      if (s === 'open') circles.push([...stack.slice(stack.indexOf(g)), g]);
      else if (s === undefined) visit(g);
    }
    stack.pop();
    state.set(f, 'done');
  };
  for (const f of graph.keys()) if (!state.has(f)) visit(f);
  return circles;
}

/** upwardImports lists the imports that run from a lower layer to a higher one. */
export function upwardImports(
  graph: ReadonlyMap<string, readonly string[]>,
  layers: readonly (readonly string[])[],
): string[] {
  const rank = new Map<string, number>();
  layers.forEach((rooms, i) => rooms.forEach((r) => rank.set(r, i)));
  const out: string[] = [];
  for (const [file, targets] of graph) {
    const from = rank.get(roomOf(file));
    for (const t of targets) {
      const to = rank.get(roomOf(t));
      if (from === undefined || to === undefined) continue;
      if (to > from) out.push(`${file} -> ${t}`);
    }
  }
  return out;
}

function graphOf(root: string): Map<string, string[]> {
  return new Map(sourceFiles(root).map((f) => [f, importsOf(root, f)]));
}

describe('layout of packages/server/src', () => {
  const graph = graphOf(serverSrc);

  it('every room has a layer', () => {
    const known = new Set(serverLayers.flat());
    const unknown = [...new Set([...graph.keys()].map(roomOf))].filter((r) => !known.has(r));
    assert.deepEqual(unknown, [], 'add new rooms to serverLayers here and to docs/ARCHITECTURE.md');
  });

  it('has no import circles', () => {
    assert.deepEqual(findCircles(graph), []);
  });

  it('imports only downward', () => {
    assert.deepEqual(upwardImports(graph, serverLayers), []);
  });

  it(`has no source file over ${maxLines} lines`, () => {
    const big = [...graph.keys()]
      .filter((f) => !generated(f))
      .map((f) => [f, readFileSync(join(serverSrc, f), 'utf8').split('\n').length] as const)
      .filter(([, n]) => n > maxLines);
    assert.deepEqual(big, []);
  });

  it('opens every file with a comment that says what it is for', () => {
    const bare = [...graph.keys()].filter((f) => {
      if (generated(f)) return false;
      const text = readFileSync(join(serverSrc, f), 'utf8');
      return !/^(#![^\n]*\n)?\/\*\*\n \* \S/.test(text);
    });
    assert.deepEqual(bare, []);
  });
});

describe('layout of packages/bench/src', () => {
  const graph = graphOf(benchSrc);

  it('every room has a layer', () => {
    const known = new Set(benchLayers.flat());
    const unknown = [...new Set([...graph.keys()].map(roomOf))].filter((r) => !known.has(r));
    assert.deepEqual(unknown, []);
  });

  it('has no import circles', () => {
    assert.deepEqual(findCircles(graph), []);
  });

  it('imports only downward, and the load clients and servers not from each other', () => {
    const sideways = [...graph].flatMap(([f, targets]) =>
      targets
        .filter((t) => new Set([roomOf(f), roomOf(t)]).size === 2 && ['load', 'servers'].includes(roomOf(f)))
        .filter((t) => ['load', 'servers'].includes(roomOf(t)))
        .map((t) => `${f} -> ${t}`),
    );
    assert.deepEqual([...upwardImports(graph, benchLayers), ...sideways], []);
  });
});

describe('layout checks', () => {
  it('find a circle and an upward import', () => {
    const g = new Map([
      ['a/x.ts', ['b/y.ts']],
      ['b/y.ts', ['a/x.ts']],
      ['c.ts', []],
    ]);
    assert.deepEqual(findCircles(g), [['a/x.ts', 'b/y.ts', 'a/x.ts']]);
    assert.deepEqual(upwardImports(g, [['a'], ['b']]), ['a/x.ts -> b/y.ts']);
  });
});
