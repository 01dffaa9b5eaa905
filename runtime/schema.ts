/**
 * Message schemas: ts-pattern patterns, declared once, giving both the static
 * type (`Infer<typeof schema>`) and the runtime check (`checkSchema`).
 *
 * ts-pattern answers only "does it match"; a caller with a bad payload needs to
 * know *which field* is wrong, so `checkSchema` walks object and tuple patterns
 * itself and reports the deepest path that fails.
 *
 * @module
 */
import { isMatching, P } from 'ts-pattern';

/** A ts-pattern pattern used as a schema, e.g. `{ by: P.number }`. */
// ts-pattern's own Pattern<T> is parameterised by the input type; a schema
// stands alone, so any pattern is accepted and inference happens in Infer.
export type Schema = P.Pattern<any>;

/** The TypeScript type a schema accepts. */
export type Infer<TSchema> = P.infer<TSchema>;

/** The result of checking a value against a schema. */
export type SchemaCheck =
  | { ok: true }
  | { ok: false; path: string; problem: string };

function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (typeof value !== 'object' || value === null) return false;
  const proto = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}


function describe(value: unknown): string {
  if (value === undefined) return 'nothing';
  if (value === null) return 'null';
  if (Array.isArray(value)) return `an array of ${value.length}`;
  if (typeof value === 'string') return `the string ${JSON.stringify(value.length > 40 ? value.slice(0, 40) + '…' : value)}`;
  if (typeof value === 'object') return `an object (${value.constructor?.name ?? 'no prototype'})`;
  return `${typeof value} ${String(value)}`;
}

function join(path: string, key: string | number): string {
  if (typeof key === 'number') return `${path}[${key}]`;
  return /^[A-Za-z_$][\w$]*$/.test(key) ? (path ? `${path}.${key}` : key) : `${path}[${JSON.stringify(key)}]`;
}

/** Options of {@link checkSchema}. */
export interface SchemaCheckOptions {
  /**
   * Accept NaN, Infinity and -Infinity where the schema accepts a number.
   * Off by default: `P.number` matches them, and a caller could otherwise
   * set a counter to NaN for good (they reach a node through superjson).
   */
  nonFinite?: boolean;
}

/** True if `value` holds NaN or ±Infinity anywhere {@link findNonFinite} looks, without allocating. */
function hasNonFinite(value: unknown, depth: number): boolean {
  if (typeof value === 'number') return !Number.isFinite(value);
  if (typeof value !== 'object' || value === null || depth > 64) return false;
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) if (hasNonFinite(value[i], depth + 1)) return true;
    return false;
  }
  if (value instanceof Map || value instanceof Set) {
    for (const inner of value.values()) if (hasNonFinite(inner, depth + 1)) return true;
    return false;
  }
  for (const key of Object.keys(value)) if (hasNonFinite((value as Record<string, unknown>)[key], depth + 1)) return true;
  return false;
}

/** The first NaN or ±Infinity inside `value`, and its path, if any. */
function findNonFinite(value: unknown, path: string, depth = 0): { path: string; value: number } | undefined {
  if (typeof value === 'number') return Number.isFinite(value) ? undefined : { path, value };
  if (typeof value !== 'object' || value === null || depth > 64) return undefined;
  const entries: Iterable<[string | number, unknown]> = Array.isArray(value)
    ? value.entries()
    : value instanceof Map
      ? value.entries()
      : value instanceof Set
        ? [...value].entries()
        : Object.entries(value);
  for (const [key, inner] of entries) {
    const found = findNonFinite(inner, join(path, typeof key === 'number' ? key : String(key)), depth + 1);
    if (found) return found;
  }
  return undefined;
}

/**
 * Checks `value` against `schema`. On failure, `path` names the first field
 * that does not match (`''` for the whole value) and `problem` says what was
 * found there. Numbers must be finite unless `options.nonFinite` says otherwise.
 */
export function checkSchema(schema: Schema, value: unknown, options: SchemaCheckOptions = {}): SchemaCheck {
  const check = checkShape(schema, value, '');
  // Every call is checked: the walk that names a path runs only once a non-finite number is known to be there.
  if (!check.ok || options.nonFinite || !hasNonFinite(value, 0)) return check;
  const found = findNonFinite(value, '');
  if (!found) return check;
  return {
    ok: false,
    path: found.path,
    problem: `got ${found.value}; numbers must be finite (declare the message with { nonFinite: true } to accept NaN and ±Infinity)`,
  };
}

const MATCHES: SchemaCheck = { ok: true };

function checkShape(schema: Schema, value: unknown, path: string): SchemaCheck {
  if (matcherOf(schema)(value)) return MATCHES;
  if (!isMatcher(schema)) {
    if (isPlainObject(schema)) {
      if (typeof value !== 'object' || value === null || Array.isArray(value)) {
        return { ok: false, path, problem: `expected an object, got ${describe(value)}` };
      }
      for (const key of Object.keys(schema)) {
        const inner = checkShape(schema[key] as Schema, (value as Record<string, unknown>)[key], join(path, key));
        if (!inner.ok) return inner;
      }
    } else if (Array.isArray(schema)) {
      if (!Array.isArray(value) || value.length !== schema.length) {
        return { ok: false, path, problem: `expected a tuple of ${schema.length}, got ${describe(value)}` };
      }
      for (let i = 0; i < schema.length; i++) {
        const inner = checkShape(schema[i] as Schema, value[i], join(path, i));
        if (!inner.ok) return inner;
      }
    } else {
      return { ok: false, path, problem: `expected ${describe(schema)}, got ${describe(value)}` };
    }
  }
  return { ok: false, path, problem: `got ${describe(value)}, which its schema does not accept` };
}

/**
 * A schema as a function that answers exactly what `isMatching(schema, value)`
 * answers. Every call's payload is checked against its message's schema, and
 * ts-pattern's generic walk (a matcher object and a result object per field)
 * cost more than the rest of the check; a schema is compiled once into
 * nested closures instead. Only what ts-pattern does without selections is
 * compiled — object and tuple patterns, literals, and its built-in type
 * matchers (`P.number`, `P.string`, …), recognised by identity; any other
 * matcher (`P.number.gt(0)`, `P.optional(…)`, `P.array(…)`, …) and any tuple with
 * a variadic part is handed to `isMatching` as it stands.
 * `test/unit/schema-matcher.test.ts` holds the two to the same answers over
 * generated schemas and values.
 */
function matcherOf(schema: Schema): Match {
  if (typeof schema !== 'object' || schema === null) return (value) => Object.is(value, schema);
  let compiled = compiledSchemas.get(schema);
  if (!compiled) compiledSchemas.set(schema, (compiled = compile(schema)));
  return compiled;
}

type Match = (value: unknown) => boolean;

const compiledSchemas = new WeakMap<object, Match>();

/** ts-pattern's own symbols (`Symbol.for`, so shared by every copy of the library). */
const MATCHER = Symbol.for('@ts-pattern/matcher');
const VARIADIC = Symbol.for('@ts-pattern/isVariadic');

const anything: Match = () => true;
/** ts-pattern's built-in matchers that test one thing about a value, by identity. */
const builtIns = new Map<unknown, Match>([
  [P.any, anything],
  [P._, anything],
  [P.unknown, anything],
  [P.number, (v) => typeof v === 'number'],
  [P.string, (v) => typeof v === 'string'],
  [P.boolean, (v) => typeof v === 'boolean'],
  [P.bigint, (v) => typeof v === 'bigint'],
  [P.symbol, (v) => typeof v === 'symbol'],
  [P.nullish, (v) => v === null || v === undefined],
  [P.nonNullable, (v) => v !== null && v !== undefined],
]);

/** True for patterns built by `P.*` (they carry ts-pattern's matcher symbol), as ts-pattern itself tells them. */
function isMatcher(pattern: unknown): boolean {
  return Boolean(pattern) && Boolean((pattern as Record<symbol, unknown>)[MATCHER]);
}

/** What ts-pattern does with `pattern`, one level at a time (its `matchPattern`, without selections). */
function compile(pattern: unknown): Match {
  if (isMatcher(pattern)) return builtIns.get(pattern) ?? ((value) => isMatching(pattern as Schema, value));
  if (typeof pattern !== 'object' || pattern === null) return (value) => Object.is(value, pattern);
  if (Array.isArray(pattern)) {
    if (pattern.some((p) => isMatcher(p) && (p as Record<symbol, unknown>)[VARIADIC])) return (value) => isMatching(pattern as unknown as Schema, value);
    const items = pattern.map(compile);
    return (value) => {
      if (typeof value !== 'object' || value === null || !Array.isArray(value) || value.length !== items.length) return false;
      for (let i = 0; i < items.length; i++) if (!items[i]!(value[i])) return false;
      return true;
    };
  }
  const fields = Reflect.ownKeys(pattern).map((key) => {
    const inner = (pattern as Record<PropertyKey, unknown>)[key];
    // ts-pattern lets a key be absent only where its pattern is `P.optional(…)`.
    const optional = isMatcher(inner) && (inner as Record<symbol, () => { matcherType?: string }>)[MATCHER]!().matcherType === 'optional';
    return { key, optional, match: compile(inner) };
  });
  return (value) => {
    if (typeof value !== 'object' || value === null) return false;
    for (const f of fields) {
      if (!(f.optional || f.key in value)) return false;
      if (!f.match((value as Record<PropertyKey, unknown>)[f.key])) return false;
    }
    return true;
  };
}

