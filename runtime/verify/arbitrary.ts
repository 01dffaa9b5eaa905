/**
 * fast-check arbitraries derived from message schemas: every value an
 * arbitrary yields is accepted by the schema it came from (and by
 * `checkSchema`, so numbers are finite unless the message accepts others).
 *
 * Small ranges on purpose: a counterexample usually needs two calls to touch
 * the same element, so most numbers are 0, 1 or 2 and most strings 'a' or 'b'.
 *
 * A form that cannot be generated (a `P.when` predicate, a matcher built
 * outside Molt's `P`) is reported by message and path with a typed error,
 * unless a generator for it is supplied.
 *
 * @module
 */
import fc, { type Arbitrary } from 'fast-check';
import { isMatching } from 'ts-pattern';
import { ErrorCode, MoltError } from '../errors.ts';
import { shapeOf, type PatternRefinement } from '../pattern.ts';
import type { AnyActorVersion } from '../define/version.ts';
import type { MessageSpec } from '../define/messages.ts';

/** Generators supplied for forms that cannot be derived, by pattern object or by `'<type>@<version> <message> <path>'`. */
export interface GeneratorOverrides {
  /** By where the form is: `'account@2 deposit amount'` (path `''` for the whole payload). */
  byPath?: Readonly<Record<string, Arbitrary<unknown>>>;
  /** By the pattern object itself (a `P.when(…)` shared by several messages). */
  byPattern?: ReadonlyMap<unknown, Arbitrary<unknown>>;
}

/** Where a schema is being derived, for overrides and error messages. */
interface Where {
  readonly label: string;
  readonly path: string;
  readonly nonFinite: boolean;
  readonly overrides: GeneratorOverrides;
}

function join(path: string, key: string | number): string {
  if (typeof key === 'number') return `${path}[${key}]`;
  return /^[A-Za-z_$][\w$]*$/.test(key) ? (path ? `${path}.${key}` : key) : `${path}[${JSON.stringify(key)}]`;
}

function ungeneratable(where: Where, what: string): MoltError {
  const at = where.path === '' ? 'the payload' : `field '${where.path}'`;
  return new MoltError(
    ErrorCode.InvalidDefinition,
    `cannot generate values for ${where.label}, ${at}: ${what}. Supply a generator for it: verify option generators.byPath['${where.label} ${where.path}'] (a fast-check arbitrary), or generators.byPattern keyed by the pattern`,
    { data: { message: where.label, path: where.path, reason: what } },
  );
}

const letters = fc.constantFrom('a', 'b', 'c');

/** Mostly one of two short strings (collisions are what find bugs), else short strings over three letters, now and then any string. */
const smallString = fc.oneof(
  { weight: 3, arbitrary: fc.constantFrom('a', 'b') },
  { weight: 2, arbitrary: fc.string({ unit: letters, maxLength: 3 }) },
  { weight: 1, arbitrary: fc.string({ maxLength: 8 }) },
);

/** Integers from `lo`: mostly one of the first three (so two calls often name the same element), else up to 40 further. */
function clusteredIntegers(lo: number, hi: number): Arbitrary<number> {
  return fc.oneof({ weight: 3, arbitrary: fc.integer({ min: lo, max: Math.min(hi, lo + 2) }) }, { weight: 2, arbitrary: fc.integer({ min: lo, max: Math.min(hi, lo + 40) }) });
}

const smallInteger = fc.oneof({ weight: 3, arbitrary: fc.integer({ min: 0, max: 2 }) }, { weight: 2, arbitrary: fc.integer({ min: -20, max: 20 }) });

function numberArbitrary(refinements: readonly PatternRefinement[], where: Where): Arbitrary<unknown> {
  let integer = false;
  let min = -Infinity;
  let max = Infinity;
  let minOpen = false;
  let maxOpen = false;
  const lower = (value: number, open: boolean) => {
    if (value > min || (value === min && open)) [min, minOpen] = [value, open];
  };
  const upper = (value: number, open: boolean) => {
    if (value < max || (value === max && open)) [max, maxOpen] = [value, open];
  };
  for (const { method, args } of refinements) {
    const [a, b] = args as [number, number];
    switch (method) {
      case 'int':
        integer = true;
        break;
      case 'finite':
        break;
      case 'positive':
        lower(0, true);
        break;
      case 'negative':
        upper(0, true);
        break;
      case 'gt':
        lower(a, true);
        break;
      case 'gte':
        lower(a, false);
        break;
      case 'lt':
        upper(a, true);
        break;
      case 'lte':
        upper(a, false);
        break;
      case 'between':
        lower(a, false);
        upper(b, false);
        break;
      default:
        throw ungeneratable(where, `P.number.${method}() is not a refinement the verifier knows`);
    }
  }
  if (integer) {
    const lo = min === -Infinity ? -20 : minOpen ? Math.floor(min) + 1 : Math.ceil(min);
    const hi = max === Infinity ? Math.max(lo, 0) + 20 : maxOpen ? Math.ceil(max) - 1 : Math.floor(max);
    if (lo > hi) throw ungeneratable(where, `no integer lies in its range`);
    return min === -Infinity && max === Infinity ? smallInteger : clusteredIntegers(lo, hi);
  }
  const doubles = fc
    .double({ min: min === -Infinity ? -1e6 : min, max: max === Infinity ? 1e6 : max, minExcluded: minOpen, maxExcluded: maxOpen, noNaN: true, noDefaultInfinity: true })
    .filter((x) => !Object.is(x, -0));
  const lo = min === -Infinity ? -20 : minOpen ? Math.floor(min) + 1 : Math.ceil(min);
  const hi = max === Infinity ? Math.max(lo, 0) + 20 : maxOpen ? Math.ceil(max) - 1 : Math.floor(max);
  if (lo > hi) return doubles;
  const ints = min === -Infinity && max === Infinity ? smallInteger : clusteredIntegers(lo, hi);
  const some = fc.oneof({ weight: 4, arbitrary: ints }, { weight: 1, arbitrary: doubles });
  return where.nonFinite ? fc.oneof({ weight: 20, arbitrary: some }, { weight: 1, arbitrary: fc.constantFrom(NaN, Infinity, -Infinity) }) : some;
}

function stringArbitrary(refinements: readonly PatternRefinement[], where: Where): Arbitrary<unknown> {
  let prefix = '';
  let suffix = '';
  let infix = '';
  let minLength = 0;
  let maxLength = Infinity;
  const regexes: RegExp[] = [];
  for (const { method, args } of refinements) {
    const [a] = args as [unknown];
    switch (method) {
      case 'startsWith':
        prefix = String(a);
        break;
      case 'endsWith':
        suffix = String(a);
        break;
      case 'includes':
        infix = String(a);
        break;
      case 'minLength':
        minLength = Math.max(minLength, Number(a));
        break;
      case 'maxLength':
        maxLength = Math.min(maxLength, Number(a));
        break;
      case 'length':
        minLength = Math.max(minLength, Number(a));
        maxLength = Math.min(maxLength, Number(a));
        break;
      case 'regex':
        regexes.push(typeof a === 'string' ? new RegExp(a) : (a as RegExp));
        break;
      default:
        throw ungeneratable(where, `P.string.${method}() is not a refinement the verifier knows`);
    }
  }
  if (regexes.length > 0) {
    const [first, ...others] = regexes;
    return fc.stringMatching(first!).filter((s) => others.every((r) => r.test(s)) && s.startsWith(prefix) && s.endsWith(suffix) && s.includes(infix) && s.length >= minLength && s.length <= maxLength);
  }
  const fixed = prefix.length + suffix.length + infix.length;
  const middleMin = Math.max(0, minLength - fixed);
  const middleMax = Math.max(middleMin, Math.min(maxLength === Infinity ? middleMin + 3 : maxLength - fixed, middleMin + 6));
  if (maxLength < fixed || minLength > maxLength) throw ungeneratable(where, `no string meets its length bounds`);
  const fits = (s: string) => s.length >= minLength && s.length <= maxLength;
  if (infix === '') return fc.string({ unit: letters, minLength: middleMin, maxLength: middleMax }).map((x) => prefix + x + suffix);
  const half = fc.string({ unit: letters, maxLength: 2 });
  return fc.tuple(half, half).map(([x, y]) => prefix + x + infix + y + suffix).filter(fits);
}

/** The arbitrary of every value `pattern` accepts, or a typed error naming what cannot be generated. */
function derive(pattern: unknown, where: Where): Arbitrary<unknown> {
  const byPattern = where.overrides.byPattern?.get(pattern);
  if (byPattern) return byPattern;
  const byPath = where.overrides.byPath?.[`${where.label} ${where.path}`];
  if (byPath) return byPath;
  if (pattern === null || typeof pattern !== 'object') {
    if (typeof pattern === 'function') throw ungeneratable(where, 'a function is not a pattern');
    return fc.constant(pattern);
  }
  const shape = shapeOf(pattern);
  if (shape === undefined) {
    if (Object.getOwnPropertySymbols(pattern).length > 0) {
      throw ungeneratable(where, "a matcher built outside Molt's P (import P from 'molt', not from 'ts-pattern', so its parts can be read)");
    }
    if (Array.isArray(pattern)) {
      return fc.tuple(...pattern.map((p, i) => derive(p, { ...where, path: join(where.path, i) })));
    }
    const required: string[] = [];
    const fields: Record<string, Arbitrary<unknown>> = {};
    for (const key of Object.keys(pattern)) {
      const inner = (pattern as Record<string, unknown>)[key];
      const innerShape = shapeOf(inner);
      const at = { ...where, path: join(where.path, key) };
      if (innerShape?.kind === 'optional') fields[key] = derive(innerShape.inner, at);
      else {
        fields[key] = derive(inner, at);
        required.push(key);
      }
    }
    return fc.record(fields, { requiredKeys: required, noNullPrototype: true });
  }
  switch (shape.kind) {
    case 'primitive':
      switch (shape.type) {
        case 'number':
          return numberArbitrary(shape.refinements, where);
        case 'string':
          return stringArbitrary(shape.refinements, where);
        case 'boolean':
          return fc.boolean();
        case 'bigint':
          return fc.bigInt({ min: -20n, max: 20n });
        case 'nullish':
          return fc.constantFrom(null, undefined);
        case 'nonNullable':
          return fc.oneof(smallInteger, smallString, fc.boolean());
        case 'any':
          return fc.oneof(fc.constant(null), smallInteger, smallString, fc.boolean());
        case 'symbol':
          throw ungeneratable(where, 'a symbol cannot cross the wire');
      }
      break;
    case 'optional':
      return fc.option(derive(shape.inner, where), { nil: undefined });
    case 'array': {
      if (shape.refinements.length > 0) throw ungeneratable(where, `P.array().${shape.refinements[0]!.method}() is not a refinement the verifier knows`);
      const inner = shape.inner === undefined ? fc.oneof(smallInteger, smallString) : derive(shape.inner, { ...where, path: `${where.path}[]` });
      return fc.array(inner, { maxLength: 4 });
    }
    case 'set': {
      const inner = shape.inner === undefined ? smallInteger : derive(shape.inner, { ...where, path: `${where.path}[]` });
      return fc.array(inner, { maxLength: 4 }).map((items) => new Set(items));
    }
    case 'map': {
      const key = shape.key === undefined ? smallString : derive(shape.key, { ...where, path: `${where.path}{key}` });
      const value = shape.value === undefined ? smallInteger : derive(shape.value, { ...where, path: `${where.path}{}` });
      return fc.array(fc.tuple(key, value), { maxLength: 4 }).map((entries) => new Map(entries));
    }
    case 'record': {
      const keyShape = shape.key === undefined ? undefined : shapeOf(shape.key);
      if (shape.key !== undefined && !(keyShape?.kind === 'primitive' && (keyShape.type === 'string' || keyShape.type === 'any'))) {
        const key = derive(shape.key, { ...where, path: `${where.path}{key}` });
        const value = derive(shape.value, { ...where, path: `${where.path}{}` });
        return fc.array(fc.tuple(key, value), { maxLength: 4 }).map((entries) => Object.fromEntries(entries.map(([k, v]) => [String(k), v])));
      }
      const key = keyShape?.kind === 'primitive' && keyShape.type === 'string' ? stringArbitrary(keyShape.refinements, where) : smallString;
      return fc.dictionary(key as Arbitrary<string>, derive(shape.value, { ...where, path: `${where.path}{}` }), { maxKeys: 4, noNullPrototype: true });
    }
    case 'union':
      return fc.oneof(...shape.options.map((option) => derive(option, where)));
    case 'intersection': {
      const [first, ...rest] = shape.parts;
      for (const part of rest) {
        if (typeof part === 'object' && part !== null && '__moltUnknownRefinement' in part) {
          throw ungeneratable(where, `.${String((part as { __moltUnknownRefinement: unknown }).__moltUnknownRefinement)}() is not a refinement the verifier knows`);
        }
      }
      return derive(first, where).filter((value) => rest.every((part) => isMatching(part as never, value)));
    }
    case 'shape':
    case 'select':
      return shape.kind === 'select' && shape.inner === undefined ? fc.oneof(smallInteger, smallString) : derive(shape.inner, where);
    case 'when':
      throw ungeneratable(where, 'P.when(…) takes a predicate the verifier cannot invert');
    case 'not':
      throw ungeneratable(where, 'P.not(…) describes what a value is not, not what it is');
    case 'instanceOf':
      throw ungeneratable(where, `P.instanceOf(${shape.constructor.name}) needs a generator of instances`);
  }
  throw ungeneratable(where, 'an unknown pattern form');
}

/** Options of {@link requestArbitrary}. */
export interface RequestArbitraryOptions {
  overrides?: GeneratorOverrides;
}

/**
 * The arbitrary of the payloads of one message of a version: every value it
 * yields passes the message's request schema (checked once per value, so a
 * bad derivation is a loud error rather than a false counterexample).
 * Throws InvalidDefinition naming the message and field it cannot generate.
 */
export function requestArbitrary(version: AnyActorVersion, message: string, options: RequestArbitraryOptions = {}): Arbitrary<Record<string, unknown>> {
  const spec = version.messages[message] as MessageSpec | undefined;
  if (!spec) throw new MoltError(ErrorCode.InvalidDefinition, `${version.type}@${version.version} has no message '${message}'`);
  const where: Where = { label: `${version.type}@${version.version} ${message}`, path: '', nonFinite: spec.nonFinite === true, overrides: options.overrides ?? {} };
  return derive(spec.request, where) as Arbitrary<Record<string, unknown>>;
}

/** Arbitraries of every message of `version`, by name. Throws on the first message it cannot generate. */
export function messageArbitraries(version: AnyActorVersion, options: RequestArbitraryOptions = {}): Map<string, Arbitrary<Record<string, unknown>>> {
  const out = new Map<string, Arbitrary<Record<string, unknown>>>();
  for (const message of Object.keys(version.messages)) out.set(message, requestArbitrary(version, message, options));
  return out;
}
