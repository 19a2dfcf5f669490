/**
 * Writes the configuration reference to `docs/CONFIG.md` at the repository root (or to the
 * path given as the first argument). Run it with `npm run docs:config`, which builds first:
 *
 *     node packages/server/dist/src/config/write-reference.js [out.md]
 *
 * @module
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { renderConfigReference } from './reference.js';

/** defaultReferencePath is docs/CONFIG.md, located from dist/src/config/ of the server package. */
const defaultReferencePath = fileURLToPath(new URL('../../../../../docs/CONFIG.md', import.meta.url));

const target = process.argv[2] ?? defaultReferencePath;
mkdirSync(dirname(target), { recursive: true });
writeFileSync(target, renderConfigReference());
process.stderr.write(`wrote ${target}\n`);
