/**
 * Bulwark as a library: embed a realtime server speaking the Centrifugo client protocol v2
 * in a Node.js game backend.
 *
 * @example
 * ```ts
 * import { Node, signConnectionToken } from 'bulwark';
 * const node = new Node({ client: { token: { hmac_secret_key: secret } }, http_api: { key: apiKey } });
 * await node.start();
 * const token = await signConnectionToken({ secret, user: 'player-42', ttlSeconds: 3600 });
 * ```
 *
 * @module
 */
export { Node, type NodeOptions, type NodePublishOptions } from './node.js';
export { loadConfig, redactConfig, type ConfigSources } from './config/load.js';
export { configSchema, type Config, type ConfigInput, type ChannelOptions } from './config/schema.js';
export { BulwarkError, errorCodes, type BulwarkErrorCode } from './errors.js';
export {
  DisconnectCode,
  DisconnectError,
  ErrorCode,
  ProtocolError,
  UnsubscribeCode,
  disconnect,
  isReconnectAllowed,
  type Disconnect,
} from './protocol/codes.js';
export type { ClientInfo, Publication, StreamPosition, RawJSON } from './protocol/types.js';
export type { Broker, BrokerEventHandler, HistoryQuery, HistoryResult, PublishOptions } from './engine/broker.js';
export type { PresenceManager, PresenceStats } from './engine/presence.js';
export { EngineOutcomeUnknownError, EngineUnavailableError } from './engine/errors.js';
export { MemoryBroker, type MemoryBrokerOptions } from './engine/broker-memory.js';
export { MemoryPresenceManager, type MemoryPresenceOptions } from './engine/presence-memory.js';
export type { RpcHandler, RpcContext, MessageHandler } from './client/context.js';
export { TokenVerifier } from './auth/token-verifier.js';
export { signConnectionToken, signSubscriptionToken } from './auth/token-signer.js';
export { version } from './version.js';
