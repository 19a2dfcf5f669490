/**
 * Map subscriptions across real `bulwark start` processes sharing one engine, end to end with
 * real `centrifuge` SDK clients (the scenario is helpers/map-processes.ts): on one Redis (the
 * Redis map broker) and on one PostgreSQL (the PostgreSQL map broker). Runs the built CLI;
 * needs Redis at BULWARK_TEST_REDIS_URL and PostgreSQL at BULWARK_TEST_POSTGRES_URL (each
 * suite skipped without its service, unless BULWARK_REQUIRE_SERVICES=1).
 */
import { after } from 'node:test';
import { mapProcessesScenario } from './helpers/map-processes.js';
import { describePostgres, dropTables, pgUrl, uniqueTablePrefix } from './helpers/postgres.js';
import { describeRedis, redisUrl, removeKeys, uniquePrefix } from './helpers/redis.js';

await describeRedis('map subscriptions across bulwark processes on one Redis', () => {
  mapProcessesScenario((t) => {
    const prefix = uniquePrefix();
    t.after(() => removeKeys(prefix).then(() => undefined));
    return { type: 'redis', redis: { address: [redisUrl], prefix } };
  });
});

await describePostgres('map subscriptions across bulwark processes on one PostgreSQL', () => {
  const prefixes: string[] = [];
  // Once the processes are stopped (a test's own after hooks), so none of them sees its tables go.
  after(() => Promise.all(prefixes.map((p) => dropTables(p))).then(() => undefined));
  mapProcessesScenario(() => {
    const prefix = uniqueTablePrefix();
    prefixes.push(prefix);
    return { type: 'postgresql', postgresql: { dsn: pgUrl, table_prefix: prefix, poll_interval: '200ms' } };
  });
});
