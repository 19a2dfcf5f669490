/**
 * The Protobuf format as a Codec (the `centrifuge-protobuf` WebSocket subprotocol, or
 * `?format=protobuf`): binary frames of varint-length-delimited messages — `Command`s from
 * the client (protobuf-decode.ts), `Reply`s to it. Messages are built and serialised by
 * `@bufbuild/protobuf` from the code generated from proto/client.proto.
 *
 * Payloads are JSON inside Bulwark (RawJSON); a Protobuf client receives their UTF-8 bytes,
 * as Centrifugo's Protobuf clients receive data published as JSON.
 *
 * @module
 */
import { create, toBinary } from '@bufbuild/protobuf';
import { BinaryWriter } from '@bufbuild/protobuf/wire';
import type { Codec } from './codec.js';
import { decodeProtobufFrame } from './protobuf-decode.js';
import {
  ReplySchema,
  type ClientInfoSchema,
  type ConnectResultSchema,
  type ConnectSchema,
  type PublicationSchema,
  type PushSchema,
  type Reply as PbReply,
  type SubscribeResultSchema,
} from './gen/client_pb.js';
import type { MessageInitShape } from '@bufbuild/protobuf';
import type { ClientInfo, ConnectResult, Publication, Push, RawJSON, Reply, SubscribeResult } from './types.js';

type Init<T extends Parameters<typeof create>[0]> = MessageInitShape<T>;

const noBytes = new Uint8Array(0);

/** bytes are a JSON payload's UTF-8 bytes (none when absent). */
function bytes(raw: RawJSON | undefined): Uint8Array {
  return raw === undefined ? noBytes : Buffer.from(raw, 'utf8');
}

function clientInfo(i: ClientInfo): Init<typeof ClientInfoSchema> {
  return { user: i.user, client: i.client, connInfo: bytes(i.conn_info), chanInfo: bytes(i.chan_info) };
}

function publication(p: Publication): Init<typeof PublicationSchema> {
  return {
    data: p.payload ?? bytes(p.data),
    delta: p.delta,
    info: p.info === undefined ? undefined : clientInfo(p.info),
    offset: BigInt(p.offset),
    tags: p.tags,
    time: p.time === undefined ? undefined : BigInt(p.time),
    key: p.key,
    removed: p.removed,
    score: p.score === undefined ? undefined : BigInt(p.score),
    version: p.version === undefined ? undefined : BigInt(p.version),
  };
}

function subscribeResult(r: SubscribeResult): Init<typeof SubscribeResultSchema> {
  return {
    expires: r.expires,
    ttl: r.ttl,
    recoverable: r.recoverable,
    epoch: r.epoch,
    publications: r.publications?.map(publication),
    recovered: r.recovered,
    offset: r.offset === undefined ? undefined : BigInt(r.offset),
    positioned: r.positioned,
    data: bytes(r.data),
    wasRecovering: r.was_recovering,
    delta: r.delta,
    type: r.type,
    phase: r.phase,
    cursor: r.cursor,
    state: r.state?.map(publication),
  };
}

function connectResult(r: ConnectResult): Init<typeof ConnectResultSchema> {
  const subs: Record<string, Init<typeof SubscribeResultSchema>> = {};
  for (const [ch, s] of Object.entries(r.subs ?? {})) subs[ch] = subscribeResult(s);
  return {
    client: r.client,
    version: r.version,
    expires: r.expires,
    ttl: r.ttl,
    data: bytes(r.data),
    subs,
    ping: r.ping,
    pong: r.pong,
    session: r.session,
    node: r.node,
    time: r.time === undefined ? undefined : BigInt(r.time),
  };
}

function pushMessage(p: Push): Init<typeof PushSchema> {
  switch (p.type) {
    case 'pub':
      return { channel: p.channel, pub: publication(p.pub) };
    case 'join':
      return { channel: p.channel, join: { info: clientInfo(p.info) } };
    case 'leave':
      return { channel: p.channel, leave: { info: clientInfo(p.info) } };
    case 'unsubscribe':
      return { channel: p.channel, unsubscribe: { code: p.code, reason: p.reason } };
    case 'subscribe': {
      const r = p.result;
      const sub = {
        recoverable: r.recoverable,
        epoch: r.epoch,
        offset: r.offset === undefined ? undefined : BigInt(r.offset),
        positioned: r.positioned,
        data: bytes(r.data),
      };
      return { channel: p.channel, subscribe: sub };
    }
    case 'message':
      return { message: { data: bytes(p.data) } };
    case 'refresh':
      return { refresh: { expires: p.expires, ttl: p.ttl } };
    case 'disconnect':
      return { disconnect: { code: p.code, reason: p.reason, reconnect: p.reconnect } };
    case 'connect':
      // The push Connect has the fields of ConnectResult, numbered alike.
      return { connect: connectResult(p.result) as Init<typeof ConnectSchema> };
  }
}

/** result sets a reply's result field. */
function withResult(id: number, r: Reply): Init<typeof ReplySchema> {
  switch (r.method) {
    case 'connect':
      return { id, connect: connectResult(r.result) };
    case 'subscribe':
      return { id, subscribe: subscribeResult(r.result) };
    case 'unsubscribe':
      return { id, unsubscribe: {} };
    case 'publish':
      return { id, publish: {} };
    case 'ping':
      return { id, ping: {} };
    case 'presence': {
      const presence: Record<string, Init<typeof ClientInfoSchema>> = {};
      for (const [client, info] of Object.entries(r.result)) presence[client] = clientInfo(info);
      return { id, presence: { presence } };
    }
    case 'presence_stats':
      return { id, presenceStats: { numClients: r.result.num_clients, numUsers: r.result.num_users } };
    case 'history': {
      const h = r.result;
      return {
        id,
        history: { publications: h.publications.map(publication), epoch: h.epoch, offset: BigInt(h.offset) },
      };
    }
    case 'rpc':
      return { id, rpc: { data: bytes(r.result.data) } };
    case 'refresh':
      return { id, refresh: r.result };
    case 'sub_refresh':
      return {
        id,
        subRefresh: { expires: r.result.expires, ttl: r.result.ttl, items: r.result.items?.map(publication) },
      };
  }
}

/** encode serialises one Reply with its varint length prefix, as a Buffer. */
// Not sizeDelimitedEncode: it copies the serialised message into a writer and copies it out
// again; here the body is copied once, behind its varint length (the library's writer).
function encode(init: Init<typeof ReplySchema>): Buffer {
  const body = toBinary(ReplySchema, create(ReplySchema, init) as PbReply);
  const length = new BinaryWriter().uint32(body.length).finish();
  return Buffer.concat([length, body]);
}

/** protobufCodec is the Protobuf format of bidirectional connections. */
export const protobufCodec: Codec = {
  format: 'protobuf',
  slot: 1,
  binary: true,
  decode: (frame) => decodeProtobufFrame(frame),
  reply: (id, reply) => encode(withResult(id, reply)),
  error: (id, err) => encode({ id, error: { code: err.code, message: err.message, temporary: err.temporary } }),
  push: (push) => encode({ push: pushMessage(push) }),
  ping: encode({}),
  separator: undefined,
};
