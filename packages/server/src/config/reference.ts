/**
 * The configuration reference (`docs/CONFIG.md`), generated from the schema so the two can
 * never drift: every key, its type, default, environment variable and `.describe()` text
 * come from {@link configSchema} via {@link configLeaves} and `z.toJSONSchema`. A test
 * compares the committed file with {@link renderConfigReference}; regenerate it with
 * `npm run docs:config`.
 *
 * Namespace options are documented once: they apply to `channel.without_namespace` and to
 * each entry of `channel.namespaces[]`.
 *
 * @module
 */
import { configLeaves, envPrefix, inputSchema, type ConfigLeaf, type JsonSchemaNode } from './load.js';
import { configSchema } from './schema.js';

/** Keys holding secrets: shown without a default (they have none that would be usable). */
const secretKeys = new Set(['hmac_secret_key', 'key', 'password']);

/**
 * The smallest valid input. Parsed, it tells which string keys are durations (they come out as
 * milliseconds) and gives defaults the JSON Schema leaves out (zod omits `default: []` on the
 * array of namespace objects).
 */
const probeInput = { client: { insecure: true }, http_api: { insecure: true } };

function valueAt(root: unknown, path: readonly string[]): unknown {
  let node = root;
  for (const key of path) {
    if (typeof node !== 'object' || node === null) return undefined;
    node = (node as Record<string, unknown>)[key];
  }
  return node;
}

/** cell escapes text for a Markdown table cell. */
function cell(text: string): string {
  return text.replace(/\|/g, '\\|').replace(/\r?\n/g, ' ');
}

function code(text: string): string {
  return '`' + text + '`';
}

/** renderType describes a key's input type, with its bounds. */
function renderType(node: JsonSchemaNode, isDuration: boolean): string {
  if (isDuration) return 'duration';
  if (node.enum) return `enum: ${node.enum.map((v) => String(v)).join(', ')}`;
  const type = Array.isArray(node.type) ? node.type.join(' or ') : (node.type ?? 'any');
  if (type === 'integer' || type === 'number') {
    const hasMax = node.maximum !== undefined && node.maximum < Number.MAX_SAFE_INTEGER;
    if (node.minimum !== undefined && hasMax) return `${type} (${node.minimum}–${node.maximum})`;
    if (node.minimum !== undefined) return `${type} ≥ ${node.minimum}`;
    if (hasMax) return `${type} ≤ ${node.maximum}`;
    return type;
  }
  if (type === 'string') {
    if (node.pattern) return `string matching ${code(node.pattern)}`;
    if (node.minLength) return 'string, non-empty';
    return 'string';
  }
  if (type === 'array') {
    const item = node.items?.type;
    return item === 'object' ? 'array of objects' : `array of ${typeof item === 'string' ? item : 'any'}`;
  }
  return type;
}

/**
 * renderDefault shows a key's default as it would be written in the config file; `parsed` is
 * the key's value in the parsed minimal config, used when the JSON Schema has no default.
 */
function renderDefault(node: JsonSchemaNode, key: string, parsed: unknown): string {
  if (secretKeys.has(key) && node.type === 'string') return 'none (secret)';
  if (node.default !== undefined) return code(JSON.stringify(node.default));
  if (parsed !== undefined) return code(JSON.stringify(parsed));
  return 'required';
}

interface Row {
  key: string;
  type: string;
  def: string;
  env: string;
  description: string;
}

function table(rows: readonly Row[], withEnv = true): string {
  const head = withEnv
    ? '| Key | Type | Default | Environment | Description |\n| --- | --- | --- | --- | --- |'
    : '| Key | Type | Default | Description |\n| --- | --- | --- | --- |';
  const lines = rows.map((r) =>
    withEnv
      ? `| ${code(r.key)} | ${cell(r.type)} | ${cell(r.def)} | ${r.env ? code(r.env) : '—'} | ${cell(r.description)} |`
      : `| ${code(r.key)} | ${cell(r.type)} | ${cell(r.def)} | ${cell(r.description)} |`,
  );
  return [head, ...lines].join('\n');
}

const intro = `# Configuration reference

<!-- Generated from packages/server/src/config/schema.ts by \`npm run docs:config\`. Do not edit by hand: a test compares this file with the schema. -->

Bulwark reads one JSON file (\`bulwark start --config config.json\`, or the path in
\`BULWARK_CONFIG\`), then applies \`${envPrefix}*\` environment overrides, then validates the
result once. Startup stops on any problem, and every problem is listed with the key it is about:

- unknown keys are errors, at any depth (a typo never silently leaves a setting at its default);
- an unknown \`${envPrefix}*\` variable is an error too;
- secrets have no defaults: \`client.token.hmac_secret_key\` (or an RSA/ECDSA public key) and
  \`http_api.key\` must be set, unless \`client.insecure\` / \`http_api.insecure\` say otherwise.

\`bulwark checkconfig --config config.json --print\` validates without starting and prints the
effective configuration with secrets redacted. \`bulwark genconfig\` writes a minimal config with
fresh random secrets.

Key names and places follow Centrifugo v6 where both have the concept, so a Centrifugo config
works for what both support. Bulwark's own sections are \`node\`, \`protection\`, \`proxy\`, \`drain\` and \`demo\`.

**Environment variables.** The name is \`${envPrefix}\` plus the key path in upper case joined by
\`_\`: \`http_api.key\` → \`${envPrefix}HTTP_API_KEY\`. Booleans take \`true\`/\`false\`/\`1\`/\`0\`;
numbers take decimal text; arrays and objects take JSON
(\`${envPrefix}CHANNEL_NAMESPACES='[{"name":"chat"}]'\`), and string arrays also take a
comma-separated list (\`${envPrefix}CLIENT_ALLOWED_ORIGINS=https://a.example,https://b.example\`).

**Durations** are Go-style strings, as in Centrifugo: \`"500ms"\`, \`"25s"\`, \`"1m30s"\`, \`"720h"\`
(units \`ns\`, \`us\`, \`ms\`, \`s\`, \`m\`, \`h\`; a bare \`"0"\` is zero).

**Rules across keys**, checked after the types:

- in every namespace, \`history_size\` and \`history_ttl\` are set together (both > 0 or both 0);
- \`force_recovery\` / \`allow_recovery\` need history (\`history_size\` and \`history_ttl\`);
- \`channel_regex\` must be a valid regular expression; namespace names are unique;
- \`client.subscription_token.enabled\` needs one of its keys;
- \`client.pong_timeout\` must be shorter than \`client.ping_interval\`;
- an enabled proxy needs an http(s) endpoint: \`client.proxy.connect.enabled\` needs
  \`client.proxy.connect.endpoint\`, a namespace's \`subscribe_proxy_enabled\` needs
  \`channel.proxy.subscribe.endpoint\` (or a \`subscribe_proxy_name\` naming an entry of \`proxies[]\`),
  and so on; with the connect proxy on, \`client.token\` keys are optional (see docs/PROXY.md).
`;

/**
 * renderConfigReference returns the configuration reference as Markdown: one table per
 * top-level section (key path, type, default, environment variable, description), then the
 * namespace options, documented once for `channel.without_namespace` and `channel.namespaces[]`.
 * The output is deterministic: it depends on the schema only.
 */
export function renderConfigReference(): string {
  const root = inputSchema();
  const probe = configSchema.parse(probeInput);
  const leaves = configLeaves();
  const isDuration = (path: readonly string[], node: JsonSchemaNode) =>
    node.type === 'string' && typeof valueAt(probe, path) === 'number';

  const nsPath = ['channel', 'without_namespace'];
  const inNamespace = (leaf: ConfigLeaf) => leaf.path.length > 2 && nsPath.every((p, i) => leaf.path[i] === p);

  const sections = Object.entries(root.properties ?? {});
  const out: string[] = [intro];
  out.push(
    '## Sections\n\n' +
      sections.map(([name]) => `- [${code(name)}](#${name})`).join('\n') +
      '\n- [Namespace options](#namespace-options)\n',
  );

  for (const [name, section] of sections) {
    const rows: Row[] = [];
    for (const leaf of leaves) {
      if (leaf.path[0] !== name || inNamespace(leaf)) continue;
      const key = leaf.path.join('.');
      const last = leaf.path[leaf.path.length - 1] ?? '';
      let description = leaf.schema.description ?? '';
      if (key === 'channel.namespaces') description += ' Each entry: `name` plus the namespace options below.';
      rows.push({
        key,
        type: renderType(leaf.schema, isDuration(leaf.path, leaf.schema)),
        def: renderDefault(leaf.schema, last, valueAt(probe, leaf.path)),
        env: leaf.env,
        description,
      });
    }
    if (name === 'channel') {
      const described = section.properties?.['without_namespace']?.description ?? '';
      rows.unshift({
        key: nsPath.join('.'),
        type: 'object',
        def: code('{}'),
        env: '',
        description: `${described} Holds the namespace options below; each is also settable as \`${envPrefix}CHANNEL_WITHOUT_NAMESPACE_<OPTION>\`.`,
      });
    }
    const about = section.description ? `${section.description}\n\n` : '';
    out.push(`## ${code(name)}\n\n${about}${table(rows)}\n`);
  }

  // Namespace options: the item schema of channel.namespaces (name + options).
  const item = root.properties?.['channel']?.properties?.['namespaces']?.items?.properties ?? {};
  const envOf = new Map(leaves.filter(inNamespace).map((l) => [l.path[l.path.length - 1], l.env]));
  const nsRows: Row[] = Object.entries(item).map(([key, node]) => ({
    key,
    type: renderType(node, isDuration([...nsPath, key], node)),
    def: renderDefault(node, key, key === 'name' ? undefined : valueAt(probe, [...nsPath, key])),
    env: envOf.get(key) ?? '',
    description:
      key === 'name' ? `${node.description ?? ''} Only in \`channel.namespaces[]\`.` : (node.description ?? ''),
  }));
  out.push(
    '## Namespace options\n\n' +
      'A channel `<namespace>:<rest>` takes the options of the entry of `channel.namespaces[]` with that `name`; ' +
      'a channel without a namespace takes the options of `channel.without_namespace` (`:` is the default ' +
      '`channel.namespace_boundary`). A channel whose namespace is not ' +
      'configured is refused (error 102, unknown channel). The environment column applies to ' +
      '`channel.without_namespace`; namespaces are set from the environment as a whole, as JSON in ' +
      `\`${envPrefix}CHANNEL_NAMESPACES\`.\n\n` +
      table(nsRows) +
      '\n',
  );
  return out.join('\n');
}
