/**
 * Loading the configuration: a JSON file, then `BULWARK_*` environment overrides, then one
 * validation that reports every problem at once, naming each key. Nothing starts until this
 * succeeds (incident 3: a missing secret must stop startup, not become an empty password).
 *
 * Environment names are the key path in upper case joined by `_`, e.g. `http_api.key` →
 * `BULWARK_HTTP_API_KEY`, `client.token.hmac_secret_key` → `BULWARK_CLIENT_TOKEN_HMAC_SECRET_KEY`.
 * Arrays and objects take JSON (`BULWARK_CHANNEL_NAMESPACES='[{"name":"chat"}]'`); string arrays
 * also take a comma-separated list. An unknown `BULWARK_*` variable is an error (a typo must not
 * silently leave a setting at its default).
 *
 * @module
 */
import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { jsonErrorPlace, plainIssue } from './issue-words.js';
import { BulwarkError } from '../errors.js';
import { formatDuration } from '../util/duration.js';
import { configSchema, type Config } from './schema.js';

/** Variables starting with this prefix configure Bulwark. */
export const envPrefix = 'BULWARK_';

/**
 * Environment variables that are not config keys: read by the CLI (BULWARK_CONFIG; the
 * worker number the primary gives each --workers process) and by the test suites.
 */
const nonConfigEnv = new Set([
  'BULWARK_CONFIG',
  'BULWARK_WORKER_SLOT',
  'BULWARK_REQUIRE_SERVICES',
  'BULWARK_TEST_REDIS_URL',
]);

/** JsonSchemaNode is the part of a JSON Schema node Bulwark reads (env parsing, docs, printing). */
export interface JsonSchemaNode {
  type?: string | string[];
  properties?: Record<string, JsonSchemaNode>;
  items?: JsonSchemaNode;
  default?: unknown;
  description?: string;
  enum?: unknown[];
  minimum?: number;
  maximum?: number;
  minLength?: number;
  pattern?: string;
}

/** ConfigLeaf describes one settable key: its path, env name and input JSON schema. */
export interface ConfigLeaf {
  path: string[];
  env: string;
  schema: JsonSchemaNode;
}

let leavesCache: ConfigLeaf[] | undefined;
let inputSchemaCache: JsonSchemaNode | undefined;

/** inputSchema is the JSON Schema of what a config file may contain (computed once). */
export function inputSchema(): JsonSchemaNode {
  inputSchemaCache ??= z.toJSONSchema(configSchema, { io: 'input', unrepresentable: 'any' }) as JsonSchemaNode;
  return inputSchemaCache;
}

/** configLeaves lists every settable key of the schema (objects are walked; arrays are leaves). */
export function configLeaves(): ConfigLeaf[] {
  if (leavesCache) return leavesCache;
  const root = inputSchema();
  const out: ConfigLeaf[] = [];
  const walk = (node: JsonSchemaNode, path: string[]) => {
    if (node.type === 'object' && node.properties) {
      for (const [key, child] of Object.entries(node.properties)) walk(child, [...path, key]);
      return;
    }
    out.push({ path, env: envPrefix + path.join('_').toUpperCase(), schema: node });
  };
  walk(root, []);
  leavesCache = out;
  return out;
}

function parseEnvValue(raw: string, leaf: ConfigLeaf): unknown {
  const type = leaf.schema.type;
  switch (type) {
    case 'boolean':
      if (/^(true|1)$/i.test(raw)) return true;
      if (/^(false|0)$/i.test(raw)) return false;
      throw new Error(`expected true/false/1/0, got "${raw}"`);
    case 'integer':
    case 'number': {
      const n = Number(raw);
      if (raw.trim() === '' || !Number.isFinite(n)) throw new Error(`expected a number, got "${raw}"`);
      return n;
    }
    case 'array': {
      const trimmed = raw.trim();
      if (trimmed.startsWith('[')) return JSON.parse(trimmed) as unknown;
      if (leaf.schema.items?.type === 'string') return trimmed === '' ? [] : trimmed.split(',').map((s) => s.trim());
      throw new Error('expected a JSON array');
    }
    case 'object': {
      // A map of strings (e.g. a proxy's http.static_headers): JSON, as Centrifugo takes it.
      const parsed: unknown = JSON.parse(raw.trim());
      if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
        throw new Error('expected a JSON object');
      }
      return parsed;
    }
    default:
      return raw;
  }
}

function setPath(target: Record<string, unknown>, path: string[], value: unknown): void {
  let node = target;
  for (const key of path.slice(0, -1)) {
    const next = node[key];
    if (typeof next !== 'object' || next === null || Array.isArray(next)) node[key] = {};
    node = node[key] as Record<string, unknown>;
  }
  node[path[path.length - 1] as string] = value;
}

/** formatIssuePath renders a zod issue path as a config key (`channel.namespaces[0].name`). */
function formatIssuePath(path: PropertyKey[]): string {
  let out = '';
  for (const p of path) {
    if (typeof p === 'number' || /^\d+$/.test(String(p))) out += `[${String(p)}]`;
    else out += out ? `.${String(p)}` : String(p);
  }
  return out || '(root)';
}

/** ConfigSources are the inputs of {@link loadConfig}. */
export interface ConfigSources {
  /** Path of a JSON config file; omitted means defaults plus environment only. */
  file?: string;
  /** Already-parsed file contents (used instead of `file`, e.g. by library users). */
  object?: unknown;
  /** Environment to read `BULWARK_*` overrides from; defaults to none. */
  env?: NodeJS.ProcessEnv;
  /** Final overrides applied after env (CLI flags), as key paths. */
  overrides?: Array<{ path: string[]; value: unknown }>;
}

/**
 * loadConfig reads, merges and validates the configuration. It throws a BulwarkError
 * (`BW_ERR_CONFIG_FILE`, `BW_ERR_CONFIG_ENV` or `BW_ERR_CONFIG_INVALID`) whose message lists
 * every problem, one per line, each starting with the key it is about.
 */
export function loadConfig(sources: ConfigSources = {}): Readonly<Config> {
  let input: Record<string, unknown> = {};
  if (sources.object !== undefined) {
    if (typeof sources.object !== 'object' || sources.object === null || Array.isArray(sources.object)) {
      throw new BulwarkError('BW_ERR_CONFIG_INVALID', 'config must be a JSON object');
    }
    input = structuredClone(sources.object) as Record<string, unknown>;
  } else if (sources.file) {
    let text: string;
    try {
      text = readFileSync(sources.file, 'utf8');
    } catch (err) {
      throw new BulwarkError(
        'BW_ERR_CONFIG_FILE',
        `cannot read config file ${sources.file}: ${(err as Error).message}`,
      );
    }
    try {
      input = JSON.parse(text) as Record<string, unknown>;
    } catch (err) {
      const message = (err as Error).message;
      const place = jsonErrorPlace(text, message);
      throw new BulwarkError(
        'BW_ERR_CONFIG_FILE',
        `config file ${sources.file} is not valid JSON${place ? ` at ${place}` : ''}: ${message}`,
      );
    }
    if (typeof input !== 'object' || input === null || Array.isArray(input)) {
      throw new BulwarkError('BW_ERR_CONFIG_FILE', `config file ${sources.file} must hold a JSON object`);
    }
  }

  const envProblems: string[] = [];
  const byEnv = new Map(configLeaves().map((leaf) => [leaf.env, leaf]));
  for (const [name, raw] of Object.entries(sources.env ?? {})) {
    if (!name.startsWith(envPrefix) || raw === undefined || nonConfigEnv.has(name)) continue;
    const leaf = byEnv.get(name);
    if (!leaf) {
      envProblems.push(`${name}: unknown environment variable (no such config key)`);
      continue;
    }
    try {
      setPath(input, leaf.path, parseEnvValue(raw, leaf));
    } catch (err) {
      envProblems.push(`${name} (${leaf.path.join('.')}): ${(err as Error).message}`);
    }
  }
  if (envProblems.length > 0) {
    throw new BulwarkError('BW_ERR_CONFIG_ENV', `invalid environment:\n  ${envProblems.join('\n  ')}`);
  }
  for (const { path, value } of sources.overrides ?? []) setPath(input, path, value);

  const result = configSchema.safeParse(input);
  if (!result.success) {
    const lines = result.error.issues.map((issue) => {
      const key = formatIssuePath(issue.path);
      if (issue.code === 'unrecognized_keys') {
        return issue.keys.map((k) => `${key === '(root)' ? k : `${key}.${k}`}: unknown key`).join('\n  ');
      }
      return `${key}: ${plainIssue(issue)}`;
    });
    throw new BulwarkError('BW_ERR_CONFIG_INVALID', `invalid configuration:\n  ${lines.join('\n  ')}`);
  }
  return deepFreeze(result.data);
}

function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null) {
    for (const v of Object.values(value)) deepFreeze(v);
    Object.freeze(value);
  }
  return value;
}

/**
 * toConfigInput turns a validated config back into file form: durations (numbers of ms
 * where the file holds a string) become Go-style strings again, so printed configs load back.
 */
export function toConfigInput(config: unknown, schema: JsonSchemaNode = inputSchema()): unknown {
  if (Array.isArray(config)) return config.map((v) => (schema.items ? toConfigInput(v, schema.items) : v));
  if (typeof config === 'object' && config !== null) {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(config)) {
      const child = schema.properties?.[k];
      out[k] = child ? toConfigInput(v, child) : v;
    }
    return out;
  }
  if (typeof config === 'number' && schema.type === 'string') return formatDuration(config);
  return config;
}

const secretKeys = new Set(['hmac_secret_key', 'key', 'password', 'secret', 'dsn', 'token']);

/** redactConfig returns a copy of `config` with every secret replaced, for printing. */
export function redactConfig(config: unknown): unknown {
  if (Array.isArray(config)) return config.map(redactConfig);
  if (typeof config !== 'object' || config === null) return config;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(config)) {
    out[k] = secretKeys.has(k) && typeof v === 'string' && v !== '' ? '<redacted>' : redactConfig(v);
  }
  return out;
}
