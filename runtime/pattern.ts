/**
 * Molt's `P`: ts-pattern's patterns, unchanged in what they match and in
 * their types, that also remember how they were built.
 *
 * ts-pattern keeps a pattern's parts inside closures, so `P.union('a', 'b')`
 * or `P.number.int().positive()` cannot be taken apart once built. `molt
 * verify` needs to take them apart to generate values a schema accepts, so
 * every pattern made through this `P` is registered with its {@link PatternShape}:
 * what it was built from, down to each chained refinement. A pattern built
 * with ts-pattern's own `P` still matches the same, but only its primitive
 * matchers (`P.number`, `P.string`, …) can be recognised.
 *
 * @module
 */
import { P as Base } from 'ts-pattern';

/** One refinement chained on a primitive pattern, e.g. `.int()` or `.between(1, 9)`. */
export interface PatternRefinement {
  readonly method: string;
  readonly args: readonly unknown[];
}

/** How a pattern was built, as far as Molt's `P` saw it. */
export type PatternShape =
  | {
      readonly kind: 'primitive';
      readonly type: 'number' | 'string' | 'bigint' | 'boolean' | 'symbol' | 'nullish' | 'nonNullable' | 'any';
      readonly refinements: readonly PatternRefinement[];
    }
  | { readonly kind: 'optional'; readonly inner: unknown }
  | { readonly kind: 'array'; readonly inner?: unknown; readonly refinements: readonly PatternRefinement[] }
  | { readonly kind: 'set'; readonly inner?: unknown }
  | { readonly kind: 'map'; readonly key?: unknown; readonly value?: unknown }
  | { readonly kind: 'record'; readonly key?: unknown; readonly value: unknown }
  | { readonly kind: 'union'; readonly options: readonly unknown[] }
  | { readonly kind: 'intersection'; readonly parts: readonly unknown[] }
  | { readonly kind: 'not'; readonly inner: unknown }
  | { readonly kind: 'when'; readonly predicate: (value: unknown) => unknown }
  | { readonly kind: 'instanceOf'; readonly constructor: Function }
  | { readonly kind: 'shape'; readonly inner: unknown }
  | { readonly kind: 'select'; readonly inner?: unknown };

const shapes = new WeakMap<object, PatternShape>();

/** The shape chaining `method(args)` on a pattern of shape `shape` gives. */
function chained(self: object, shape: PatternShape, method: string, args: readonly unknown[]): PatternShape {
  switch (method) {
    case 'optional':
      return { kind: 'optional', inner: self };
    case 'or':
      return { kind: 'union', options: [self, ...args] };
    case 'and':
      return { kind: 'intersection', parts: [self, ...args] };
    case 'select':
      // A selection changes what a match returns, not what it matches.
      return shape;
    default:
      if (shape.kind === 'primitive' || shape.kind === 'array') {
        return { ...shape, refinements: [...shape.refinements, { method, args }] };
      }
      return { kind: 'intersection', parts: [self, { __moltUnknownRefinement: method }] };
  }
}

/**
 * Registers `matcher` with its shape, and replaces its chain methods
 * (`.int()`, `.optional()`, …) with ones that register what they build in
 * turn. No proxy: matching — on every call a node serves — reads the matcher
 * as ts-pattern built it. A fresh matcher is changed in place; a shared one
 * (`P.number`, ts-pattern's singleton) is copied first (`copy`), so
 * ts-pattern's own `P` stays as it is. The methods close over the matcher
 * they came from, so the copy's work as the original's.
 */
function recorded<T extends object>(matcher: T, shape: PatternShape, copy = false): T {
  const target: T = copy ? Object.defineProperties(Object.create(Object.getPrototypeOf(matcher) as object | null), Object.getOwnPropertyDescriptors(matcher)) : matcher;
  const fields = target as Record<string, unknown>;
  for (const key of Object.keys(target)) {
    const method = fields[key];
    if (typeof method !== 'function') continue;
    fields[key] = (...args: unknown[]) => {
      const out: unknown = (method as (...a: unknown[]) => unknown).apply(matcher, args);
      return typeof out === 'object' && out !== null ? recorded(out, chained(target, shape, key, args)) : out;
    };
  }
  shapes.set(target, shape);
  return target;
}

const primitive = (type: Extract<PatternShape, { kind: 'primitive' }>['type']): PatternShape => ({ kind: 'primitive', type, refinements: [] });

/** ts-pattern's own primitive matchers, recognised when a schema was built without Molt's `P`. */
const basePrimitives = new Map<unknown, PatternShape>([
  [Base.number, primitive('number')],
  [Base.string, primitive('string')],
  [Base.bigint, primitive('bigint')],
  [Base.boolean, primitive('boolean')],
  [Base.symbol, primitive('symbol')],
  [Base.nullish, primitive('nullish')],
  [Base.nonNullable, primitive('nonNullable')],
  [Base.any, primitive('any')],
  [Base.unknown, primitive('any')],
  [Base._, primitive('any')],
]);

/**
 * How `pattern` was built, if it is a matcher Molt can take apart: one made
 * with Molt's `P`, or one of ts-pattern's primitive matchers. Undefined for
 * a literal, a plain object or tuple pattern (walk those directly), and for
 * a matcher built elsewhere.
 */
export function shapeOf(pattern: unknown): PatternShape | undefined {
  if (typeof pattern !== 'object' || pattern === null) return undefined;
  return shapes.get(pattern) ?? basePrimitives.get(pattern);
}

const anyArgs = <F>(f: F) => f as unknown as (...args: unknown[]) => object;

const recordingP = {
  ...Base,
  any: recorded(Base.any, primitive('any'), true),
  unknown: recorded(Base.unknown, primitive('any'), true),
  _: recorded(Base._, primitive('any'), true),
  string: recorded(Base.string, primitive('string'), true),
  number: recorded(Base.number, primitive('number'), true),
  bigint: recorded(Base.bigint, primitive('bigint'), true),
  boolean: recorded(Base.boolean, primitive('boolean'), true),
  symbol: recorded(Base.symbol, primitive('symbol'), true),
  nullish: recorded(Base.nullish, primitive('nullish'), true),
  nonNullable: recorded(Base.nonNullable, primitive('nonNullable'), true),
  optional: (inner: unknown) => recorded(anyArgs(Base.optional)(inner), { kind: 'optional', inner }),
  array: (...args: unknown[]) =>
    recorded(anyArgs(Base.array)(...args), args.length === 0 ? { kind: 'array', refinements: [] } : { kind: 'array', inner: args[0], refinements: [] }),
  set: (...args: unknown[]) => recorded(anyArgs(Base.set)(...args), args.length === 0 ? { kind: 'set' } : { kind: 'set', inner: args[0] }),
  map: (...args: unknown[]) => recorded(anyArgs(Base.map)(...args), { kind: 'map', key: args[0], value: args[1] }),
  record: (...args: unknown[]) =>
    recorded(anyArgs(Base.record)(...args), args.length === 1 ? { kind: 'record', value: args[0] } : { kind: 'record', key: args[0], value: args[1] }),
  union: (...options: unknown[]) => recorded(anyArgs(Base.union)(...options), { kind: 'union', options }),
  intersection: (...parts: unknown[]) => recorded(anyArgs(Base.intersection)(...parts), { kind: 'intersection', parts }),
  not: (inner: unknown) => recorded(anyArgs(Base.not)(inner), { kind: 'not', inner }),
  when: (predicate: (value: unknown) => unknown) => recorded(anyArgs(Base.when)(predicate), { kind: 'when', predicate }),
  instanceOf: (constructor: Function) => recorded(anyArgs(Base.instanceOf)(constructor), { kind: 'instanceOf', constructor }),
  shape: (inner: unknown) => recorded(anyArgs(Base.shape)(inner), { kind: 'shape', inner }),
  select: (...args: unknown[]) => {
    const inner = args.length === 2 ? args[1] : args.length === 1 && typeof args[0] !== 'string' ? args[0] : undefined;
    return recorded(anyArgs(Base.select)(...args), inner === undefined ? { kind: 'select' } : { kind: 'select', inner });
  },
};

/**
 * ts-pattern's `P`, whose patterns also record how they were built (see
 * {@link shapeOf}). It matches and types exactly as ts-pattern's does.
 */
export const P: typeof Base = recordingP as unknown as typeof Base;

// The types of ts-pattern's `P` namespace, under the same names.
export declare namespace P {
  export type Pattern<T> = Base.Pattern<T>;
  export type infer<T> = Base.infer<T>;
  export type narrow<I, T> = Base.narrow<I, T>;
  export type unstable_Fn = Base.unstable_Fn;
  export type unstable_Matchable<N, I = unknown, T = never> = Base.unstable_Matchable<N, I, T>;
  export type unstable_Matcher<N, I = unknown, T = never> = Base.unstable_Matcher<N, I, T>;
}
