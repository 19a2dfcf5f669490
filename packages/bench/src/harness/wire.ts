/**
 * The wire protocols the bench's servers speak and its clients talk: named here, below both the
 * server launcher (harness/targets.ts) and the load clients (load/lean-client.ts), so that
 * neither has to import the other.
 *
 * @module
 */

/** WireProtocol selects what the client speaks. */
export type WireProtocol = 'centrifugo' | 'raw' | 'socketio';

/**
 * SOCKETIO_WS_PATH is the path (with query) a Socket.IO server accepts a WebSocket on directly,
 * without the HTTP long-polling handshake first: Engine.IO protocol 4, websocket transport.
 */
export const SOCKETIO_WS_PATH = '/socket.io/?EIO=4&transport=websocket';
