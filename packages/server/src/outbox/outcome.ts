/**
 * What became of one outbox row's publish, and the classification of a failure: a row that can
 * never be published (its channel, its data, its size) is quarantined at once with a reason;
 * an unreachable engine (or a publish whose outcome is unknown) leaves the row for a later
 * batch and pauses its channel (the idempotency key makes the retry safe); any other error is
 * one failed attempt, and the row is quarantined after outbox.max_attempts of them.
 *
 * @module
 */
import { EngineUnavailableError } from '../engine/errors.js';
import { ErrorCode, ProtocolError } from '../protocol/codes.js';

/** QuarantineReason is why a row was quarantined (the quarantine_reason column and metric label). */
export type QuarantineReason = 'bad_channel' | 'bad_data' | 'too_large' | 'publish_failed';

/** Outcome is what one row's publish came to. */
export type Outcome =
  | { kind: 'published' }
  | { kind: 'quarantine'; reason: QuarantineReason; detail: string }
  | { kind: 'engine'; detail: string }
  | { kind: 'attempt'; detail: string };

/** quarantine is a row that can never be published as it is. */
export function quarantine(reason: QuarantineReason, detail: string): Outcome {
  return { kind: 'quarantine', reason, detail };
}

/** classifyChannelError is the outcome of a channel the rules refused (invalid name, unknown namespace). */
export function classifyChannelError(err: unknown): Outcome {
  return quarantine('bad_channel', describe(err));
}

/** classifyPublishError is the outcome of a publish that threw `err`. */
export function classifyPublishError(err: unknown): Outcome {
  if (err instanceof EngineUnavailableError) return { kind: 'engine', detail: err.message };
  if (err instanceof ProtocolError) {
    if (err.code === ErrorCode.LimitExceeded) return quarantine('too_large', describe(err));
    // A map channel (publish takes a key there) or a channel the namespace refuses.
    if (err.code === ErrorCode.BadRequest || err.code === ErrorCode.UnknownChannel) {
      return quarantine('bad_channel', describe(err));
    }
    if (err.temporary) return { kind: 'engine', detail: describe(err) };
  }
  return { kind: 'attempt', detail: describe(err) };
}

/** describe is an error as one line: `<code> <message>` for protocol errors. */
export function describe(err: unknown): string {
  if (err instanceof ProtocolError) return `${err.code} ${err.message}`;
  return err instanceof Error ? err.message : String(err);
}
