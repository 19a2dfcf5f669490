/**
 * The capacity model behind `bulwark plan`: a forecast worked out by hand with round
 * coefficients, the directions every plan must move in, the refusals of bad input, the CLI over
 * a real process, and docs/CAPACITY.md's tables against the code.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { coefficientKeys, measuredCoefficients, withOverrides } from '../src/capacity/coefficients.js';
import { forecastSchema, parseForecast } from '../src/capacity/forecast.js';
import { plan } from '../src/capacity/model.js';
import { BulwarkError } from '../src/errors.js';
import { runBulwark } from './helpers/process.js';

/** Round costs, so the expected plan below can be worked out on paper. */
const round = withOverrides(measuredCoefficients, {
  cpuPerConnectUs: 100,
  cpuPerExtraSubscribeUs: 20,
  cpuPerDeliveryUs: 10,
  redisDeliveryFactor: 1,
  cpuPerApiPublishUs: 50,
  cpuPerIdleConnectionUsPerS: 2,
  memoryPerConnectionKib: 8,
  memoryPerExtraSubscriptionKib: 1,
  memoryPerProcessMib: 100,
  redisCommandsPerShardPerS: 100_000,
});

const close = (actual: number, expected: number, what: string) =>
  assert.ok(Math.abs(actual - expected) < 1e-9, `${what}: ${actual} ≠ ${expected}`);

describe('capacity model', () => {
  it('works out a forecast as it is done on paper', () => {
    const p = plan(
      parseForecast({
        peak_ccu: 100_000,
        reconnect_window: 50,
        subscriptions_per_player: 2,
        messages_per_player_per_minute: 6,
        audience: 10,
        history: false,
        cores_per_node: 2,
        target_cpu: 0.5,
      }),
      round,
    );
    // 100,000 × 6 / 60 = 10,000 publications/s, × 10 = 100,000 deliveries/s; 100,000 / 50 s = 2,000 connects/s.
    assert.deepEqual(p.load, {
      connectsPerSecond: 2000,
      subscriptions: 200_000,
      publicationsPerSecond: 10_000,
      deliveriesPerSecond: 100_000,
    });
    close(p.cores.deliveries, 1.0, 'deliveries: 100,000 × 10 µs');
    close(p.cores.publishes, 0.5, 'publishes: 10,000 × 50 µs');
    close(p.cores.idleConnections, 0.2, 'idle: 100,000 × 2 µs/s');
    close(p.cores.connects, 0.24, 'connects: 2,000 × (100 + 20) µs');
    close(p.cores.deploy, 1.94, 'deploy');
    // ⌈1.94 / 0.5⌉ = 4 processes, 2 per machine: 2 machines + 1 spare.
    assert.deepEqual(p.processes, { forCpu: 4, forOpenFiles: 1, total: 4 });
    assert.deepEqual(p.nodes, { forPeak: 2, spare: 1, total: 3, processesPerNode: 2 });
    // Connections: 100,000 × 9 KiB = 878.9 MiB; 4 processes × 100 MiB.
    close(p.memory.totalGib, (100_000 * 9) / 1024 / 1024 + 400 / 1024, 'memory');
    // Redis: 10,000 × (1 PUBLISH + 4 processes reached); no history, no presence: no subscribe work.
    assert.deepEqual(p.redis, { commandsPerSecond: 50_000, shards: 1 });
    assert.deepEqual(p.problems, []);
  });

  it('grows with the load: more players, a wider audience, history and presence never shrink a plan', () => {
    const base = { peak_ccu: 300_000, audience: 30 };
    const p0 = plan(parseForecast(base), measuredCoefficients);
    const more = plan(parseForecast({ ...base, peak_ccu: 600_000 }), measuredCoefficients);
    const wider = plan(parseForecast({ ...base, audience: 300 }), measuredCoefficients);
    const presence = plan(parseForecast({ ...base, presence_share: 1 }), measuredCoefficients);
    const noHistory = plan(parseForecast({ ...base, history: false }), measuredCoefficients);
    assert.ok(more.nodes.total > p0.nodes.total, 'twice the players: more machines');
    assert.ok(
      wider.cores.deliveries > 9 * p0.cores.deliveries,
      'ten times the audience: ~ten times the delivery cores',
    );
    assert.ok(presence.redis.commandsPerSecond > p0.redis.commandsPerSecond, 'presence adds Redis work');
    assert.ok(noHistory.redis.commandsPerSecond < p0.redis.commandsPerSecond, 'history costs Redis work');
  });

  it('sizes by memory when connections outgrow the machines, and by open files when the limit is low', () => {
    const memoryBound = plan(
      parseForecast({
        peak_ccu: 2_000_000,
        reconnect_window: 3600,
        messages_per_player_per_minute: 0,
        memory_per_node: 2,
        cores_per_node: 2,
      }),
      measuredCoefficients,
    );
    // 2,000,000 connections of 3 subscriptions; a 2 GiB machine fills to 80 % with two idle
    // processes and the connections' share.
    const c = measuredCoefficients;
    const connectionKib = c.memoryPerConnectionKib.value + 2 * c.memoryPerExtraSubscriptionKib.value;
    const perNode = 2 * 0.8 - (2 * c.memoryPerProcessMib.value) / 1024;
    assert.equal(memoryBound.nodes.forPeak, Math.ceil((2_000_000 * connectionKib) / 1024 / 1024 / perNode));
    assert.ok(memoryBound.nodes.forPeak > Math.ceil(memoryBound.processes.forCpu / 2), 'memory, not CPU, decides');

    const filesBound = plan(parseForecast({ peak_ccu: 100_000, fd_limit: 20_000 }), measuredCoefficients);
    assert.equal(filesBound.connectionsPerProcessLimit, 15_948, 'as admission computes it: ⌊(20,000 − 64) / 1.25⌋');
    assert.equal(filesBound.processes.forOpenFiles, 7);
    assert.ok(filesBound.processes.total >= 7);
  });

  it('says when the memory engine cannot hold the peak', () => {
    const p = plan(parseForecast({ peak_ccu: 500_000, engine: 'memory', spare_nodes: 0 }), measuredCoefficients);
    assert.equal(p.nodes.total, 1);
    assert.equal(p.redis.shards, 0);
    assert.match(
      p.problems.join('\n'),
      /memory engine runs one process .* needs \d+ process\(es\).*use engine "redis"/,
    );
    const small = plan(parseForecast({ peak_ccu: 1000, engine: 'memory', spare_nodes: 0 }), measuredCoefficients);
    assert.deepEqual(small.problems, []);
  });

  it('refuses a bad forecast, naming every bad key at once', () => {
    assert.throws(
      () => parseForecast({ audience: 0, target_cpu: 2, engine: 'postgres', peek_ccu: 5 }),
      (err: unknown) => {
        assert.ok(err instanceof BulwarkError);
        assert.equal(err.code, 'BW_ERR_PLAN_INPUT');
        assert.match(err.message, /unknown key\(s\) peek_ccu/);
        assert.match(err.message, /peak_ccu: required/);
        assert.match(err.message, /audience: must be at least 1/);
        assert.match(err.message, /target_cpu: must be at most 1/);
        assert.match(err.message, /engine: must be one of "memory", "redis"/);
        return true;
      },
    );
    assert.throws(() => withOverrides(measuredCoefficients, { cpuPerConect: 1 }), /unknown coefficient "cpuPerConect"/);
    assert.throws(() => withOverrides(measuredCoefficients, { cpuPerConnectUs: -1 }), /must be a positive number/);
  });
});

describe('bulwark plan', () => {
  it('prints a plan with its assumptions and coefficients; --json gives the same figures', async () => {
    const text = await runBulwark(['plan', '--peak-ccu', '200000', '--audience', '10']);
    assert.equal(text.exit.code, 0, text.stderr);
    assert.match(text.stdout, /deliveries\/s\s+66,667 \(audience 10\)/);
    assert.match(text.stdout, /machines\s+\d+ × 4 cores/);
    assert.match(text.stdout, /Assumptions\n {2}- a deploy reconnects every player evenly within 60 s/);
    assert.match(text.stdout, new RegExp(`cpuPerConnectUs\\s+${measuredCoefficients.cpuPerConnectUs.value} µs`));
    const json = await runBulwark(['plan', '--peak-ccu', '200000', '--audience', '10', '--json']);
    assert.equal(json.exit.code, 0);
    const parsed = JSON.parse(json.stdout) as ReturnType<typeof plan>;
    assert.equal(parsed.load.deliveriesPerSecond, (200_000 * 2 * 10) / 60);
    assert.deepEqual(
      parsed,
      JSON.parse(
        JSON.stringify({
          ...plan(parseForecast({ peak_ccu: 200_000, audience: 10 }), measuredCoefficients),
          coefficients: measuredCoefficients,
        }),
      ),
    );
  });

  it('reads a forecast file and coefficients file, flags win; exit 1 with problems, 2 with bad input', async (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'bulwark-plan-'));
    t.after(() => rmSync(dir, { recursive: true, force: true }));
    const forecast = join(dir, 'launch.json');
    writeFileSync(forecast, JSON.stringify({ peak_ccu: 50_000, engine: 'memory', spare_nodes: 0, audience: 500 }));
    const coefficients = join(dir, 'ours.json');
    writeFileSync(coefficients, JSON.stringify({ cpuPerDeliveryUs: 5 }));

    const problem = await runBulwark(['plan', '-f', forecast]);
    assert.equal(problem.exit.code, 1, 'the memory engine cannot deliver 416,667/s on one process');
    assert.match(problem.stdout, /Problems\n {2}! the memory engine runs one process/);

    const json = await runBulwark([
      'plan',
      '-f',
      forecast,
      '--coefficients',
      coefficients,
      '--audience',
      '5',
      '--json',
    ]);
    assert.equal(json.exit.code, 0, json.stdout);
    const p = JSON.parse(json.stdout) as ReturnType<typeof plan> & { coefficients: typeof measuredCoefficients };
    assert.equal(p.forecast.audience, 5, 'the flag wins over the file');
    assert.equal(p.coefficients.cpuPerDeliveryUs.value, 5);
    assert.equal(p.coefficients.cpuPerDeliveryUs.source, 'given with --coefficients');

    const bad = await runBulwark(['plan', '--peak-ccu', 'lots']);
    assert.equal(bad.exit.code, 2);
    assert.match(bad.stderr, /^bulwark plan: BW_ERR_PLAN_INPUT: --peak-ccu must be a number, got "lots"\n$/);
    writeFileSync(forecast, '{"peak_ccu": 5,');
    const broken = await runBulwark(['plan', '-f', forecast]);
    assert.equal(broken.exit.code, 2);
    assert.match(broken.stderr, /BW_ERR_PLAN_INPUT: --forecast .*launch\.json: /);
  });
});

describe('docs/CAPACITY.md', () => {
  const doc = readFileSync(new URL('../../../../docs/CAPACITY.md', import.meta.url), 'utf8');
  /** rows returns the first two cells of every table row whose first cell is a `code` name. */
  const rows = (): Map<string, string> =>
    new Map(
      [...doc.matchAll(/^\| `([a-zA-Z_]+)` \| ([^|]+) \|/gm)].map((m) => [m[1] as string, (m[2] as string).trim()]),
    );

  it('lists every coefficient with the value the code uses', () => {
    const documented = rows();
    for (const key of coefficientKeys) {
      assert.equal(documented.get(key), String(measuredCoefficients[key].value), `coefficient ${key}`);
    }
  });

  it('lists every forecast key with its default', () => {
    const documented = rows();
    for (const [key, schema] of Object.entries(forecastSchema.shape)) {
      const result = schema.safeParse(undefined);
      const expected = result.success ? `\`${JSON.stringify(result.data)}\`` : '(required)';
      assert.equal(documented.get(key), expected, `forecast key ${key}`);
    }
  });
});
