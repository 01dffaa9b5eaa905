/**
 * The upgrade server's storage, shared by publishers (who write) and nodes
 * (who read): descriptors in KV `molt_<service>_upgrades`, bundles in the
 * Object Store `molt_<service>_bundles` under `sha256-<digest>`.
 *
 * The operator creates these buckets (`molt setup`, udb/buckets.ts); under the
 * permissions of docs/permissions.md only publishers may write them, and nodes
 * only read them.
 *
 * @module
 */
import type { NatsConnection } from '@nats-io/transport-node';
import { Kvm, type KV, type KvEntry } from '@nats-io/kv';
import { Objm, type ObjectStore } from '@nats-io/obj';
import { jetstreamManager, type MsgRequest } from '@nats-io/jetstream';
import { ErrorCode, MoltError } from '../errors.ts';
import { bundleObjectName, rejected } from './descriptor.ts';
import { sha256Hex } from './bundle.ts';
import { ensureServiceBuckets } from '../udb/buckets.ts';
import { listSubjectKeys } from '../nats/kv-reads.ts';

/** Bucket names of a service's upgrade server. */
export function upgradeBucketNames(service: string) {
  return {
    /** Signed descriptors, `upgrade.<type>.<to>`. */
    descriptors: `molt_${service}_upgrades`,
    /** Bundles, `sha256-<hex digest>`. */
    bundles: `molt_${service}_bundles`,
  } as const;
}

/** A stored descriptor as read from KV (not yet verified). */
export interface StoredDescriptor {
  key: string;
  revision: number;
  value: Uint8Array;
}

/** Access to one service's descriptors and bundles. */
export interface UpgradeStore {
  readonly service: string;
  readonly descriptors: KV;
  /** All stored descriptors (`upgrade.>`), unverified. */
  list(): Promise<StoredDescriptor[]>;
  /**
   * The earlier values of descriptor `key` the bucket still holds (its history,
   * 10 revisions), oldest first, below revision `below`; unverified, deletions
   * left out. Read with one stream message get each, no consumer.
   */
  earlierRevisions(key: string, below: number): Promise<StoredDescriptor[]>;
  /**
   * Bundle bytes by digest, or null if absent. With `maxBytes`, an object the
   * store says is larger is refused before any of it is downloaded, and a
   * download is cut off as soon as more than `maxBytes` arrived (throws
   * `UpgradeRejected`, reason `bundle-too-large`).
   */
  getBundle(digest: string, options?: { maxBytes?: number }): Promise<Uint8Array | null>;
  /** Stores bundle bytes (once per digest) and returns the digest. */
  putBundle(bytes: Uint8Array): Promise<string>;
}

/** Options of {@link openUpgradeStore}. */
export interface OpenUpgradeStoreOptions {
  /**
   * `true` (publishers): the service must be set up (udb/buckets.ts: on a
   * server without authentication this sets it up; elsewhere a missing bucket
   * is an error naming `molt setup`). `false` (nodes, tools): only bind, and
   * resolve to undefined while the buckets do not exist.
   */
  create: boolean;
  /** Replicas the buckets must have (publish's `--replicas`); checked with `create`. */
  replicas?: number;
}

function isNotFound(e: unknown): boolean {
  const text = String((e as Error)?.message ?? e);
  return /stream not found|not found|no stream/i.test(text);
}

/**
 * Opens a service's upgrade store. With `create: false`, resolves to undefined
 * while the buckets do not exist yet (the service was never set up).
 */
export async function openUpgradeStore(nc: NatsConnection, service: string, options: OpenUpgradeStoreOptions): Promise<UpgradeStore | undefined> {
  const names = upgradeBucketNames(service);
  if (options.create) await ensureServiceBuckets(nc, service, { ...(options.replicas !== undefined ? { replicas: options.replicas } : {}), asker: 'molt publish' });
  let descriptors: KV;
  let bundles: ObjectStore;
  try {
    descriptors = await new Kvm(nc).open(names.descriptors);
    await descriptors.status();
    bundles = await new Objm(nc).open(names.bundles);
  } catch (e) {
    if (!options.create && isNotFound(e)) return undefined;
    throw new MoltError(ErrorCode.Unavailable, `cannot open the upgrade buckets of '${service}' (${names.descriptors}, ${names.bundles}): ${(e as Error).message}`, { cause: e });
  }
  let jsm: Awaited<ReturnType<typeof jetstreamManager>> | undefined;
  return {
    service,
    descriptors,
    async list() {
      // Deleted descriptors are listed too, and left out once read.
      const keys = await listSubjectKeys(descriptors, 'upgrade.>');
      const entries = await Promise.all(keys.map((k) => descriptors.get(k)));
      return entries
        .filter((e): e is KvEntry => e !== null && e.operation === 'PUT')
        .map((e) => ({ key: e.key, revision: e.revision, value: e.value }));
    },
    async earlierRevisions(key, below) {
      jsm ??= await jetstreamManager(nc, { checkAPI: false });
      const out: StoredDescriptor[] = [];
      // A stream holds 10 revisions of a key; the bound guards against a misconfigured bucket.
      for (let seq = 1, reads = 0; reads < 64; reads++) {
        // The server's message get takes `next_by_subj` (first message of the subject at or after `seq`); the client's type omits it.
        const query = { seq, next_by_subj: `$KV.${names.descriptors}.${key}` } as unknown as MsgRequest;
        const m = await jsm.streams.getMessage(`KV_${names.descriptors}`, query);
        if (!m || m.seq >= below) break;
        if (m.data.length > 0) out.push({ key, revision: m.seq, value: m.data });
        seq = m.seq + 1;
      }
      return out;
    },
    async getBundle(digest, options = {}) {
      const name = bundleObjectName(digest);
      const { maxBytes } = options;
      const tooLarge = (size: string) =>
        rejected('bundle-too-large', `the bundle ${name} is ${size} bytes, over the limit of ${maxBytes} bytes; it was not downloaded`, { size, maxBytes });
      // A bundle of one chunk (up to 128 KiB, most are) is read with one
      // stream message get instead of getBlob's push consumer, whose creation
      // costs nats-server ≈ 4 ms of CPU: 50 nodes fetching one bundle queued
      // 200+ ms there. Callers check the bytes against the signed digest.
      const info = await bundles.info(name);
      if (!info || info.deleted) return null;
      // The size the store records, before a byte is fetched (checked again while receiving: a writer sets it).
      if (maxBytes !== undefined && info.size > maxBytes) throw tooLarge(String(info.size));
      if (info.chunks === 1 && !info.options?.link) {
        jsm ??= await jetstreamManager(nc, { checkAPI: false });
        const chunk = await jsm.streams.getMessage(`OBJ_${names.bundles}`, { last_by_subj: `$O.${names.bundles}.C.${info.nuid}` });
        if (chunk && chunk.data.length === info.size) return chunk.data;
      }
      if (maxBytes === undefined) return bundles.getBlob(name);
      const object = await bundles.get(name);
      if (!object) return null;
      // Its outcome is read below; a download cut off must not leave it an unhandled rejection.
      const outcome = object.error.catch((e: unknown) => e as Error);
      const reader = object.data.getReader();
      const parts: Uint8Array[] = [];
      let received = 0;
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        received += value.length;
        if (received > maxBytes) {
          await reader.cancel().catch(() => undefined);
          throw tooLarge(`more than ${received}`);
        }
        parts.push(value);
      }
      const error = await outcome;
      if (error) throw error;
      return Buffer.concat(parts);
    },
    async putBundle(bytes) {
      const digest = sha256Hex(bytes);
      const name = bundleObjectName(digest);
      const existing = await bundles.info(name);
      // The store's own digest is SHA-256 in padded base64url; re-upload if it differs (e.g. tampered).
      const expected = `SHA-256=${Buffer.from(digest, 'hex').toString('base64url')}`;
      if (!existing || existing.deleted || existing.digest.replace(/=+$/, '') !== expected) {
        await bundles.putBlob({ name, description: 'molt upgrade bundle (ES module)' }, bytes);
      }
      return digest;
    },
  };
}
