/**
 * A board subscriber for the delta scenario: one WebSocket to Bulwark in JSON or Protobuf that
 * connects, subscribes to one channel with or without delta compression (`delta: "fossil"`),
 * and counts what reaches it — WebSocket bytes (payload plus frame header, as they cross the
 * wire unmasked from the server), publications, and in JSON how many came as deltas. It never
 * decodes a payload: what it measures is the server's side, and the tests check the contents.
 *
 * @module
 */
import WebSocket from 'ws';
import { PendingReplies } from './pending-replies.js';
import { connectCommand, readReplies, subscribeCommand, type ReplyEvents } from './protobuf-client.js';

/** BoardFormat is the client protocol's format. */
export type BoardFormat = 'json' | 'protobuf';

/** wsHeaderBytes is the size of an unmasked server frame's header for a payload of `n` bytes. */
export function wsHeaderBytes(n: number): number {
  return n < 126 ? 2 : n < 65_536 ? 4 : 10;
}

/** BoardSubscriber is one counting subscriber. */
export class BoardSubscriber {
  /** WebSocket bytes received (payload + frame header). */
  bytes = 0;
  /** Publications received. */
  pubs = 0;
  /** Publications received as deltas (JSON only: Protobuf is not decoded that far). */
  deltas = 0;
  closed = false;
  private readonly ws: WebSocket;
  private readonly opened: Promise<void>;
  private readonly pending = new PendingReplies<number, undefined>();
  private readonly events: ReplyEvents;

  constructor(
    url: string,
    private readonly format: BoardFormat,
  ) {
    this.ws = new WebSocket(format === 'protobuf' ? `${url}?format=protobuf` : url, { perMessageDeflate: false });
    this.opened = new Promise((resolve, reject) => {
      this.ws.once('open', () => resolve());
      this.ws.once('close', (code: number) => reject(new Error(`could not open ${url}: closed with ${code}`)));
    });
    this.opened.catch(() => undefined);
    // A refused upgrade (503) or a reset: `opened` rejects with the close that follows.
    this.ws.on('error', () => undefined);
    this.events = {
      onOtherPush: () => this.pubs++,
      onPing: () => this.ws.send(new Uint8Array([0])),
      onReply: (id, error) => this.pending.settle(id, error, undefined),
    };
    this.ws.on('message', (data: Buffer) => {
      this.bytes += data.length + wsHeaderBytes(data.length);
      if (this.format === 'protobuf') readReplies(data, this.events);
      else this.readJson(data.toString('utf8'));
    });
    this.ws.on('close', () => {
      this.closed = true;
      this.pending.rejectAll(new Error('connection closed'));
    });
  }

  /** start connects with `token` and subscribes to `channel`, with delta compression when `delta`. */
  async start(token: string, channel: string, delta: boolean): Promise<void> {
    await this.opened;
    const json = this.format === 'json';
    const connected = this.pending.wait(1, 15_000);
    this.ws.send(json ? JSON.stringify({ id: 1, connect: { token } }) : connectCommand(1, token));
    await connected;
    const subscribed = this.pending.wait(2, 15_000);
    const d = delta ? 'fossil' : undefined;
    this.ws.send(
      json ? JSON.stringify({ id: 2, subscribe: { channel, delta: d } }) : subscribeCommand(2, channel, undefined, d),
    );
    await subscribed;
  }

  terminate(): void {
    this.ws.terminate();
  }

  /** readJson counts the publications of a JSON frame and answers pings; replies settle by id. */
  private readJson(text: string): void {
    for (const line of text.split('\n')) {
      if (line === '{}') this.ws.send('{}');
      else if (line.startsWith('{"push":')) {
        if (!line.includes('"pub":')) continue;
        this.pubs++;
        // In delta mode data is a JSON string, so the flag cannot appear inside it unescaped.
        if (line.endsWith(',"delta":true}}}')) this.deltas++;
      } else if (line.startsWith('{"id":')) {
        const reply = JSON.parse(line) as { id: number; error?: { code: number; message: string } };
        this.pending.settle(reply.id, reply.error, undefined);
      }
    }
  }
}
