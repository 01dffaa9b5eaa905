/**
 * The codec: superjson on the wire and in KV, so Dates, Maps, Sets, BigInts and
 * undefined survive the trip. Each runtime gets its own instance (custom types
 * registered on one never leak into another).
 *
 * Fast path: a value made only of JSON types encodes as `{"json": value}` —
 * exactly what superjson would write — without superjson's walk, and a body
 * without `meta` decodes with `JSON.parse` alone. Any client that speaks
 * superjson reads and writes the same bytes.
 *
 * @module
 */
import SuperJSON from 'superjson';

/** Encodes values to bytes and back. One instance per runtime. */
export interface Codec {
  encode(value: unknown): Uint8Array;
  /** Throws on malformed input. */
  decode(bytes: Uint8Array): unknown;
  /** Registers a class so instances cross the wire as themselves (both sides must register it). */
  registerClass?(cls: new (...args: any[]) => unknown, name: string): void;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder('utf-8', { fatal: true });

/** True if `value` is made only of null, booleans, finite numbers, strings, plain arrays and plain objects. */
function isPlainJson(value: unknown, depth = 0): boolean {
  if (depth > 64) return false;
  switch (typeof value) {
    case 'string':
    case 'boolean':
      return true;
    case 'number':
      // NaN, ±Infinity and -0 need superjson's meta to survive.
      return Number.isFinite(value) && !Object.is(value, -0);
    case 'object': {
      if (value === null) return true;
      if (Array.isArray(value)) {
        for (let i = 0; i < value.length; i++) if (!isPlainJson(value[i], depth + 1)) return false;
        return true;
      }
      const proto = Object.getPrototypeOf(value);
      if (proto !== Object.prototype && proto !== null) return false;
      for (const key in value) {
        if (!isPlainJson((value as Record<string, unknown>)[key], depth + 1)) return false;
      }
      return true;
    }
    default:
      return false;
  }
}

/** Creates the superjson codec used by default. */
export function createSuperjsonCodec(): Codec {
  const sj = new SuperJSON();
  return {
    encode(value) {
      if (isPlainJson(value)) return encoder.encode(`{"json":${JSON.stringify(value)}}`);
      return encoder.encode(sj.stringify(value));
    },
    decode(bytes) {
      const parsed: unknown = JSON.parse(decoder.decode(bytes));
      if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed) || !('json' in parsed)) {
        throw new SyntaxError('not a superjson document: expected an object with a "json" field');
      }
      const doc = parsed as { json: unknown; meta?: unknown };
      if (doc.meta === undefined) return doc.json;
      return sj.deserialize(doc as Parameters<typeof sj.deserialize>[0]);
    },
    registerClass(cls, name) {
      sj.registerClass(cls, name);
    },
  };
}
