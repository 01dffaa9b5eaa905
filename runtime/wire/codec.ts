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
 * Also here: {@link fixedHeaders}, the header blocks that calls and replies
 * repeat verbatim, encoded once.
 *
 * @module
 */
import SuperJSON from 'superjson';
import { headers as natsHeaders, type MsgHdrs } from '@nats-io/transport-node';
import { headerBytes } from '../nats/internals.ts';

/** Encodes values to bytes and back. One instance per runtime. */
export interface Codec {
  encode(value: unknown): Uint8Array;
  /** Throws on malformed input. */
  decode(bytes: Uint8Array): unknown;
  /** Registers a class so instances cross the wire as themselves (both sides must register it). */
  registerClass?(cls: new (...args: any[]) => unknown, name: string): void;
  /**
   * Encodes the object `value` with more fields after its own, given as JSON
   * text already: `fields` joined in order (each part a string, or its UTF-8
   * bytes) is one or more members, `"name":value,…` (plain JSON values: none
   * that needs `meta`; no name that `value` has) — exactly as
   * `encode({ ...value, ...JSON.parse(`{${fields.join('')}}`) })` would; or
   * returns undefined when it cannot (then use `encode`). Lets an actor's
   * record carry its remembered calls without encoding them again, or
   * joining their text, on every write.
   */
  encodeWithJsonFields?(value: object, fields: ReadonlyArray<string | Uint8Array>): Uint8Array | undefined;
}

const decoder = new TextDecoder('utf-8', { fatal: true });

/**
 * UTF-8 bytes of `text` as a plain Uint8Array. `Buffer.from` takes small
 * strings from Node's buffer pool and is ~5–10× faster than
 * `TextEncoder.encode`, which allocates a fresh ArrayBuffer per call; the view
 * keeps the type a plain Uint8Array (so deep equality with other byte arrays
 * holds). This runs twice per call on the hot path (request and reply).
 */
export function utf8(text: string): Uint8Array {
  const b = Buffer.from(text, 'utf8');
  return new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
}

/** True if `value` is made only of null, booleans, finite numbers, strings, plain arrays and plain objects. */
export function isPlainJson(value: unknown, depth = 0): boolean {
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
      if (isPlainJson(value)) return utf8(`{"json":${JSON.stringify(value)}}`);
      return utf8(sj.stringify(value));
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
    encodeWithJsonFields(value, fields) {
      if (!isPlainJson(value) || Array.isArray(value)) return undefined;
      const text = JSON.stringify(value);
      // The value's text without its closing brace, then the fields, written into one buffer.
      const head = text === '{}' ? '{"json":{' : `{"json":${text.slice(0, -1)},`;
      let size = Buffer.byteLength(head) + 2;
      for (const f of fields) size += typeof f === 'string' ? Buffer.byteLength(f) : f.length;
      const out = Buffer.allocUnsafe(size);
      let at = out.write(head, 0);
      for (const f of fields) {
        if (typeof f === 'string') at += out.write(f, at);
        else {
          out.set(f, at);
          at += f.length;
        }
      }
      out[at] = 0x7d;
      out[at + 1] = 0x7d;
      return new Uint8Array(out.buffer, out.byteOffset, size);
    },
  };
}

/**
 * A NATS header block sent unchanged with many messages — every call of one
 * message of one interface version, every ok reply of one version pair. It is
 * built once with the client library; since nats.js re-encodes a message's
 * headers on each publish (≈ 1–4 µs) and these bytes never change, their
 * encoding is computed once too. The bytes on the wire are exactly those of a
 * fresh `headers()` with the same entries.
 *
 * The block is shared: it refuses changes (`set`, `append`, `delete` throw).
 */
export function fixedHeaders(entries: ReadonlyArray<readonly [string, string]>): MsgHdrs {
  const h = natsHeaders();
  for (const [key, value] of entries) h.set(key, value);
  // Encoded once: nats.js publishes headers by calling `encode()` (see nats/internals.ts).
  const bytes = headerBytes(h);
  if (bytes) Object.defineProperty(h, 'encode', { value: () => bytes });
  const refuse = () => {
    throw new TypeError('this header block is shared by many messages and cannot be changed; build a new one with headers()');
  };
  for (const method of ['set', 'append', 'delete'] as const) Object.defineProperty(h, method, { value: refuse });
  return h;
}

/** Bytes a header block adds to a message: the server's max_payload counts them with the body. */
export function encodedLength(headers: MsgHdrs | undefined): number {
  return headerBytes(headers)?.length ?? 0;
}
