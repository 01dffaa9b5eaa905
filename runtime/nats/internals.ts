/**
 * Every place Molt relies on how nats.js 3.x works inside, rather than on its
 * typed API — kept in this one module, so a change of the library breaks one
 * file, and `test/unit/nats-internals.test.ts` (which exercises each of these
 * against a real server) says which assumption broke.
 *
 * Why reach in at all: on the per-call path, nats.js's header map costs more
 * than the rest of a call (≈ 3 µs to read three headers, 1–4 µs to encode a
 * block on every publish). Molt reads the raw header bytes a message arrived
 * with, and publishes header blocks it encoded once.
 *
 * The assumptions:
 * 1. A received message (`MsgImpl`) keeps its raw frame in `_rdata`, and the
 *    length of its header block in `_msg.hdr`.
 * 2. `publish(subject, data, { headers })` serialises the headers by calling
 *    their `encode()` method (not part of the typed `MsgHdrs` interface), so
 *    an object whose `encode()` returns fixed bytes is published as is.
 * 3. A KV watch (the iterator `kv.watch()` returns) keeps its consumer in
 *    `_data`, and that consumer's `delete()` deletes the one it runs on now
 *    (an ordered consumer replaces itself on a gap). Stopping a watch only
 *    unsubscribes; nats-server keeps the abandoned consumer for five minutes.
 *
 * @module
 */
import type { Msg, MsgHdrs } from '@nats-io/transport-node';

/** The private fields of nats.js 3.x's MsgImpl that hold the raw frame. */
interface RawFrame {
  _rdata?: unknown;
  _msg?: { hdr?: unknown };
}

/**
 * The bytes of a received message's header block (assumption 1): undefined if
 * it has none, or if `msg` does not keep its raw frame the way nats.js 3.x does.
 */
export function rawHeaderBytes(msg: Msg): Uint8Array | undefined | 'unknown' {
  const raw = msg as unknown as RawFrame;
  const length = raw._msg?.hdr;
  if (!(raw._rdata instanceof Uint8Array) || typeof length !== 'number') return 'unknown';
  return length > 0 ? raw._rdata.subarray(0, length) : undefined;
}

/** A header block nats.js publishes as exactly these bytes (assumption 2). */
export function preEncodedHeaders(bytes: Uint8Array): MsgHdrs {
  return { encode: () => bytes } as unknown as MsgHdrs;
}

/** The bytes nats.js will publish for `headers` (assumption 2), or undefined if it cannot say. */
export function headerBytes(headers: MsgHdrs | undefined): Uint8Array | undefined {
  const encode = (headers as { encode?: () => Uint8Array } | undefined)?.encode;
  return typeof encode === 'function' ? encode.call(headers) : undefined;
}

/**
 * Stops a KV watch and deletes its consumer on the server (assumption 3),
 * without waiting for the answer: a watch stopped for good — its node
 * stopping, a status view closing — leaves nothing behind. A watch whose
 * server is gone stops all the same (the deletion then fails, unnoticed).
 */
export function stopWatch(watcher: { stop(): void }): void {
  watcher.stop();
  const consumer = (watcher as { _data?: { delete?: () => Promise<unknown> } })._data;
  if (typeof consumer?.delete === 'function') consumer.delete().catch(() => undefined);
}
