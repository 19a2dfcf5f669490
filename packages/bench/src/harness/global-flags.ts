/**
 * The options of the bench itself, whatever the scenario (--target, --quick, --json, pinning,
 * Bulwark's entry and config, …), declared apart from main.ts so that the bench tests can check
 * that no scenario declares a flag of the same name: every flag is parsed into one set of
 * values, so a scenario's flag named like a global one would silently set both.
 *
 * @module
 */
import type { FlagSpec } from './flags.js';

/** globalFlags are the bench's own flags. */
export const globalFlags = {
  target: {
    name: 'target',
    arg: 'T',
    help: 'raw | bulwark | socketio | both (raw + bulwark) | all (raw + bulwark + socketio)',
    defaultText: 'all for fanout and connections, else both; bulwark is skipped if not built',
  },
  quick: {
    name: 'quick',
    help: 'small counts and durations (smoke test: < 30 s a scenario; overload, stalled ~45 s)',
  },
  json: { name: 'json', help: 'print the results as JSON instead of tables' },
  outDir: { name: 'out-dir', arg: 'DIR', help: 'where results files go', default: './bench-results' },
  noPin: { name: 'no-pin', help: 'do not pin server (CPU 0) and load generator (CPU 1) with taskset' },
  bulwarkMain: {
    name: 'bulwark-main',
    arg: 'FILE',
    help: 'Bulwark CLI entry',
    defaultText: 'packages/server/dist/src/cli/main.js',
  },
  wsPath: { name: 'ws-path', arg: 'PATH', help: 'Bulwark WebSocket path', default: '/connection/websocket' },
  bulwarkConfig: {
    name: 'bulwark-config',
    arg: 'J',
    help: `JSON merged into Bulwark's config, e.g. '{"client":{"write_delay":"20ms"}}'`,
  },
  workers: {
    name: 'workers',
    arg: 'N',
    help: `start Bulwark with --workers N (needs '{"engine":{"type":"redis"}}'; not pinned)`,
    default: 1,
    min: 1,
  },
  noHtml: { name: 'no-html', help: 'do not write the HTML report next to the JSON results' },
  console: {
    name: 'console',
    help: "an operator watches Bulwark's console: its overview and /metrics are fetched every second during each run",
  },
} satisfies Record<string, FlagSpec>;
