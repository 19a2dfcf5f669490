/**
 * The load clients a comparison scenario can put on Bulwark, by name: what `--format` chooses in
 * `fanout` and `connections`. Each is a {@link SessionClient} (open, connect, subscribe, publish,
 * pushes with the bench markers), so the scenarios never know the transport or format.
 *
 * Adding a transport is one client module implementing {@link SessionClient} and one entry in
 * {@link bulwarkClients}; `--format` then accepts its name, and its column appears next to the
 * others (results key `bulwark-<name>`). HTTP-streaming and SSE (`http_stream`, `sse`) are there.
 *
 * @module
 */
import type { RunningServer } from '../harness/targets.js';
import { HttpStreamClient } from './http-stream-client.js';
import { LeanClient, type PushHandler } from './lean-client.js';
import { ProtobufClient } from './protobuf-client.js';
import { RawSessionClient } from './raw-session-client.js';

/** SessionClient is what the comparison scenarios need of one load-generator connection. */
export interface SessionClient {
  open(): Promise<void>;
  /** Centrifugo connect with a token (a no-op for the raw and Socket.IO protocols). */
  connect(token: string): Promise<unknown>;
  /** Subscribe; `token` is for the reference servers, which authenticate on subscribe. */
  subscribe(channel: string, token?: string): Promise<void>;
  /** Fire-and-forget publish of already-encoded JSON data; replies counted below. */
  publish(channel: string, dataJson: string): void;
  readonly bufferedAmount: number;
  readonly closeCode: number | undefined;
  readonly closeReason: string;
  readonly publishAcks: number;
  readonly publishErrors: number;
  terminate(): void;
}

/** SessionClientOptions configure one connection of any kind. */
export interface SessionClientOptions {
  localAddress?: string;
  onPush?: PushHandler;
  onClose?: (code: number, reason: string) => void;
  /** A publication tags filter (FilterNode) each subscribe carries (WebSocket JSON and Protobuf only). */
  tagsFilter?: object;
  /** The `version` the connect command declares (publication variants choose by it); none when unset. */
  clientVersion?: string;
}

/** The server facts a client needs: where it listens and what it speaks. */
export type ServerAddress = Pick<RunningServer, 'name' | 'wsUrl' | 'port' | 'protocol'>;

/** BulwarkClientKind is one way of connecting to Bulwark: a transport with a format. */
export interface BulwarkClientKind {
  /** Column heading and log label, e.g. "WebSocket, Protobuf". */
  label: string;
  make(server: ServerAddress, opts: SessionClientOptions): SessionClient;
}

/** The ways of connecting to Bulwark, by `--format` name; `json` is the original `bulwark` column. */
export const bulwarkClients = {
  json: {
    label: 'WebSocket, JSON',
    make: (server, opts) => new LeanClient({ url: server.wsUrl, protocol: 'centrifugo', ...opts }),
  },
  protobuf: {
    label: 'WebSocket, Protobuf',
    make: (server, opts) => new ProtobufClient({ url: server.wsUrl, ...opts }),
  },
  http_stream: {
    label: 'HTTP-streaming, JSON',
    make: (server, opts) => new HttpStreamClient({ base: httpBase(server), transport: 'http_stream', ...opts }),
  },
  sse: {
    label: 'SSE, JSON',
    make: (server, opts) => new HttpStreamClient({ base: httpBase(server), transport: 'sse', ...opts }),
  },
} satisfies Record<string, BulwarkClientKind>;

export type BulwarkClientName = keyof typeof bulwarkClients;

/** httpBase is the server's HTTP origin, from its WebSocket URL. */
function httpBase(server: ServerAddress): string {
  const url = new URL(server.wsUrl);
  return `http://${url.host}`;
}

/**
 * parseClientNames reads `--format`: `both` (json and protobuf), `all` (every kind), or a comma-separated list of
 * {@link bulwarkClients} names, in the order given, without repeats.
 */
export function parseClientNames(arg: string): BulwarkClientName[] {
  const known = Object.keys(bulwarkClients);
  const names = arg === 'both' ? ['json', 'protobuf'] : arg === 'all' ? known : arg.split(',').map((s) => s.trim());
  for (const n of names) {
    if (!known.includes(n))
      throw new Error(`--format must be both, all or a list of ${known.join(', ')}; got "${arg}"`);
  }
  return [...new Set(names)] as BulwarkClientName[];
}

/**
 * makeSessionClient makes the client for `server`: the reference servers get a {@link LeanClient}
 * in their own protocol; Bulwark gets the client `kind` names.
 */
export function makeSessionClient(
  server: ServerAddress,
  kind: BulwarkClientName,
  opts: SessionClientOptions = {},
): SessionClient {
  if (server.name !== 'bulwark') return new LeanClient({ url: server.wsUrl, protocol: server.protocol, ...opts });
  return bulwarkClients[kind].make(server, opts);
}

/**
 * ReaderName is how a fan-out subscriber reads its socket (`--reader`): `raw`, the hand-rolled
 * reader on a bare TCP socket ({@link RawSessionClient}, issue 18), or `ws`, the `ws`-library
 * clients above (kept for comparison).
 */
export type ReaderName = 'raw' | 'ws';

/**
 * makeReaderClient makes a subscriber for `server` with `reader`. The raw reader speaks every
 * WebSocket format (raw, Socket.IO, Bulwark JSON and Protobuf); Bulwark's HTTP-streaming and SSE
 * clients are not WebSocket and keep their own client whatever the reader.
 */
export function makeReaderClient(
  server: ServerAddress,
  kind: BulwarkClientName,
  reader: ReaderName,
  opts: SessionClientOptions = {},
): SessionClient {
  if (reader === 'raw' && (server.name !== 'bulwark' || kind === 'json' || kind === 'protobuf')) {
    return new RawSessionClient({
      url: server.wsUrl,
      protocol: server.protocol,
      format: kind === 'protobuf' ? 'protobuf' : 'json',
      ...opts,
    });
  }
  return makeSessionClient(server, kind, opts);
}
