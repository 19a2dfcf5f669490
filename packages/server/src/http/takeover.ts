/**
 * Taking a streaming response's socket over from Node's HTTP server once its head is sent, as
 * the server itself hands a socket over at a WebSocket upgrade (`ws` then owns it).
 *
 * Why by hand: an HTTP-streaming or SSE response lives as long as its client, and while Node's
 * server holds it, it keeps for every such connection the IncomingMessage and ServerResponse
 * with their headers and rendered head, about ten per-connection bound listeners and wrappers
 * on the socket, its state, and the native HTTPParser (with its header slots, about 2 KiB
 * outside the JS heap): 5.9 KiB of an idle stream's 12.9 KiB (docs/BENCHMARKS.md, issue 13). An
 * upgraded WebSocket frees all of it. Node offers no public way to do the same for a response
 * (`detachSocket` detaches the response only), so this repeats the upgrade path of Node's
 * `_http_server.js` (`onParserExecuteCommon`): the server's socket listeners come off, the
 * parser stops consuming the socket and goes back to the server's pool (`freeParser`, the same
 * call the upgrade makes), and the socket's listener wrappers are removed.
 *
 * Every step is checked before anything changes: when this Node's server does not look as
 * expected (another Node version, a request pipelined behind this one, a socket already
 * gone, a request not yet complete), nothing is touched, `undefined` is returned and the response keeps serving the stream.
 * After a takeover the socket belongs to the caller: it must listen for 'error', read (or
 * refuse) what the client sends, frame the body itself (chunked unless the response says
 * otherwise: {@link TakenSocket.chunked}) and close the connection when the stream ends —
 * the server will not reuse it for another request, nor time it out, nor close it in
 * `closeAllConnections`: the stream's session closes it (drain, shutdown), as a WebSocket's.
 *
 * @module
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createRequire } from 'node:module';
import type { Socket } from 'node:net';

/** The parts of Node's HTTPParser the takeover touches (lib/_http_common.js). */
interface HttpParser {
  incoming: IncomingMessage | null;
  _consumed: boolean;
  unconsume(): void;
  finish(): unknown;
}

/** A socket as Node's HTTP server leaves it: its parser and the response being written on it. */
type ServerSocket = Socket & { parser?: HttpParser | null; _httpMessage?: unknown };

/** The listeners Node's HTTP server puts on each connection's socket, by event and function name. */
const serverListeners: ReadonlyArray<readonly [event: string, name: string]> = [
  ['data', 'bound socketOnData'],
  ['end', 'bound socketOnEnd'],
  ['close', 'bound socketOnClose'],
  ['drain', 'bound socketOnDrain'],
  ['error', 'socketOnError'],
  ['timeout', 'socketOnTimeout'],
  ['pause', 'onSocketPause'],
  ['resume', 'onSocketResume'],
];

/** The socket methods the server wraps per connection (to stop consuming on a 'data' listener). */
const wrappedMethods = ['on', 'addListener', 'prependListener', 'setEncoding'] as const;

type FreeParser = (parser: HttpParser, req: IncomingMessage, socket: Socket) => void;

/** Node's `freeParser`, from its legacy public `_http_common` module; undefined if it is gone. */
const freeParser: FreeParser | undefined = (() => {
  try {
    const common = createRequire(import.meta.url)('_http_common') as { freeParser?: unknown };
    return typeof common.freeParser === 'function' ? (common.freeParser as FreeParser) : undefined;
  } catch {
    return undefined;
  }
})();

/** TakenSocket is a streaming response's socket, now the caller's. */
export interface TakenSocket {
  readonly socket: Socket;
  /** The head announced `Transfer-Encoding: chunked`; otherwise the body ends with the connection (HTTP/1.0). */
  readonly chunked: boolean;
}

/**
 * takeOver sends `res`'s head (set with writeHead) and takes its socket from the HTTP server;
 * undefined when it cannot, and then `res` is untouched apart from its head being sent.
 */
export function takeOver(req: IncomingMessage, res: ServerResponse): TakenSocket | undefined {
  res.flushHeaders();
  const socket = req.socket as ServerSocket;
  const parser = socket.parser;
  if (freeParser === undefined || parser == null || socket.destroyed || socket._httpMessage !== res) return undefined;
  // Another request's headers already parsed behind this one (pipelining): it is the server's.
  if (parser.incoming !== req) return undefined;
  // Before the request is complete (a 'request' listener that did not await runs inside the
  // parse), the parser would put itself back on the server's connection list as the message
  // completes, and server.close() would trip over it (a parser without a socket).
  if (!req.complete) return undefined;
  const found: Array<readonly [string, (...args: unknown[]) => void]> = [];
  for (const [event, name] of serverListeners) {
    const fns = socket.listeners(event).filter((fn) => fn.name === name);
    if (fns.length !== 1) return undefined;
    found.push([event, fns[0] as (...args: unknown[]) => void]);
  }
  for (const method of wrappedMethods) if (!Object.hasOwn(socket, method)) return undefined;

  // From here on as the upgrade path does it, in its order.
  res.detachSocket(socket);
  for (const [event, fn] of found) socket.removeListener(event, fn);
  for (const method of wrappedMethods) Reflect.deleteProperty(socket, method);
  if (parser._consumed) parser.unconsume();
  parser._consumed = false;
  parser.finish();
  freeParser(parser, req, socket);
  return { socket, chunked: res.chunkedEncoding };
}
