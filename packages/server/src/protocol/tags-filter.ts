/**
 * Publication tags filters: the `FilterNode` tree of Centrifugo v6.4 (the subscribe option `tf`,
 * and Bulwark's server-enforced `server_tags_filter`), checked and compiled once per
 * subscription, then evaluated for every publication of the channel.
 *
 * A tree is leaves (`key`, `cmp`, `val` or `vals`) under `and` / `or` / `not` nodes, with
 * Centrifugo's semantics: `eq`, `neq`, `in`, `nin`, `ex`, `nex`, `sw`, `ew`, `ct`, and the
 * numeric `gt`, `gte`, `lt`, `lte` (a tag that is absent or not a decimal number makes them
 * false). An absent tag reads as "" for `in` / `nin`, as in Centrifugo.
 *
 * Evaluation is on the fan-out path, once per subscriber and publication, so it allocates
 * nothing: the compiled tree holds the operator as a small integer, `vals` as a Set and the
 * numeric operand already normalised; a tag value is compared with it digit by digit in place,
 * as an exact decimal (Number() would allocate a heap number per call, and round).
 *
 * @module
 */
import { ErrorCode, ProtocolError } from './codes.js';

/** FilterNode is the wire shape of a tags filter (JSON object or Protobuf message alike). */
export interface FilterNode {
  op?: string;
  key?: string;
  cmp?: string;
  val?: string;
  vals?: string[];
  nodes?: FilterNode[];
}

/** FilterLimits bound what one subscription's filter may hold (client.tags_filter.*). */
export interface FilterLimits {
  maxDepth: number;
  maxNodes: number;
  maxValues: number;
  maxValueLength: number;
}

const enum Kind {
  And,
  Or,
  Not,
  Eq,
  Neq,
  In,
  Nin,
  Ex,
  Nex,
  Sw,
  Ew,
  Ct,
  Gt,
  Gte,
  Lt,
  Lte,
}

/** Decimal is a numeric operand, normalised: no leading zeros in `int`, no trailing ones in `frac`. */
interface Decimal {
  readonly neg: boolean;
  readonly int: string;
  readonly frac: string;
}

/** CompiledFilter is a checked filter tree, ready to evaluate without allocating. */
export interface CompiledFilter {
  readonly kind: Kind;
  readonly key: string;
  readonly val: string;
  /** The operand of gt/gte/lt/lte; undefined when it is not a number (the comparison is false). */
  readonly num: Decimal | undefined;
  readonly set: ReadonlySet<string> | undefined;
  readonly nodes: readonly CompiledFilter[];
}

const leafKinds: Readonly<Record<string, Kind>> = {
  eq: Kind.Eq,
  neq: Kind.Neq,
  in: Kind.In,
  nin: Kind.Nin,
  ex: Kind.Ex,
  nex: Kind.Nex,
  sw: Kind.Sw,
  ew: Kind.Ew,
  ct: Kind.Ct,
  gt: Kind.Gt,
  gte: Kind.Gte,
  lt: Kind.Lt,
  lte: Kind.Lte,
};

const ZERO = 48;
const NINE = 57;

/**
 * Where a decimal's parts are in a string: an optional sign, digits, an optional `.` and
 * digits (at least one digit in all; no exponent, no spaces). Filled in place by scanDecimal,
 * so the evaluation path scans tag values without allocating.
 */
const scan = { neg: false, intStart: 0, intEnd: 0, fracStart: 0, fracEnd: 0 };

/** scanDecimal fills `scan` for `s`; false when `s` is not a decimal number. */
function scanDecimal(s: string): boolean {
  let i = 0;
  const first = s.charCodeAt(0);
  scan.neg = first === 45; // '-'
  if (first === 45 || first === 43) i = 1; // '-', '+'
  let intStart = i;
  while (i < s.length && s.charCodeAt(i) >= ZERO && s.charCodeAt(i) <= NINE) i++;
  const intEnd = i;
  let fracStart = i;
  let fracEnd = i;
  if (s.charCodeAt(i) === 46) {
    // '.'
    fracStart = ++i;
    while (i < s.length && s.charCodeAt(i) >= ZERO && s.charCodeAt(i) <= NINE) i++;
    fracEnd = i;
  }
  if (i !== s.length || (intEnd === intStart && fracEnd === fracStart)) return false;
  while (intStart < intEnd && s.charCodeAt(intStart) === ZERO) intStart++;
  while (fracEnd > fracStart && s.charCodeAt(fracEnd - 1) === ZERO) fracEnd--;
  if (intStart === intEnd && fracStart === fracEnd) scan.neg = false; // -0 is 0
  scan.intStart = intStart;
  scan.intEnd = intEnd;
  scan.fracStart = fracStart;
  scan.fracEnd = fracEnd;
  return true;
}

/** parseDecimal normalises a filter's numeric operand (at compile time). */
function parseDecimal(s: string): Decimal | undefined {
  if (!scanDecimal(s)) return undefined;
  return { neg: scan.neg, int: s.slice(scan.intStart, scan.intEnd), frac: s.slice(scan.fracStart, scan.fracEnd) };
}

/** compareDecimal compares tag value `s` with `d`: -1, 0, 1, or NaN when `s` is not a number. */
function compareDecimal(s: string, d: Decimal): number {
  if (!scanDecimal(s)) return NaN;
  if (scan.neg !== d.neg) return scan.neg ? -1 : 1;
  const sign = scan.neg ? -1 : 1;
  const intLen = scan.intEnd - scan.intStart;
  if (intLen !== d.int.length) return intLen < d.int.length ? -sign : sign;
  for (let i = 0; i < intLen; i++) {
    const a = s.charCodeAt(scan.intStart + i);
    const b = d.int.charCodeAt(i);
    if (a !== b) return a < b ? -sign : sign;
  }
  const fracLen = scan.fracEnd - scan.fracStart;
  const n = Math.max(fracLen, d.frac.length);
  for (let i = 0; i < n; i++) {
    const a = i < fracLen ? s.charCodeAt(scan.fracStart + i) : ZERO;
    const b = i < d.frac.length ? d.frac.charCodeAt(i) : ZERO;
    if (a !== b) return a < b ? -sign : sign;
  }
  return 0;
}

/** FilterError says why a filter was refused; the caller picks the error code. */
export class FilterError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'FilterError';
  }
}

type Obj = Record<string, unknown>;

function str(o: Obj, field: string, where: string, limits: FilterLimits): string {
  const v = o[field];
  if (v === undefined || v === null) return '';
  if (typeof v !== 'string') throw new FilterError(`${where}.${field}: expected a string`);
  if (v.length > limits.maxValueLength) {
    throw new FilterError(`${where}.${field}: longer than ${limits.maxValueLength} characters`);
  }
  return v;
}

function list(o: Obj, field: string, where: string): unknown[] {
  const v = o[field];
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v)) throw new FilterError(`${where}.${field}: expected an array`);
  return v;
}

/**
 * compileFilter checks a filter tree (its shape, Centrifugo's rules and `limits`) and compiles
 * it. Anything wrong is a FilterError naming the node (`tf.nodes[1].cmp: …`).
 */
export function compileFilter(raw: unknown, limits: FilterLimits, where = 'tf'): CompiledFilter {
  const count = { nodes: 0, values: 0 };
  return compileNode(raw, limits, where, 1, count);
}

function compileNode(
  raw: unknown,
  limits: FilterLimits,
  where: string,
  depth: number,
  count: { nodes: number; values: number },
): CompiledFilter {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    throw new FilterError(`${where}: expected an object`);
  }
  if (depth > limits.maxDepth) throw new FilterError(`${where}: nested deeper than ${limits.maxDepth}`);
  if (++count.nodes > limits.maxNodes) throw new FilterError(`filter has more than ${limits.maxNodes} nodes`);
  const o = raw as Obj;
  const op = str(o, 'op', where, limits);
  const key = str(o, 'key', where, limits);
  const cmp = str(o, 'cmp', where, limits);
  const val = str(o, 'val', where, limits);
  const vals = list(o, 'vals', where);
  const children = list(o, 'nodes', where);
  if (op === 'and' || op === 'or' || op === 'not') {
    if (op === 'not' ? children.length !== 1 : children.length === 0) {
      throw new FilterError(`${where}: "${op}" needs ${op === 'not' ? 'exactly one' : 'at least one'} node`);
    }
    const nodes = children.map((c, i) => compileNode(c, limits, `${where}.nodes[${i}]`, depth + 1, count));
    const kind = op === 'and' ? Kind.And : op === 'or' ? Kind.Or : Kind.Not;
    return { kind, key: '', val: '', num: undefined, set: undefined, nodes };
  }
  if (op !== '') throw new FilterError(`${where}.op: unknown operation "${op}"`);
  if (children.length > 0) throw new FilterError(`${where}: a comparison has no nodes`);
  const kind = leafKinds[cmp];
  if (kind === undefined) throw new FilterError(`${where}.cmp: unknown comparison "${cmp}"`);
  if (kind === Kind.In || kind === Kind.Nin) {
    if (vals.length === 0) throw new FilterError(`${where}: "${cmp}" needs vals`);
    if (val !== '') throw new FilterError(`${where}: "${cmp}" takes vals, not val`);
    count.values += vals.length;
    if (count.values > limits.maxValues) throw new FilterError(`filter has more than ${limits.maxValues} values`);
    const set = new Set<string>();
    vals.forEach((v, i) => {
      if (typeof v !== 'string') throw new FilterError(`${where}.vals[${i}]: expected a string`);
      if (v.length > limits.maxValueLength) {
        throw new FilterError(`${where}.vals[${i}]: longer than ${limits.maxValueLength} characters`);
      }
      set.add(v);
    });
    if (key === '') throw new FilterError(`${where}: "${cmp}" needs a key`);
    return { kind, key, val: '', num: undefined, set, nodes: [] };
  }
  if (kind === Kind.Ex || kind === Kind.Nex) {
    if (val !== '' || vals.length > 0) throw new FilterError(`${where}: "${cmp}" takes no val or vals`);
    return { kind, key, val: '', num: undefined, set: undefined, nodes: [] };
  }
  if (val === '') throw new FilterError(`${where}: "${cmp}" needs val`);
  if (vals.length > 0) throw new FilterError(`${where}: "${cmp}" takes val, not vals`);
  if (key === '') throw new FilterError(`${where}: "${cmp}" needs a key`);
  // A numeric operand that is not a number makes the comparison false, as in Centrifugo.
  const num = kind >= Kind.Gt ? parseDecimal(val) : undefined;
  return { kind, key, val, num, set: undefined, nodes: [] };
}

/** bothFilters joins a server-enforced filter and a client's: both must pass, the server's first. */
export function bothFilters(server: CompiledFilter | undefined, client: CompiledFilter | undefined) {
  if (server === undefined) return client;
  if (client === undefined) return server;
  return {
    kind: Kind.And,
    key: '',
    val: '',
    num: undefined,
    set: undefined,
    nodes: [server, client],
  } as CompiledFilter;
}

/** matches evaluates `f` on a publication's tags (absent tags: none). Allocates nothing. */
export function matches(f: CompiledFilter, tags: Readonly<Record<string, string>> | undefined): boolean {
  switch (f.kind) {
    case Kind.And:
      for (let i = 0; i < f.nodes.length; i++) if (!matches(f.nodes[i] as CompiledFilter, tags)) return false;
      return true;
    case Kind.Or:
      for (let i = 0; i < f.nodes.length; i++) if (matches(f.nodes[i] as CompiledFilter, tags)) return true;
      return false;
    case Kind.Not:
      return !matches(f.nodes[0] as CompiledFilter, tags);
    default:
      break;
  }
  // Own properties only: a tag named "constructor" is a tag, not Object.prototype's.
  const v = tags !== undefined && Object.hasOwn(tags, f.key) ? tags[f.key] : undefined;
  switch (f.kind) {
    case Kind.Eq:
      return v === f.val;
    case Kind.Neq:
      return v !== f.val;
    case Kind.In:
      return (f.set as ReadonlySet<string>).has(v ?? '');
    case Kind.Nin:
      return !(f.set as ReadonlySet<string>).has(v ?? '');
    case Kind.Ex:
      return v !== undefined;
    case Kind.Nex:
      return v === undefined;
    case Kind.Sw:
      return v !== undefined && v.startsWith(f.val);
    case Kind.Ew:
      return v !== undefined && v.endsWith(f.val);
    case Kind.Ct:
      return v !== undefined && v.includes(f.val);
    default: {
      if (v === undefined || f.num === undefined) return false;
      const c = compareDecimal(v, f.num); // NaN: every comparison below is false
      if (f.kind === Kind.Gt) return c > 0;
      if (f.kind === Kind.Gte) return c >= 0;
      if (f.kind === Kind.Lt) return c < 0;
      return c <= 0;
    }
  }
}

/** badFilter is the error a client gets for a filter it sent: 107, naming what is wrong. */
export function badFilter(err: FilterError): ProtocolError {
  return new ProtocolError(ErrorCode.BadRequest, `bad tags filter: ${err.message}`);
}
