/**
 * ProxyCallError: a proxy call that got no usable answer from the backend. It never reaches a
 * client as such: the HTTP proxy client logs it, counts it, and answers the client with error
 * 100 (temporary), so well-behaved SDKs back off and retry.
 *
 * @module
 */

/**
 * ProxyFailureKind says why a call failed, as counted in `bulwark_proxy_calls_total{result}`:
 * - `timeout`: no complete answer within the proxy's `timeout`;
 * - `unavailable`: the request could not be sent or the connection broke (backend down);
 * - `http_error`: the backend answered with an HTTP status other than 200;
 * - `malformed`: the body is not JSON, too large, or not the documented response shape.
 */
export type ProxyFailureKind = 'timeout' | 'unavailable' | 'http_error' | 'malformed';

/** ProxyCallError is a failed proxy call, with its {@link ProxyFailureKind}. */
export class ProxyCallError extends Error {
  readonly kind: ProxyFailureKind;
  constructor(kind: ProxyFailureKind, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'ProxyCallError';
    this.kind = kind;
  }
}
