/**
 * Bulwark's `protection` section of the config: admission, file descriptors, command rate
 * limits, load shedding and kill switches.
 *
 * @module
 */
import { z } from 'zod';
import { duration } from './common.js';

/**
 * killSwitchKinds lists what a kill switch may turn off, for validation (in config, the
 * vocabulary of protection/kill-switches.ts, which re-exports it).
 */
export const killSwitchKinds = ['publish', 'rpc', 'read', 'connect', 'proxy'] as const;

/** rateLimit is one token bucket: `rate` commands per second with bursts of `burst`. */
function rateLimit(rate: number, burst: number, what: string) {
  return z
    .strictObject({
      rate: z.number().min(0).default(rate).describe(`${what}: commands per second (0: no limit).`),
      burst: z.number().int().min(1).default(burst).describe(`${what}: bucket size (commands allowed at once).`),
    })
    .prefault({});
}

/** rateLimitClasses is one bucket per method class, with defaults generous for real clients. */
function rateLimitClasses(scope: string) {
  return z
    .strictObject({
      publish: rateLimit(
        scope === 'Per connection' ? 50 : 100,
        scope === 'Per connection' ? 100 : 200,
        `${scope}, publish`,
      ),
      rpc: rateLimit(
        scope === 'Per connection' ? 50 : 100,
        scope === 'Per connection' ? 100 : 200,
        `${scope}, rpc and send`,
      ),
      read: rateLimit(
        scope === 'Per connection' ? 20 : 40,
        scope === 'Per connection' ? 50 : 100,
        `${scope}, history/presence/presence_stats`,
      ),
      subscribe: rateLimit(
        scope === 'Per connection' ? 50 : 100,
        scope === 'Per connection' ? 200 : 400,
        `${scope}, subscribe/unsubscribe/sub_refresh/refresh`,
      ),
    })
    .prefault({})
    .describe(`${scope}: token buckets per method class.`);
}

/** protectionSection is the `protection` section. */
export const protectionSection = z
  .strictObject({
    retry_after_min: duration('1s').describe(
      'Shortest Retry-After advised to a rejected connection (jittered up to retry_after_max).',
    ),
    retry_after_max: duration('10s').describe('Longest Retry-After advised to a rejected connection.'),
    fd_headroom: z
      .number()
      .min(1)
      .default(1.25)
      .describe(
        'File descriptors per connection, as a factor: at start the open-file soft limit (Node.js raises it to the hard limit) must hold ceil(client.connection_limit × this) + 64, else the node refuses to start (BW_ERR_FD_LIMIT, saying what to set). With client.connection_limit 0, floor((limit − 64) / this) becomes the connection limit.',
      ),
    rate_limit: z
      .strictObject({
        connection: rateLimitClasses('Per connection'),
        user: rateLimitClasses('Per user on this node (all of their connections together)'),
        disconnect_after: z
          .number()
          .int()
          .min(0)
          .default(20)
          .describe(
            'A connection refused this many commands in a row (error 111) is disconnected with 3013 (too many requests, reconnect allowed). 0: never disconnect.',
          ),
        max_pending_commands: z
          .number()
          .int()
          .min(0)
          .default(512)
          .describe(
            "Commands one connection may have waiting to be handled (a connection's commands run one at a time, in order; on the Redis engine a run of publishes is in flight together, and with half this many in flight the connection is not read until half of them are answered); more are refused on arrival with error 111 (temporary), so a client pipelining a retry storm cannot queue work the server would do long after the client gave up. Above client.channel_limit, since an SDK resubscribes every channel at once on reconnect. 0 means no limit.",
          ),
      })
      .prefault({})
      .describe('Command rate limits: token buckets per method class. A rate of 0 means no limit.'),
    log_interval: duration('10s').describe(
      'A protection that triggers logs at most once per interval per kind, with the count since the last line (a storm must not become a log storm).',
    ),
    publication_max_size: z
      .number()
      .int()
      .min(0)
      .default(65_536)
      .describe(
        'Largest publication data in bytes (JSON-encoded), from clients (error 106) and the server API (error 106 in the reply). Every byte is stored in history and written to every subscriber. 0 means no limit.',
      ),
    shedding: z
      .strictObject({
        enabled: z.boolean().default(true).describe('Shed work when the event loop lags (see docs/OPERATIONS.md).'),
        sample_interval: duration('20ms').describe(
          'How often the event-loop lag is sampled; the lag is smoothed over about four samples.',
        ),
        connect_lag: duration('50ms').describe(
          'Smoothed lag over which new connections are refused (HTTP 503, Retry-After; reason overload). Cleared below half of it.',
        ),
        read_lag: duration('100ms').describe(
          'Smoothed lag over which history, presence, presence_stats and rpc commands are also refused (error 111, temporary). Cleared below half of it. Publications to connected clients are never shed.',
        ),
        utilization: z
          .number()
          .min(0)
          .max(1)
          .default(0.8)
          .describe(
            "Event-loop utilization (0–1, smoothed like the lag: the share of the time the loop thread could run that it spent running) the node must also be at for a level to turn on: lag with an idle loop is a neighbour process taking the CPU, not this node's overload, and sheds nothing. A level turns off below three quarters of it. 0 (with min_cpu 0): lag alone decides.",
          ),
        min_cpu: z
          .number()
          .min(0)
          .default(0.25)
          .describe(
            'CPU the loop thread must be using, in cores (smoothed like the lag), for a level to turn on: a node that cannot get this much is starved by neighbour processes, not overloaded by its clients, and refusing players would not help it. A level turns off below three quarters of it. 0: no minimum.',
          ),
      })
      .prefault({})
      .describe('Load shedding on event-loop lag: new connections first, then reads and RPC.'),
    kill_switches: z
      .array(
        z.strictObject({
          kind: z
            .enum(killSwitchKinds)
            .describe('What is switched off: client publish, an rpc method, history/presence reads, new connections.'),
          target: z
            .string()
            .default('*')
            .describe(
              'Namespace (publish, read; "" for channels without one), rpc method, proxy target, or "*" for all.',
            ),
          reason: z.string().min(1).describe('Told to the clients refused.'),
        }),
      )
      .default([])
      .describe(
        'Kill switches on from start. More are set at runtime with the kill_switch_set API method (held in memory, cluster-wide; see docs/OPERATIONS.md).',
      ),
  })
  .prefault({})
  .describe(
    'Bulwark: launch-day protections (admission, file descriptors, rate limits, load shedding, kill switches).',
  );
