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

/** True for patterns built by `P.*` (they carry ts-pattern's matcher symbol). */
function isMatcher(pattern: unknown): boolean {
  return typeof pattern === 'object' && pattern !== null && Object.getOwnPropertySymbols(pattern).length > 0;
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

/**
 * Checks `value` against `schema`. On failure, `path` names the first field
 * that does not match (`''` for the whole value) and `problem` says what was
 * found there.
 */
export function checkSchema(schema: Schema, value: unknown, path = ''): SchemaCheck {
  if (isMatching(schema, value)) return { ok: true };
  if (!isMatcher(schema)) {
    if (isPlainObject(schema)) {
      if (typeof value !== 'object' || value === null || Array.isArray(value)) {
        return { ok: false, path, problem: `expected an object, got ${describe(value)}` };
      }
      for (const key of Object.keys(schema)) {
        const inner = checkSchema(schema[key] as Schema, (value as Record<string, unknown>)[key], join(path, key));
        if (!inner.ok) return inner;
      }
    } else if (Array.isArray(schema)) {
      if (!Array.isArray(value) || value.length !== schema.length) {
        return { ok: false, path, problem: `expected a tuple of ${schema.length}, got ${describe(value)}` };
      }
      for (let i = 0; i < schema.length; i++) {
        const inner = checkSchema(schema[i] as Schema, value[i], join(path, i));
        if (!inner.ok) return inner;
      }
    } else {
      return { ok: false, path, problem: `expected ${describe(schema)}, got ${describe(value)}` };
    }
  }
  return { ok: false, path, problem: `got ${describe(value)}, which its schema does not accept` };
}
