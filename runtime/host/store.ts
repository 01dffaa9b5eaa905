/**
 * Where actor state lives: one record per actor, written with compare-and-set
 * on the revision. JetStream KV for durable types; memory for volatile ones.
 *
 * @module
 */
import type { KV } from '@nats-io/kv';
import { ErrorCode, MoltError } from '../errors.ts';

/** A stored record and its revision (0 = absent). */
export interface StoredRecord {
  bytes: Uint8Array | undefined;
  revision: number;
}

/** Thrown by `save` when the revision is stale: another writer got there first. */
export class RevisionConflict extends Error {
  override readonly name = 'RevisionConflict';
}

/** Per-actor storage with compare-and-set. */
export interface StateStore {
  load(key: string): Promise<StoredRecord>;
  /** Writes `bytes` if the stored revision is still `revision` (0: must not exist); returns the new revision. */
  save(key: string, bytes: Uint8Array, revision: number): Promise<number>;
  /** Lists stored keys starting with `prefix` (for tools and tests). */
  keys?(prefix: string): Promise<string[]>;
}

/** Stores state in a JetStream KV bucket. */
export function createKvStore(kv: KV): StateStore {
  return {
    async load(key) {
      const entry = await kv.get(key);
      if (!entry || entry.operation !== 'PUT') return { bytes: undefined, revision: entry ? entry.revision : 0 };
      return { bytes: entry.value, revision: entry.revision };
    },
    async save(key, bytes, revision) {
      try {
        return revision === 0 ? await kv.create(key, bytes) : await kv.update(key, bytes, revision);
      } catch (e) {
        if (isWrongLastSequence(e)) throw new RevisionConflict(`revision ${revision} of '${key}' is stale`);
        throw new MoltError(ErrorCode.Unavailable, `could not write actor state '${key}': ${e instanceof Error ? e.message : String(e)}`, { cause: e });
      }
    },
    async keys(prefix) {
      const out: string[] = [];
      for await (const k of await kv.keys(`${prefix}>`)) out.push(k);
      return out;
    },
  };
}

function isWrongLastSequence(e: unknown): boolean {
  const text = `${(e as Error)?.message ?? ''} ${String((e as { cause?: unknown })?.cause ?? '')}`;
  // JetStream answers a failed compare-and-set with "wrong last sequence" (err_code 10071),
  // and a create of an existing key the same way.
  return /wrong last sequence|10071|key exists/i.test(text) || (e as { code?: unknown })?.code === 10071 ||
    (e as { api_error?: { err_code?: number } })?.api_error?.err_code === 10071;
}

/** Stores state in memory (volatile types): lost when the process exits. */
export function createMemoryStore(): StateStore {
  const data = new Map<string, { bytes: Uint8Array; revision: number }>();
  return {
    async load(key) {
      const r = data.get(key);
      return r ? { bytes: r.bytes, revision: r.revision } : { bytes: undefined, revision: 0 };
    },
    async save(key, bytes, revision) {
      const r = data.get(key);
      if ((r?.revision ?? 0) !== revision) throw new RevisionConflict(`revision ${revision} of '${key}' is stale`);
      const next = revision + 1;
      data.set(key, { bytes, revision: next });
      return next;
    },
    async keys(prefix) {
      return [...data.keys()].filter((k) => k.startsWith(prefix));
    },
  };
}
