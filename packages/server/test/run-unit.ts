/**
 * The runner of `npm run unit`: every compiled test file of both packages, in two phases.
 *
 * 1. Most files run a few at a time (`--concurrency N`, default 2): they spend most of
 *    their time waiting — for a process to start, a timeout to pass, Redis or PostgreSQL to
 *    answer — so running them side by side on 2 cores takes about half the time of one by one.
 *    They do not clash: each uses its own random Redis key, table and NATS subject prefix,
 *    ports the system gave it, and temporary folders of its own.
 * 2. The files in {@link timingFiles} then run one at a time, alone: they measure the node's
 *    own timing (event-loop lag, latencies, deadlines, rates), which a test beside them would
 *    blur.
 *
 * Both phases print node:test's spec report. At the end the runner lists every failing test
 * again, with its file and error, and exits 1 if any failed (a file that crashes counts as a
 * failing test). `npm run unit -- [--concurrency N] [files…]` passes its arguments on: with
 * files, only those run. (Not an environment variable: every BULWARK_* variable is a config
 * key to the bulwark processes the tests start, and an unknown one stops them.)
 *
 * @module
 */
import { readdirSync } from 'node:fs';
import { basename, join } from 'node:path';
import { run } from 'node:test';
import { spec } from 'node:test/reporters';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

/** The compiled test folders of both packages. */
const testDirs = [
  fileURLToPath(new URL('./', import.meta.url)),
  fileURLToPath(new URL('../../../bench/dist/test/', import.meta.url)),
];

/**
 * Files that run alone, after the others, each with why. A file belongs here when it asserts
 * how long something took at a margin that another test's CPU use beside it could eat.
 */
const timingFiles: ReadonlyMap<string, string> = new Map([
  ['load-shedding.test.js', "the node's own event-loop lag and CPU decide what is shed"],
  ['proxy-protection.test.js', 'fair-queue latencies; overflow and an open breaker answered within 200–300 ms'],
  ['protected-call.test.js', 'overflow answered within 50 ms'],
  ['slow-loris.test.js', '450 sockets against a 3 s header timeout, lifetimes checked to the timeout'],
  ['deadline-timing.test.js', 'close frames within one 100 ms timer-wheel step'],
  ['timer-wheel.test.js', 'timers fire within 60 ms of their due time'],
  ['session-unit.test.js', 'ping gaps within 25–200 ms'],
  ['drain.test.js', 'closes spread over the drain window, slice by slice'],
  ['admission.test.js', 'connection rates per second and Retry-After'],
  ['rate-limit.test.js', 'token buckets refilled in real time'],
  ['neighbour.test.js', 'CPU-hungry neighbour processes, measured'],
  ['measurement.test.js', 'latency percentiles against a 50 ms delay'],
]);

/**
 * Files that take longest (10–35 s each), started first so that the end of the first phase
 * is not one of them running alone while the cores idle. Most expensive first.
 */
const longFiles: readonly string[] = [
  'rpc-cache.test.js',
  'postgres-restart.test.js',
  'engine-redis.test.js',
  'package.test.js',
  'raw-session-client.test.js',
  'engine-postgres.test.js',
  'cluster-processes.test.js',
  'cluster-combined.test.js',
  'protected-cache.test.js',
  'outbox.test.js',
  'jetstream.test.js',
  'engine-combined.test.js',
  'churn-memory.test.js',
  'cli.test.js',
  'cluster-nats.test.js',
  'engine-nats.test.js',
  'shared-poll-cluster.test.js',
  'admin-browser.test.js',
];

/** longFirst orders files: those of {@link longFiles} first, in its order, then the rest as given. */
function longFirst(files: string[]): string[] {
  const rank = (f: string) => {
    const i = longFiles.indexOf(basename(f));
    return i === -1 ? longFiles.length : i;
  };
  return [...files].sort((a, b) => rank(a) - rank(b));
}

/** testFiles lists the compiled test files of both packages, sorted by name within each. */
function testFiles(): string[] {
  return testDirs.flatMap((dir) =>
    readdirSync(dir)
      .filter((f) => f.endsWith('.test.js'))
      .sort()
      .map((f) => join(dir, f)),
  );
}

/** Failure is one failing test, as the end of the run lists it again. */
interface Failure {
  file: string;
  name: string;
  error: string;
}

/** Tally counts the tests (not suites) of a phase. */
interface Tally {
  pass: number;
  fail: number;
  skip: number;
  failures: Failure[];
}

/** runPhase runs `files` with `concurrency` files at a time, printing the spec report, and tallies them. */
async function runPhase(files: string[], concurrency: number): Promise<Tally> {
  const tally: Tally = { pass: 0, fail: 0, skip: 0, failures: [] };
  if (files.length === 0) return tally;
  const stream = run({ files, concurrency });
  stream.on('test:pass', (t) => {
    if (t.details.type === 'suite') return;
    if (t.skip !== undefined && t.skip !== false) tally.skip++;
    else tally.pass++;
  });
  stream.on('test:fail', (t) => {
    const error = t.details.error as Error & { failureType?: string; cause?: unknown };
    // A suite fails because a test in it did: that test is listed, not the suite again.
    if (error.failureType === 'subtestsFailed') return;
    tally.fail++;
    const cause = error.cause instanceof Error ? error.cause.message : String(error.cause ?? error.message);
    const lines = cause.split('\n').filter((l) => l.trim() !== '');
    tally.failures.push({ file: t.file ?? '?', name: t.name, error: lines.slice(0, 4).join('\n') });
  });
  const report = stream.compose(new spec());
  report.pipe(process.stdout, { end: false });
  await new Promise<void>((resolve, reject) => report.once('end', resolve).once('error', reject));
  return tally;
}

const args = parseArgs({ options: { concurrency: { type: 'string', default: '2' } }, allowPositionals: true });
const concurrency = Number(args.values.concurrency);
if (!Number.isInteger(concurrency) || concurrency < 1) {
  throw new TypeError(`--concurrency must be a whole number of files, 1 or more (got ${args.values.concurrency})`);
}
const files = args.positionals.length > 0 ? args.positionals : testFiles();
const alone = files.filter((f) => timingFiles.has(basename(f)));
const together = longFirst(files.filter((f) => !timingFiles.has(basename(f))));

const started = performance.now();
console.log(`# ${together.length} test files, ${concurrency} at a time`);
const first = await runPhase(together, concurrency);
const firstSeconds = (performance.now() - started) / 1000;
console.log(`\n# ${alone.length} timing-sensitive test files, one at a time`);
const second = await runPhase(alone, 1);
const seconds = (performance.now() - started) / 1000;

const failures = [...first.failures, ...second.failures];
const total = (k: 'pass' | 'fail' | 'skip') => first[k] + second[k];
if (failures.length > 0) {
  console.log(`\n✖ ${failures.length} failing test(s):`);
  for (const f of failures) console.log(`\n✖ ${f.name}\n  ${f.file}\n  ${f.error.replaceAll('\n', '\n  ')}`);
}
console.log(
  `\n# unit: ${total('pass')} passed, ${total('fail')} failed, ${total('skip')} skipped in ${seconds.toFixed(0)} s` +
    ` (${together.length} files ${concurrency} at a time: ${firstSeconds.toFixed(0)} s;` +
    ` ${alone.length} alone: ${(seconds - firstSeconds).toFixed(0)} s)`,
);
if (failures.length > 0) process.exitCode = 1;
