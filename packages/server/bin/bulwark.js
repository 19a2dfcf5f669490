#!/usr/bin/env node
// The `bulwark` command. It runs the compiled CLI, which `npm install` builds (the root
// `prepare` script) — a committed shim, so the command exists before anything is built.
import { existsSync } from 'node:fs';
import { URL } from 'node:url';

const main = new URL('../dist/src/cli/main.js', import.meta.url);
if (!existsSync(main)) {
  process.stderr.write('bulwark: not built yet; run `npm run build` at the repository root\n');
  process.exit(1);
}
await import(main.href);
