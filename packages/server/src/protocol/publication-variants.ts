/**
 * Publication variants (Bulwark's own; incident 2): a publication may carry alternative
 * payloads for clients of different capability, and each subscriber gets the one its client
 * can render, chosen by the server from what the client declared: the `name` and `version`
 * of its connect request, and the `features` claim of its connection token.
 *
 * A variant matches a client when every condition of its `when` holds; the first matching
 * variant wins, and a client no variant matches gets the publication's own data. Choosing
 * allocates nothing: a client's profile is parsed once at connect and shared by every
 * connection that declared the same thing, and the variant's publication is made once per
 * publication and variant, never per subscriber.
 *
 * @module
 */
import type { Publication, PublicationVariant, VariantCondition } from './types.js';

/** ClientProfile is what variant conditions test about a connection. */
export interface ClientProfile {
  /** The connect request's `name` ('' when none). */
  readonly name: string;
  /** The connect request's `version` as numbers (1.4.2 → [1, 4, 2]); undefined when none or not a version. */
  readonly version: readonly number[] | undefined;
  /** The connection token's `features`. */
  readonly features: ReadonlySet<string>;
}

/** The profile of a client that declared nothing. */
export const EMPTY_PROFILE: ClientProfile = Object.freeze({
  name: '',
  version: undefined,
  features: new Set<string>(),
});

/** How many distinct profiles are shared; beyond, a profile is made per connection (still correct). */
const INTERNED_MAX = 1024;
/** Longest name or version a profile keeps (conditions accept at most as long). */
const PART_MAX = 64;
const interned = new Map<string, ClientProfile>();

/**
 * profileOf returns the profile of a client that sent `name` and `version` and whose token has
 * `features`, shared with every client that declared the same (so a connection holds one
 * reference, not its own copy).
 */
export function profileOf(name = '', version = '', features: readonly string[] = []): ClientProfile {
  if (name === '' && version === '' && features.length === 0) return EMPTY_PROFILE;
  // A client chooses these strings: bounded, so the shared profiles stay small.
  name = name.slice(0, PART_MAX);
  version = version.slice(0, PART_MAX);
  const sorted = [...new Set(features)].sort();
  const key = `${name}\u0000${version}\u0000${sorted.join('\u0000')}`;
  const known = interned.get(key);
  if (known !== undefined) return known;
  const profile: ClientProfile = Object.freeze({ name, version: parseVersion(version), features: new Set(sorted) });
  if (interned.size < INTERNED_MAX) interned.set(key, profile);
  return profile;
}

/**
 * parseVersion reads a dotted version ("5", "5.2", "5.2.10", "v5.2.1-beta" → [5, 2, 1]):
 * the leading numbers, an optional "v" before. Undefined when it does not start with a number.
 */
export function parseVersion(text: string): number[] | undefined {
  const m = /^v?(\d{1,9}(?:\.\d{1,9})*)/.exec(text.trim());
  return m ? m[1]!.split('.').map(Number) : undefined;
}

/** compareVersions orders two parsed versions; missing parts count as 0 (5.2 = 5.2.0). */
export function compareVersions(a: readonly number[], b: readonly number[]): number {
  for (let i = 0; i < Math.max(a.length, b.length); i++) {
    const d = (a[i] ?? 0) - (b[i] ?? 0);
    if (d !== 0) return d;
  }
  return 0;
}

/**
 * CompiledCondition is a variant condition with its versions parsed, as a publication keeps
 * it (made once per publication, at publish or when read from the engine).
 */
interface CompiledCondition {
  readonly name: string | undefined;
  readonly below: readonly number[] | undefined;
  readonly atLeast: readonly number[] | undefined;
  readonly has: string | undefined;
  readonly lacks: string | undefined;
}

/** compiled caches each publication's parsed conditions and its variant publications. */
const compiled = new WeakMap<Publication, { conditions: CompiledCondition[]; pubs: Array<Publication | undefined> }>();

function compile(pub: Publication, variants: readonly PublicationVariant[]) {
  let c = compiled.get(pub);
  if (c === undefined) {
    c = { conditions: variants.map((v) => compileCondition(v.when)), pubs: [] };
    compiled.set(pub, c);
  }
  return c;
}

function compileCondition(when: VariantCondition): CompiledCondition {
  return {
    name: when.name,
    below: when.version_below === undefined ? undefined : (parseVersion(when.version_below) ?? []),
    atLeast: when.version_at_least === undefined ? undefined : (parseVersion(when.version_at_least) ?? []),
    has: when.has,
    lacks: when.lacks,
  };
}

function matches(c: CompiledCondition, p: ClientProfile): boolean {
  if (c.name !== undefined && c.name !== p.name) return false;
  // A client that declared no version is the oldest: below any version, at least none.
  if (c.below !== undefined && p.version !== undefined && compareVersions(p.version, c.below) >= 0) return false;
  if (c.atLeast !== undefined && (p.version === undefined || compareVersions(p.version, c.atLeast) < 0)) return false;
  if (c.has !== undefined && !p.features.has(c.has)) return false;
  if (c.lacks !== undefined && p.features.has(c.lacks)) return false;
  return true;
}

/** variantIndex is the index of the variant `profile` gets, or -1 for the publication's own data. */
export function variantIndex(pub: Publication, profile: ClientProfile): number {
  const variants = pub.variants;
  if (variants === undefined || variants.length === 0) return -1;
  const { conditions } = compile(pub, variants);
  for (let i = 0; i < conditions.length; i++) if (matches(conditions[i]!, profile)) return i;
  return -1;
}

/**
 * variantPublication is the publication as variant `index` delivers it: its data replaced by
 * the variant's, and no variants (a client never sees the others). -1 is the publication's own
 * data, also without variants. Made once per publication and index.
 */
export function variantPublication(pub: Publication, index: number): Publication {
  const variants = pub.variants;
  if (variants === undefined) return pub;
  const c = compile(pub, variants);
  const slot = index + 1;
  let out = c.pubs[slot];
  if (out === undefined) {
    out = { ...pub, data: index < 0 ? pub.data : variants[index]!.data };
    delete out.variants;
    c.pubs[slot] = out;
  }
  return out;
}

/** forProfile is the publication as `profile` receives it (history, recovery, subscribe replies). */
export function forProfile(pub: Publication, profile: ClientProfile): Publication {
  return pub.variants === undefined ? pub : variantPublication(pub, variantIndex(pub, profile));
}

/**
 * forProfileAll is `pubs` as `profile` receives them: the same array when none carries
 * variants (the common case costs no copy), else a new one.
 */
export function forProfileAll(pubs: readonly Publication[], profile: ClientProfile): readonly Publication[] {
  if (!pubs.some((p) => p.variants !== undefined)) return pubs;
  return pubs.map((p) => forProfile(p, profile));
}
