/**
 * The startup check of the open-file limit (incident 5): the arithmetic, the BW_ERR_FD_LIMIT
 * messages, the connection limit derived when client.connection_limit is 0, parsing of
 * /proc/self/limits, a real read on this machine, and a real refusal under `ulimit -n`.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { Writable } from 'node:stream';
import { describe, it } from 'node:test';
import { pino, type Logger } from 'pino';
import type { ConfigInput } from '../src/config/schema.js';
import { BulwarkError } from '../src/errors.js';
import { Node } from '../src/node.js';
import {
  FD_RESERVE,
  applyFdLimit,
  connectionsAllowed,
  parseProcLimits,
  planConnectionLimit,
  readFdLimits,
  requiredFds,
  type FdLimits,
} from '../src/protection/fd-limit.js';

/** A /proc/self/limits as Linux writes it (columns padded with spaces). */
const sampleLimits = `Limit                     Soft Limit           Hard Limit           Units     
Max cpu time              unlimited            unlimited            seconds   
Max file size             unlimited            unlimited            bytes     
Max data size             unlimited            unlimited            bytes     
Max stack size            8388608              unlimited            bytes     
Max core file size        0                    unlimited            bytes     
Max resident set          unlimited            unlimited            bytes     
Max processes             96365                96365                processes 
Max open files            1024                 524288               files     
Max locked memory         8388608              8388608              bytes     
Max address space         unlimited            unlimited            bytes     
Max file locks            unlimited            unlimited            locks     
Max pending signals       96365                96365                signals   
Max msgqueue size         819200               819200               bytes     
Max nice priority         0                    0                    
Max realtime priority     0                    0                    
Max realtime timeout      unlimited            unlimited            us        
`;

/** captureLog is a pino logger at debug writing parsed JSON lines into `lines`. */
function captureLog(): { log: Logger; lines: Array<Record<string, unknown>> } {
  const lines: Array<Record<string, unknown>> = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const line of chunk.toString('utf8').split('\n')) if (line) lines.push(JSON.parse(line));
      done();
    },
  });
  return { log: pino({ level: 'debug' }, stream), lines };
}

/** fdError runs `fn` and returns the BulwarkError it throws (fails if it does not). */
function fdError(fn: () => unknown): BulwarkError {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof BulwarkError, `a BulwarkError, got ${String(err)}`);
    assert.equal(err.code, 'BW_ERR_FD_LIMIT');
    return err;
  }
  assert.fail('expected BW_ERR_FD_LIMIT');
}

describe('fd-limit: parsing /proc/self/limits', () => {
  it('reads the soft and hard "Max open files"', () => {
    assert.deepEqual(parseProcLimits(sampleLimits), { soft: 1024, hard: 524288 });
  });

  it('reads "unlimited" as Infinity', () => {
    const text = sampleLimits.replace(
      /^Max open files.*$/m,
      'Max open files            unlimited            unlimited            files',
    );
    assert.deepEqual(parseProcLimits(text), { soft: Infinity, hard: Infinity });
  });

  it('returns undefined without a parsable line', () => {
    assert.equal(parseProcLimits('Limit  Soft Limit  Hard Limit  Units\n'), undefined);
    assert.equal(
      parseProcLimits('Max open files            lots                 1024                 files\n'),
      undefined,
    );
  });
});

describe('fd-limit: arithmetic', () => {
  it('requiredFds is ceil(N × headroom) + the reserve', () => {
    assert.equal(FD_RESERVE, 64);
    assert.equal(requiredFds(5, 1.25), 7 + 64);
    assert.equal(requiredFds(10_000, 1.25), 12_500 + 64);
    assert.equal(requiredFds(100, 1.1), 110 + 64, 'no floating-point 111');
    assert.equal(requiredFds(3, 1), 3 + 64);
  });

  it('connectionsAllowed is floor((soft − reserve) / headroom), the inverse of requiredFds', () => {
    assert.equal(connectionsAllowed(20_000, 1.25), 15_948);
    assert.equal(connectionsAllowed(1024, 1.25), 768);
    assert.equal(connectionsAllowed(64, 1.25), 0);
    assert.equal(connectionsAllowed(10, 1.25), 0, 'never negative');
    assert.equal(connectionsAllowed(Infinity, 1.25), Infinity);
    for (const h of [1, 1.1, 1.2, 1.25, 1.3, 1.5, 2, 2.7, 3.3]) {
      for (let soft = 65; soft < 5000; soft += 37) {
        const n = connectionsAllowed(soft, h);
        assert.ok(requiredFds(n, h) <= soft, `soft ${soft}, headroom ${h}: ${n} connections need more`);
        assert.ok(requiredFds(n + 1, h) > soft, `soft ${soft}, headroom ${h}: ${n + 1} would fit too`);
      }
    }
  });
});

describe('fd-limit: planConnectionLimit', () => {
  const limits = (soft: number, hard: number): FdLimits => ({ soft, hard });

  it('keeps an explicit client.connection_limit that fits', () => {
    assert.deepEqual(planConnectionLimit({ connectionLimit: 10_000, fdHeadroom: 1.25 }, limits(12_564, 12_564)), {
      connectionLimit: 10_000,
      source: 'config',
      limits: limits(12_564, 12_564),
      required: 12_564,
      socketCapacity: 10_000,
    });
    // The sockets the soft limit holds (WebSockets and HTTP connections waiting for a request)
    // may exceed the configured connection limit: pending sockets are closed only beyond it.
    const roomy = planConnectionLimit({ connectionLimit: 1000, fdHeadroom: 1.25 }, limits(20_064, 20_064));
    assert.equal(roomy.connectionLimit, 1000);
    assert.equal(roomy.socketCapacity, 16_000);
  });

  it('refuses a limit the soft and hard limits cannot hold, saying what to set everywhere', () => {
    const err = fdError(() => planConnectionLimit({ connectionLimit: 15_000, fdHeadroom: 1.25 }, limits(1024, 4096)));
    const m = err.message;
    assert.match(m, /client\.connection_limit=15000/);
    assert.match(m, /soft limit is 1024 \(hard limit 4096\)/);
    assert.match(m, /need 18814 file descriptors/, 'required = ceil(15000 × 1.25) + 64');
    assert.match(m, /`ulimit -n 18814`/);
    assert.match(m, /`LimitNOFILE=18814`/);
    assert.match(m, /--ulimit nofile=18814:18814/);
    assert.match(m, /Kubernetes/);
    assert.match(m, /lower client\.connection_limit to at most 768/, 'what the current soft limit holds');
    assert.doesNotMatch(m, /hard limit allows/);
  });

  it('when only the soft limit is too low, says to raise it with ulimit -n before starting', () => {
    const err = fdError(() =>
      planConnectionLimit({ connectionLimit: 15_000, fdHeadroom: 1.25 }, limits(1024, 524_288)),
    );
    assert.match(err.message, /soft limit is 1024 \(hard limit 524288\)/);
    assert.match(err.message, /The hard limit allows it: raise the soft limit before starting, with `ulimit -n 18814`/);
    assert.doesNotMatch(err.message, /Kubernetes/);
  });

  it('one descriptor short is too low', () => {
    fdError(() => planConnectionLimit({ connectionLimit: 1000, fdHeadroom: 1.25 }, limits(1313, 1313)));
    assert.equal(planConnectionLimit({ connectionLimit: 1000, fdHeadroom: 1.25 }, limits(1314, 1314)).source, 'config');
  });

  it('with client.connection_limit 0, derives the limit from the soft limit', () => {
    assert.deepEqual(planConnectionLimit({ connectionLimit: 0, fdHeadroom: 1.25 }, limits(10_064, 20_000)), {
      connectionLimit: 8000,
      source: 'fd_limit',
      limits: limits(10_064, 20_000),
      required: 10_064,
      socketCapacity: 8000,
    });
    assert.equal(planConnectionLimit({ connectionLimit: 0, fdHeadroom: 2 }, limits(1024, 1024)).connectionLimit, 480);
  });

  it('with client.connection_limit 0 and an unlimited soft limit, there is no limit', () => {
    const plan = planConnectionLimit({ connectionLimit: 0, fdHeadroom: 1.25 }, limits(Infinity, Infinity));
    assert.equal(plan.connectionLimit, 0);
    assert.equal(plan.source, 'none');
    assert.equal(plan.socketCapacity, 0, 'no bound on pending sockets either');
  });

  it('refuses a soft limit that holds no connection at all', () => {
    const err = fdError(() => planConnectionLimit({ connectionLimit: 0, fdHeadroom: 1.25 }, limits(64, 64)));
    assert.match(err.message, /soft limit is 64 \(hard limit 64\)/);
    assert.match(err.message, /no room for client connections/);
    assert.match(err.message, /`ulimit -n 12564`/);
  });

  it('unknown limits (not Linux): the configured limit, unchecked', () => {
    assert.deepEqual(planConnectionLimit({ connectionLimit: 500, fdHeadroom: 1.25 }, undefined), {
      connectionLimit: 500,
      source: 'unchecked',
      limits: undefined,
      required: 689,
      socketCapacity: 0,
    });
    assert.equal(planConnectionLimit({ connectionLimit: 0, fdHeadroom: 1.25 }, undefined).connectionLimit, 0);
  });
});

describe('fd-limit: applyFdLimit logs', () => {
  it('an info line with the derived limit when client.connection_limit is 0', () => {
    const { log, lines } = captureLog();
    const plan = applyFdLimit({ connectionLimit: 0, fdHeadroom: 1.25 }, log, () => ({ soft: 1024, hard: 1024 }));
    assert.equal(plan.connectionLimit, 768);
    const info = lines.filter((l) => l['level'] === 30);
    assert.equal(info.length, 1);
    assert.equal(
      info[0]?.['msg'],
      'this node can hold about 768 connections with the current open-file limit (ulimit -n 1024); set client.connection_limit to reject beyond that cleanly',
    );
    assert.equal(info[0]?.['connectionLimit'], 768);
  });

  it('only debug lines when the limit is configured and fits, or unknown, or unreadable', () => {
    const { log, lines } = captureLog();
    applyFdLimit({ connectionLimit: 100, fdHeadroom: 1.25 }, log, () => ({ soft: 1024, hard: 1024 }));
    applyFdLimit({ connectionLimit: 100, fdHeadroom: 1.25 }, log, () => undefined);
    const plan = applyFdLimit({ connectionLimit: 100, fdHeadroom: 1.25 }, log, () => {
      throw new Error('EACCES');
    });
    assert.equal(plan.source, 'unchecked');
    assert.ok(lines.length >= 3);
    assert.ok(
      lines.every((l) => l['level'] === 20),
      JSON.stringify(lines),
    );
  });
});

describe('fd-limit: this machine', () => {
  it('reads the real limits (Linux), the same ones a child shell inherits', (t) => {
    if (process.platform !== 'linux') {
      assert.equal(readFdLimits(), undefined);
      t.skip('reads /proc/self/limits, which only Linux has');
      return;
    }
    const limits = readFdLimits();
    assert.ok(limits, 'limits read');
    assert.ok(limits.soft > 0 && limits.soft <= limits.hard, JSON.stringify(limits));
    const sh = spawnSync('sh', ['-c', 'ulimit -Sn; ulimit -Hn'], { encoding: 'utf8' });
    const [soft, hard] = sh.stdout.trim().split('\n');
    const parse = (v: string | undefined) => (v === 'unlimited' ? Infinity : Number(v));
    assert.deepEqual({ soft: parse(soft), hard: parse(hard) }, limits);
    t.diagnostic(`open-file limits: soft ${limits.soft}, hard ${limits.hard}`);
  });

  it('a node without client.connection_limit enforces what the real limit holds', async (t) => {
    if (process.platform !== 'linux') return t.skip('reads /proc/self/limits, which only Linux has');
    const node = new Node(nodeConfig({}), { logger: pino({ level: 'silent' }) });
    await node.start();
    t.after(() => node.shutdown());
    const allowed = connectionsAllowed((readFdLimits() as FdLimits).soft, 1.25);
    assert.equal(node.admission.connectionLimit, allowed === Infinity ? 0 : allowed);
    t.diagnostic(`effective connection limit: ${node.admission.connectionLimit}`);
  });

  it('start() refuses with BW_ERR_FD_LIMIT before listening (injected limits)', async () => {
    const node = new Node(nodeConfig({ client: { connection_limit: 5000 } }), {
      logger: pino({ level: 'silent' }),
      readFdLimits: () => ({ soft: 1000, hard: 1000 }),
    });
    await assert.rejects(node.start(), (err: unknown) => {
      assert.ok(err instanceof BulwarkError);
      assert.equal(err.code, 'BW_ERR_FD_LIMIT');
      assert.match(err.message, /need 6314 file descriptors/);
      return true;
    });
  });

  it('start() derives the admission limit from injected limits', async (t) => {
    const node = new Node(nodeConfig({}), {
      logger: pino({ level: 'silent' }),
      readFdLimits: () => ({ soft: 264, hard: 264 }),
    });
    await node.start();
    t.after(() => node.shutdown());
    assert.equal(node.admission.connectionLimit, 160);
  });

  it('a real `ulimit -n 256` makes a node with client.connection_limit 1000 refuse to start', (t) => {
    if (process.platform !== 'linux') return t.skip('reads /proc/self/limits, which only Linux has');
    const nodeUrl = new URL('../src/node.js', import.meta.url).href;
    const script = `
      import { Node } from ${JSON.stringify(nodeUrl)};
      const node = new Node(${JSON.stringify(nodeConfig({ client: { connection_limit: 1000 } }))});
      try { await node.start(); console.log(JSON.stringify({ started: true })); await node.shutdown(); }
      catch (err) { console.log(JSON.stringify({ code: err.code, message: err.message })); }`;
    // Lowers soft and hard limits for the child only (an unprivileged process may lower both).
    const r = spawnSync(
      'sh',
      ['-c', 'ulimit -n 256 && exec "$0" --input-type=module -e "$1"', process.execPath, script],
      {
        encoding: 'utf8',
        timeout: 20_000,
      },
    );
    assert.equal(r.status, 0, r.stderr);
    const out = JSON.parse(r.stdout.trim().split('\n').at(-1) as string) as { code?: string; message?: string };
    assert.equal(out.code, 'BW_ERR_FD_LIMIT', r.stdout);
    assert.match(out.message ?? '', /soft limit is 256 \(hard limit 256\), but 1000 connections need 1314/);
    assert.match(out.message ?? '', /lower client\.connection_limit to at most 153/);
  });
});

/** nodeConfig is a minimal valid config on a random loopback port, merged with `extra`. */
function nodeConfig(extra: { client?: Record<string, unknown> }): ConfigInput {
  return {
    http_server: { address: '127.0.0.1', port: 0 },
    log: { level: 'silent' },
    client: { token: { hmac_secret_key: 'fd-limit-test-secret-0123456789abcdef' }, ...extra.client },
    http_api: { key: 'fd-limit-test-api-key' },
    drain: { window: '0s' },
  };
}
