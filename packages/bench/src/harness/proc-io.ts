/**
 * Bytes a process passed to read and write system calls, from /proc/<pid>/io (`rchar`,
 * `wchar`). Node writes socket data with write/writev, so for a server `wchar` is the bytes it
 * sent to its sockets (WebSocket framing and HTTP API responses included; with `log.level`
 * warn its own log lines are negligible): what the network would carry, measured at the server.
 *
 * @module
 */
import { readFileSync } from 'node:fs';

/** IoBytes are a process's cumulative read and written bytes. */
export interface IoBytes {
  readBytes: number;
  writtenBytes: number;
}

/** parseProcIo reads `rchar` and `wchar` from the text of /proc/<pid>/io. */
export function parseProcIo(text: string): IoBytes {
  const field = (name: string) => {
    const m = new RegExp(`^${name}:\\s+(\\d+)$`, 'm').exec(text);
    if (!m) throw new Error(`no ${name} in /proc/<pid>/io`);
    return Number(m[1]);
  };
  return { readBytes: field('rchar'), writtenBytes: field('wchar') };
}

/** readIoBytes returns process `pid`'s {@link IoBytes} (Linux; the process must be ours). */
export function readIoBytes(pid: number): IoBytes {
  return parseProcIo(readFileSync(`/proc/${pid}/io`, 'latin1'));
}
