/**
 * A connection's consecutive publishes in flight together (issue 18).
 *
 * A session runs its commands one after another: the next waits for the previous one's
 * outcome. On the memory engine a publish is done within the call, so that costs nothing; on
 * Redis every publish waits for a round trip, and while fan-out keeps the event loop busy a
 * round trip is a whole loop iteration: one publishing connection (a game server's, a bot's)
 * could then publish only a few hundred times a second with the process half idle. Where the
 * engine applies publishes in the order they were started (`Broker.publishesInCallOrder`: one
 * FIFO connection, Redis), a run of publishes is started without waiting, and their order is
 * kept by the engine instead of by the session:
 *
 * - only a plain publish whose path to the engine is synchronous takes part: no publish proxy
 *   (the backend's answer would race), not a map channel (map_publish reads before it writes);
 * - any other command waits until every publish in flight is answered (`settled`), so what a
 *   client does after publishing (history, unsubscribe, an RPC) sees its publications, and
 *   replies leave in the order of the commands as before;
 * - with half of protection.rate_limit.max_pending_commands in flight the connection is not
 *   read until half of them are answered: TCP backpressure, not refusals, for a publisher
 *   faster than Redis answers (a publish in flight is not a command waiting).
 *
 * @module
 */
import { ChannelRules } from '../channel-rules.js';
import { DisconnectCode, disconnect, type Disconnect } from '../protocol/codes.js';
import type { Command } from '../protocol/types.js';
import type { Transport } from '../transport/transport.js';
import type { SessionContext } from './context.js';

/** PipelineSession is the session whose publishes are in flight. */
export interface PipelineSession {
  readonly id: string;
  readonly ctx: SessionContext;
  readonly transport: Pick<Transport, 'pauseReading' | 'resumeReading'>;
  disconnect(d: Disconnect): void;
}

/**
 * commandsFailed ends a connection whose command handling let an error escape (a bug: every
 * handler answers its own errors): logged, and 3004 for this connection only, never an
 * unhandled rejection that would end the process.
 */
export function commandsFailed(session: PipelineSession, err: unknown): void {
  session.ctx.log.error({ err, client: session.id }, 'command handling failed');
  session.disconnect(disconnect(DisconnectCode.ServerError));
}

/** PublishPipeline counts a session's publishes in flight and lets other commands wait for them. */
export class PublishPipeline {
  #inFlight = 0;
  #settled: Promise<void> | undefined;
  #wake: (() => void) | undefined;
  /** The connection is not read while this many publishes are in flight (0: never paused). */
  readonly #highWater: number;
  #paused = false;

  /** `maxPending`: protection.rate_limit.max_pending_commands (0: no limit). */
  constructor(maxPending: number) {
    this.#highWater = maxPending > 0 ? Math.max(1, Math.floor(maxPending / 2)) : 0;
  }

  /**
   * run takes a started publish of `session` (its handling, which answers the client). At half
   * of max_pending_commands in flight the connection stops being read until half of those are
   * answered: a publisher faster than Redis answers is slowed by TCP backpressure, its sends
   * waiting in its own socket, as on the memory engine, instead of being refused (111) and cut
   * off (3013) for commands it sent in good faith. In flight is not waiting: these do not count
   * against max_pending_commands, which bounds the commands queued behind them.
   */
  run(task: Promise<void>, session: PipelineSession): void {
    if (++this.#inFlight === this.#highWater && session.transport.pauseReading !== undefined) {
      this.#paused = true;
      session.transport.pauseReading();
    }
    void task
      .catch((err: unknown) => commandsFailed(session, err))
      .finally(() => {
        this.#inFlight--;
        if (this.#paused && this.#inFlight <= this.#highWater >> 1) {
          this.#paused = false;
          session.transport.resumeReading?.();
        }
        if (this.#inFlight > 0) return;
        const wake = this.#wake;
        this.#settled = this.#wake = undefined;
        wake?.();
      });
  }

  /** settled is undefined with nothing in flight, else a promise of the moment nothing is. */
  settled(): Promise<void> | undefined {
    if (this.#inFlight === 0) return undefined;
    return (this.#settled ??= new Promise<void>((resolve) => (this.#wake = resolve)));
  }
}

/** pipelined tells whether `cmd` may run while the publishes before it are in flight. */
export function pipelined(ctx: SessionContext, cmd: Command): boolean {
  if (cmd.method !== 'publish' || ctx.broker.publishesInCallOrder !== true) return false;
  const req = cmd.req;
  if ((req.type ?? 0) !== 0 || typeof req.channel !== 'string' || req.channel === '') return false;
  let options;
  try {
    options = ctx.rules.resolve(req.channel).options;
  } catch {
    return false; // the publish itself answers the error, in its turn
  }
  return !ChannelRules.isMap(options) && ctx.proxies.channel('publish', options) === undefined;
}
