/**
 * A message schema (a ts-pattern pattern) as JSON Schema (draft 2020-12),
 * describing the `json` part of the superjson document on the wire.
 *
 * Values JSON cannot carry travel through superjson's `meta` (see
 * docs/protocol.md, "Call body"); where a schema accepts one, the JSON Schema
 * says what the JSON looks like there and adds `"x-superjson": "<type>"`, the
 * annotation a caller must put in `meta` at that path (`bigint`, `Date`,
 * `map`, `set`, `undefined`).
 *
 * Matchers are taken apart through the shapes Molt's `P` records
 * (runtime/pattern.ts), the same ones `molt verify` generates values from.
 * A pattern with no JSON Schema form (`P.when(fn)`, `P.symbol`, a matcher
 * built with ts-pattern's own `P`, …) becomes `{}` (anything)
 * at its place, and is listed in `unexpressed` with its path and a name for
 * the form, so a reader knows exactly where the contract is looser than the
 * node.
 *
 * @module
 */
import { shapeOf, type PatternRefinement } from '../pattern.ts';

function unreachable(value: never): never {
  throw new Error(`unexpected pattern shape ${JSON.stringify(value)}`);
}

/** A JSON Schema, as plain data. */
export type JsonSchema = { [keyword: string]: unknown };

/** A part of a schema that JSON Schema cannot express. */
export interface Unexpressed {
  /** Where, in the `data.path` syntax of docs/protocol.md (`""` is the whole value). */
  path: string;
  /** The pattern form, e.g. `P.when`, `P.symbol`, `P.string.regex(/x/i)`. */
  form: string;
  /** Why it cannot be expressed. */
  why: string;
}

/** A converted schema, and what it could not express. */
export interface ConvertedSchema {
  schema: JsonSchema;
  unexpressed: Unexpressed[];
}

const matcherSymbol = Symbol.for('@ts-pattern/matcher');
const variadicSymbol = Symbol.for('@ts-pattern/isVariadic');

type Matcher = { [matcherSymbol]: () => { matcherType?: string } };

function isMatcher(pattern: unknown): pattern is Matcher {
  return typeof pattern === 'object' && pattern !== null && matcherSymbol in pattern;
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (typeof value !== 'object' || value === null) return false;
  const proto = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

function join(path: string, key: string | number): string {
  if (typeof key === 'number') return `${path}[${key}]`;
  return /^[A-Za-z_$][\w$]*$/.test(key) ? (path ? `${path}.${key}` : key) : `${path}[${JSON.stringify(key)}]`;
}

function escapeRegex(text: string): string {
  return text.replace(/[\\^$.*+?()[\]{}|/]/g, '\\$&');
}

/** True if the pattern, as an object field, may be absent. */
function isOptional(pattern: unknown): boolean {
  return isMatcher(pattern) && pattern[matcherSymbol]().matcherType === 'optional';
}

const superjsonUndefined: JsonSchema = { type: 'null', 'x-superjson': 'undefined' };

class Converter {
  readonly unexpressed: Unexpressed[] = [];

  private cannot(path: string, form: string, why: string): JsonSchema {
    this.unexpressed.push({ path, form, why });
    return {};
  }

  convert(pattern: unknown, path: string): JsonSchema {
    if (pattern === null) return { type: 'null' };
    if (pattern === undefined) return { ...superjsonUndefined };
    if (typeof pattern === 'string' || typeof pattern === 'boolean') return { const: pattern };
    if (typeof pattern === 'number') {
      if (Number.isFinite(pattern)) return { const: pattern };
      return { const: String(pattern), 'x-superjson': 'number' };
    }
    if (typeof pattern === 'bigint') return { const: pattern.toString(), 'x-superjson': 'bigint' };
    if (typeof pattern === 'symbol' || typeof pattern === 'function') {
      return this.cannot(path, `a ${typeof pattern} literal`, 'a symbol or function cannot travel in a message');
    }
    if (isMatcher(pattern)) return this.matcher(pattern, path);
    if (Array.isArray(pattern)) return this.tuple(pattern, path);
    if (isPlainObject(pattern)) return this.object(pattern, path);
    return this.cannot(path, `a literal ${(pattern as object).constructor?.name ?? 'object'}`, 'only plain objects, arrays and primitives are patterns');
  }

  private object(pattern: Record<string, unknown>, path: string): JsonSchema {
    const properties: Record<string, JsonSchema> = {};
    const required: string[] = [];
    for (const key of Object.keys(pattern)) {
      const inner = pattern[key];
      // An optional field may be absent: not required, and its schema is the one of its pattern.
      if (isOptional(inner)) properties[key] = this.optionalInner(inner, join(path, key));
      else {
        properties[key] = this.convert(inner, join(path, key));
        required.push(key);
      }
    }
    const schema: JsonSchema = { type: 'object', properties };
    if (required.length > 0) schema.required = required;
    return schema;
  }

  /** The schema of what an optional pattern accepts when the value is present. */
  private optionalInner(pattern: unknown, path: string): JsonSchema {
    const shape = shapeOf(pattern);
    return this.convert(shape?.kind === 'optional' ? shape.inner : pattern, path);
  }

  private tuple(pattern: readonly unknown[], path: string): JsonSchema {
    const variadic = pattern.findIndex((p) => isMatcher(p) && (p as Record<symbol, unknown>)[variadicSymbol] === true);
    if (variadic === -1) {
      const schema: JsonSchema = { type: 'array', minItems: pattern.length, maxItems: pattern.length, items: false };
      if (pattern.length > 0) schema.prefixItems = pattern.map((p, i) => this.convert(p, join(path, i)));
      return schema;
    }
    if (variadic !== pattern.length - 1) {
      return this.cannot(path, 'a tuple with ...P.array() before its last element', 'JSON Schema cannot constrain the items after a variable-length run');
    }
    const prefix = pattern.slice(0, variadic);
    const rest = this.convert(pattern[variadic], join(path, variadic));
    const schema: JsonSchema = { type: 'array', minItems: prefix.length };
    if (prefix.length > 0) schema.prefixItems = prefix.map((p, i) => this.convert(p, join(path, i)));
    if (rest.items !== undefined) schema.items = rest.items;
    return schema;
  }

  private matcher(pattern: Matcher, path: string): JsonSchema {
    const shape = shapeOf(pattern);
    if (shape === undefined) {
      const type = pattern[matcherSymbol]().matcherType;
      return this.cannot(
        path,
        type ? `a P.${type === 'or' ? 'union' : type === 'and' ? 'intersection' : type} matcher` : 'a ts-pattern matcher',
        "its parts are not known: it was not built with Molt's P (import { P } from 'molt' in the service module, not from 'ts-pattern')",
      );
    }
    const refined = (base: JsonSchema, refinements: readonly PatternRefinement[]) => refinements.reduce((schema, r) => this.refine(schema, r.method, r.args, path), base);
    switch (shape.kind) {
      case 'primitive':
        return refined(this.primitive(shape.type, path), shape.refinements);
      case 'optional':
        // As an object's field, the object leaves it out of `required`; anywhere else the value may be undefined.
        return { anyOf: [this.convert(shape.inner, path), { ...superjsonUndefined }] };
      case 'array':
        return refined(shape.inner === undefined ? { type: 'array' } : { type: 'array', items: this.convert(shape.inner, `${path}[]`) }, shape.refinements);
      case 'set':
        return shape.inner === undefined
          ? { type: 'array', uniqueItems: true, 'x-superjson': 'set' }
          : { type: 'array', uniqueItems: true, items: this.convert(shape.inner, `${path}[]`), 'x-superjson': 'set' };
      case 'map':
        return {
          type: 'array',
          items: { type: 'array', prefixItems: [this.convert(shape.key, `${path}[key]`), this.convert(shape.value, `${path}[value]`)], minItems: 2, maxItems: 2, items: false },
          'x-superjson': 'map',
        };
      case 'record': {
        const schema: JsonSchema = { type: 'object', additionalProperties: this.convert(shape.value, `${path}[*]`) };
        const key = shapeOf(shape.key);
        const anyString = key?.kind === 'primitive' && key.type === 'string' && key.refinements.length === 0;
        if (shape.key !== undefined && !anyString) {
          const names = this.convert(shape.key, `${path}[key]`);
          // Property names are strings: a key pattern of another type (P.number matches numeric names) has no exact form.
          const strings = names.type === 'string' || (Array.isArray(names.enum) && names.enum.every((e) => typeof e === 'string')) || typeof names.const === 'string';
          if (strings) schema.propertyNames = names;
          else this.cannot(`${path}[key]`, 'a P.record key pattern that is not a string pattern', 'object keys are strings; ts-pattern matches numeric keys by converting them, which JSON Schema cannot say');
        }
        return schema;
      }
      case 'union':
        return this.union(shape.options.map((p) => this.convert(p, path)));
      case 'intersection':
        return { allOf: shape.parts.map((p) => this.part(p, path)) };
      case 'not':
        return { not: this.convert(shape.inner, path) };
      case 'select':
        // A selection does not change what matches: `P.select()` is anything, `P.select(p)` and `P.select('name', p)` are p.
        return shape.inner === undefined ? {} : this.convert(shape.inner, path);
      case 'shape':
        return this.convert(shape.inner, path);
      case 'instanceOf':
        if (shape.constructor === Date) return { type: 'string', format: 'date-time', 'x-superjson': 'Date' };
        return this.cannot(path, `P.instanceOf(${shape.constructor.name || '?'})`, 'only Date instances travel in messages');
      case 'when':
        return this.cannot(path, 'P.when', 'a predicate function has no JSON Schema form');
      default:
        return unreachable(shape);
    }
  }

  /** One part of an intersection; a refinement Molt's `P` did not know stands there as a marker. */
  private part(pattern: unknown, path: string): JsonSchema {
    const unknownRefinement = (pattern as { __moltUnknownRefinement?: string } | undefined)?.__moltUnknownRefinement;
    if (typeof unknownRefinement === 'string') return this.cannot(path, `.${unknownRefinement}()`, 'an unknown refinement');
    return this.convert(pattern, path);
  }

  private union(parts: JsonSchema[]): JsonSchema {
    if (parts.length > 0 && parts.every((p) => Object.keys(p).length === 1 && 'const' in p)) return { enum: parts.map((p) => p.const) };
    return { anyOf: parts };
  }

  private primitive(name: string, path: string): JsonSchema {
    switch (name) {
      case 'string':
        return { type: 'string' };
      case 'number':
        return { type: 'number' };
      case 'boolean':
        return { type: 'boolean' };
      case 'bigint':
        return { type: 'string', pattern: '^-?[0-9]+$', 'x-superjson': 'bigint' };
      case 'nullish':
        // null, or undefined (sent as null with the superjson annotation).
        return { type: 'null' };
      case 'nonNullable':
        return { not: { type: 'null' } };
      case 'any':
        return {};
      default:
        return this.cannot(path, `P.${name}`, `a ${name} cannot travel in a message`);
    }
  }

  /** `P.number.gte(0)`, `P.string.minLength(2)`, …: the base's schema plus one keyword. */
  private refine(schema: JsonSchema, name: string, args: readonly unknown[], path: string): JsonSchema {
    const a = args[0];
    const add = (keyword: string, value: unknown): JsonSchema => {
      if (keyword in schema) return { allOf: [schema, { [keyword]: value }] };
      return { ...schema, [keyword]: value };
    };
    const asNumber = (value: unknown) => (typeof value === 'bigint' ? value.toString() : value);
    const numericBase = schema.type === 'number' || schema.type === 'integer';
    switch (name) {
      case 'int':
        return schema.type === 'number' ? { ...schema, type: 'integer' } : add('type', 'integer');
      case 'finite':
        return schema; // JSON numbers are finite; NaN and ±Infinity only arrive through superjson meta.
      case 'positive':
        return add('exclusiveMinimum', 0);
      case 'negative':
        return add('exclusiveMaximum', 0);
      case 'gte':
        return numericBase ? add('minimum', a) : add('x-minimum', asNumber(a));
      case 'gt':
        return numericBase ? add('exclusiveMinimum', a) : add('x-exclusiveMinimum', asNumber(a));
      case 'lte':
        return numericBase ? add('maximum', a) : add('x-maximum', asNumber(a));
      case 'lt':
        return numericBase ? add('exclusiveMaximum', a) : add('x-exclusiveMaximum', asNumber(a));
      case 'between':
        return numericBase ? { allOf: [schema, { minimum: a, maximum: args[1] }] } : add('x-between', [asNumber(a), asNumber(args[1])]);
      case 'minLength':
        return add('minLength', a);
      case 'maxLength':
        return add('maxLength', a);
      case 'length':
        return { allOf: [schema, { minLength: a, maxLength: a }] };
      case 'startsWith':
        return add('pattern', `^${escapeRegex(String(a))}`);
      case 'endsWith':
        return add('pattern', `${escapeRegex(String(a))}$`);
      case 'includes':
        return add('pattern', escapeRegex(String(a)));
      case 'regex': {
        if (a instanceof RegExp) {
          if (a.flags.replace(/[gy]/g, '') !== '') {
            this.cannot(path, `P.string.regex(${String(a)})`, `the flags '${a.flags}' have no JSON Schema form; the pattern is given without them`);
          }
          return add('pattern', a.source);
        }
        return add('pattern', String(a));
      }
      default:
        return this.cannot(path, `.${name}()`, 'an unknown refinement');
    }
  }
}

/** Converts a message schema (request or reply) to JSON Schema. */
export function toJsonSchema(pattern: unknown): ConvertedSchema {
  const converter = new Converter();
  const schema = converter.convert(pattern, '');
  return { schema, unexpressed: converter.unexpressed };
}
