/**
 * The node's default logger: pino, JSON lines on stdout, with the fields pino writes itself
 * (`level`, `time`, `pid`, `hostname`, `msg`) protected. A log call whose fields carry one of
 * those names would write the key twice, and log pipelines read the last one: a protection
 * event's `level: "connect"` would replace the severity. Such a field is renamed with a
 * trailing underscore instead. Log calls in Bulwark never do this (a test parses every line
 * the suites produce); this is the guard for what a test cannot see.
 *
 * @module
 */
import { pino, type DestinationStream, type Logger } from 'pino';

/** The fields pino writes on every line. */
export const pinoFields: readonly string[] = ['level', 'time', 'pid', 'hostname', 'msg'];

/** protectPinoFields renames fields that would shadow pino's own (`level` → `level_`). */
export function protectPinoFields(fields: Record<string, unknown>): Record<string, unknown> {
  let out: Record<string, unknown> | undefined;
  for (const key of pinoFields) {
    if (!Object.hasOwn(fields, key)) continue;
    out ??= { ...fields };
    out[`${key}_`] = out[key];
    delete out[key];
  }
  return out ?? fields;
}

/** defaultLogger makes the node's logger at `level`, writing JSON to stdout (or `destination`). */
export function defaultLogger(level: string, destination?: DestinationStream): Logger {
  const options = { level, base: { service: 'bulwark' }, formatters: { log: protectPinoFields } };
  return destination === undefined ? pino(options) : pino(options, destination);
}
