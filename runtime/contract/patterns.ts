/**
 * What a ts-pattern pattern was built from. A ts-pattern matcher is an opaque
 * closure: `P.array(P.number)` answers "does it match" and nothing else, so a
 * contract cannot read the element pattern back out of it. This module
 * records it instead, when the pattern is built: {@link installPatternRecorder}
 * wraps the builders of ts-pattern's `P` (`P.array`, `P.union`, `P.optional`,
 * …) and the chained refinements (`P.number.int().gte(0)`,
 * `P.string.minLength(2)`, `.optional()`, `.or()`) so that each pattern they
 * return is remembered with what it was made of. Every wrapper calls the
 * original and returns its result unchanged: matching behaves exactly as
 * before.
 *
 * Only patterns built after the recorder is installed are known, so
 * `molt contract` installs it before it imports the service module. Plain
 * object, tuple and literal patterns need no recording; `P.string`,
 * `P.number`, … are recognised by identity.
 *
 * @module
 */
import { P } from 'ts-pattern';

/** What a recorded matcher was built from. `args` are the builder's arguments, as given. */
export interface PatternRecord {
  /** The builder: `array`, `union`, `optional`, `record`, …, or a refinement (`int`, `gte`, `minLength`, …). */
  readonly builder: string;
  /** For a refinement or a chained `.optional()`, `.and()`, `.or()`, `.select()`: the pattern it refines. */
  readonly base?: unknown;
  readonly args: readonly unknown[];
}

const records = new WeakMap<object, PatternRecord>();

/** What `pattern` was built from, if it was built after the recorder was installed. */
export function patternRecord(pattern: unknown): PatternRecord | undefined {
  return typeof pattern === 'object' && pattern !== null ? records.get(pattern) : undefined;
}

/** The primitive matchers of ts-pattern, by identity. */
export const primitiveMatchers: ReadonlyMap<unknown, string> = new Map<unknown, string>([
  [P.string, 'string'],
  [P.number, 'number'],
  [P.boolean, 'boolean'],
  [P.bigint, 'bigint'],
  [P.symbol, 'symbol'],
  [P.nullish, 'nullish'],
  [P.nonNullable, 'nonNullable'],
  [P.any, 'any'],
  [P._, 'any'],
  [P.unknown, 'any'],
]);

/** Builders of `P` whose results are recorded. */
const builders = ['array', 'set', 'map', 'record', 'union', 'intersection', 'optional', 'not', 'when', 'select', 'instanceOf', 'shape'] as const;

/** Methods a pattern may carry (chainable refinements); each returns a new pattern. */
const chainMethods = [
  'optional', 'and', 'or', 'select',
  'startsWith', 'endsWith', 'minLength', 'length', 'maxLength', 'includes', 'regex',
  'between', 'lt', 'gt', 'lte', 'gte', 'int', 'finite', 'positive', 'negative',
] as const;

const wrapped = new WeakSet<object>();

/** Wraps the chain methods of `pattern` (in place) so that what they return is recorded. */
function wrapMethods(pattern: unknown): void {
  if (typeof pattern !== 'object' || pattern === null || wrapped.has(pattern)) return;
  wrapped.add(pattern);
  const target = pattern as Record<string, unknown>;
  for (const name of chainMethods) {
    const original = target[name];
    if (typeof original !== 'function') continue;
    target[name] = (...args: unknown[]) => {
      const result = (original as (...a: unknown[]) => unknown).apply(pattern, args);
      remember(result, { builder: name, base: pattern, args });
      return result;
    };
  }
}

function remember(result: unknown, record: PatternRecord): void {
  if (typeof result !== 'object' || result === null) return;
  if (!records.has(result)) records.set(result, record);
  wrapMethods(result);
}

let installed = false;

/**
 * Starts recording how patterns are built (idempotent). Patterns built before
 * this call stay opaque: a contract reports them as forms it cannot express.
 */
export function installPatternRecorder(): void {
  if (installed) return;
  installed = true;
  const target = P as unknown as Record<string, unknown>;
  for (const name of builders) {
    const original = target[name];
    if (typeof original !== 'function') continue;
    target[name] = (...args: unknown[]) => {
      const result = (original as (...a: unknown[]) => unknown)(...args);
      remember(result, { builder: name, args });
      return result;
    };
  }
  for (const primitive of primitiveMatchers.keys()) wrapMethods(primitive);
}
