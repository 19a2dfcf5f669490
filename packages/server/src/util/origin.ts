/**
 * Browser origins, parsed and matched as (scheme, host, port), never as raw strings: the
 * `client.allowed_origins` patterns and the same-origin rule of the WebSocket upgrade. A raw
 * string match let `https://*.games.example.com` accept `https://evil.io#.games.example.com`,
 * `https://evil.io?.games.example.com` and `https://evil.io:1@x.games.example.com` (issue 12,
 * item 7): here an Origin is only `scheme://host[:port]` — no user info, path, query or
 * fragment — and a pattern's `*` stands only for whole leading host labels.
 *
 * @module
 */

/** Origin is a parsed origin: lower-case scheme and host (IDN as punycode, IPv6 in brackets), and its port. */
export interface Origin {
  readonly scheme: string;
  readonly host: string;
  /** The port, the scheme's default filled in (`https://a.example` has port "443"); "" when the scheme has none. */
  readonly port: string;
}

/**
 * OriginPattern is one parsed entry of client.allowed_origins: `any` for `"*"`, else a scheme,
 * host and port to equal; with `wildcard`, `host` is a suffix (`.games.example.com`) that one
 * or more whole labels must precede.
 */
export type OriginPattern =
  | { readonly any: true }
  | {
      readonly any: false;
      readonly wildcard: boolean;
      readonly scheme: string;
      readonly host: string;
      readonly port: string;
    };

/** Default ports by scheme: a pattern or Origin without a port means this one. */
const defaultPorts: Readonly<Record<string, string>> = { http: '80', https: '443', ws: '80', wss: '443' };

/**
 * `scheme://authority` and nothing else: no path, query, fragment, user info, backslash or
 * space. Checked before URL parsing, which would otherwise move such parts out of the host.
 */
const originSyntax = /^([a-z][a-z0-9+.-]*):\/\/([^/?#@\\\s]+)$/i;

/** parseOrigin parses an Origin header (or a Host with its scheme); undefined when it is not `scheme://host[:port]`. */
export function parseOrigin(value: string): Origin | undefined {
  const m = originSyntax.exec(value);
  if (m === null) return undefined;
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    return undefined;
  }
  // The syntax check already excludes these; kept so a parser quirk cannot widen a match.
  if (url.username !== '' || url.password !== '' || url.search !== '' || url.hash !== '') return undefined;
  if (url.pathname !== '' && url.pathname !== '/') return undefined;
  if (url.hostname === '') return undefined;
  const scheme = url.protocol.slice(0, -1);
  return { scheme, host: url.hostname, port: url.port !== '' ? url.port : (defaultPorts[scheme] ?? '') };
}

/**
 * parseOriginPattern parses one client.allowed_origins entry: `"*"`, `scheme://host[:port]`,
 * or `scheme://*.host[:port]`. Returns a string saying what is wrong when it is none of these
 * (config validation shows it).
 */
export function parseOriginPattern(pattern: string): OriginPattern | string {
  if (pattern === '*') return { any: true };
  const m = originSyntax.exec(pattern);
  if (m === null) return 'an origin is scheme://host[:port], without path, query, fragment or user info';
  const authority = m[2] as string;
  const wildcard = authority.startsWith('*.');
  if ((wildcard ? authority.slice(2) : authority).includes('*')) {
    return '"*" stands only for whole leading host labels ("https://*.example.com"), or alone for every origin';
  }
  // The wildcard label is replaced by a plain one to parse, then cut off again.
  const parsed = parseOrigin(wildcard ? `${m[1] as string}://x.${authority.slice(2)}` : pattern);
  if (parsed === undefined) return 'not a valid origin';
  return {
    any: false,
    wildcard,
    scheme: parsed.scheme,
    host: wildcard ? parsed.host.slice(1) : parsed.host,
    port: parsed.port,
  };
}

/** originMatches tells whether a parsed Origin matches a parsed pattern. */
export function originMatches(origin: Origin, pattern: OriginPattern): boolean {
  if (pattern.any) return true;
  if (origin.scheme !== pattern.scheme || origin.port !== pattern.port) return false;
  if (!pattern.wildcard) return origin.host === pattern.host;
  // `.games.example.com` needs a non-empty label run before it; a parsed host holds no `#?@/`.
  return origin.host.length > pattern.host.length && origin.host.endsWith(pattern.host);
}

/** sameOrigin tells whether an Origin is the origin of the request itself: same scheme, host and port. */
export function sameOrigin(origin: Origin, requestScheme: string, requestHost: string | undefined): boolean {
  if (requestHost === undefined || requestHost === '') return false;
  const own = parseOrigin(`${requestScheme}://${requestHost}`);
  return own !== undefined && own.scheme === origin.scheme && own.host === origin.host && own.port === origin.port;
}
