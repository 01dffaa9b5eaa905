/**
 * `molt rehearse`: an upgrade tried on a live service's real actors before
 * its rollout, read-only. Each stored actor of the type is read from the
 * state bucket, carried through the transform chain in memory, and read
 * before and after through every interface a node serves on both sides, then
 * carried back down where every version declares `down`; the actors whose TF
 * throws, that answer differently, or whose way back fails are named. Nothing
 * is written anywhere.
 *
 * @module
 */
import { Bucket, Kvm, type KV, type KvEntry } from '@nats-io/kv';
import { DeliverPolicy, type JsMsg } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import { ErrorCode, MoltError } from '../errors.ts';
import type { ActorType } from '../define/service.ts';
import type { PersistedActor } from '../upgrade/layer.ts';
import { bucketNames, decodeKey } from '../wire/protocol.ts';
import { createSuperjsonCodec, type Codec } from '../wire/codec.ts';
import { rehearsalReads, rehearseActor, type VerifyCall } from './check.ts';
import type { GeneratorOverrides } from './arbitrary.ts';
import { listLiveKeys } from '../nats/kv-reads.ts';

/** Options of {@link rehearse}. */
export interface RehearseOptions {
  nats: NatsConnection;
  /** The service's name (its state bucket is `molt_<service>_state`). */
  service: string;
  /** The type, with every version from the oldest stored one up to `to`. */
  type: ActorType;
  /** The version to rehearse the upgrade to. */
  to: number;
  /** Check this many actors, picked at random (default: all). */
  sample?: number;
  /** Random reads per stored version, beside the smallest one of each ask (default 4). */
  reads?: number;
  seed?: number;
  generators?: GeneratorOverrides;
  /** The codec the nodes store state with (default: superjson, as nodes use). */
  codec?: Codec;
  /**
   * With `sample`: reads in flight at once (default 32). A full rehearsal
   * reads the whole type in one stream instead (see {@link rehearse}).
   */
  concurrency?: number;
  /** Called after each actor: how many are done, of how many. */
  onProgress?: (done: number, total: number) => void;
}

/** An actor the upgrade would hurt. */
export interface RehearsedActor {
  /** The actor's key (as callers name it). */
  key: string;
  /** The version its state was stored at. */
  version: number;
  /**
   * `transform-failed`: a TF of the chain threw, or its result is no state of
   * the new version; `identity`: a read answered differently after the
   * upgrade; `down-failed`: carried up and back down (each version's `down`,
   * as a node rolled back to the stored version loads it), it could not be
   * loaded; `unreadable`: the stored record is not an actor's.
   */
  problem: 'transform-failed' | 'identity' | 'down-failed' | 'unreadable';
  detail: string;
  /** For `identity`: the read that answered differently. */
  read?: VerifyCall;
}

/** What {@link rehearse} found. */
export interface RehearseReport {
  service: string;
  type: string;
  to: number;
  /** Actors of the type stored in the bucket. */
  stored: number;
  /** Actors checked (all, or the sample). */
  checked: number;
  /** Actors already at `to` or later: nothing to carry. */
  current: number;
  failures: RehearsedActor[];
  ms: number;
}

/** A seeded shuffle's first `n` (Fisher–Yates on a copy, xorshift from the seed). */
function pick<T>(items: readonly T[], n: number, seed: number): T[] {
  const out = [...items];
  let x = seed | 0 || 1;
  const next = () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) / 0x100000000;
  };
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(next() * (i + 1));
    [out[i], out[j]] = [out[j]!, out[i]!];
  }
  return out.slice(0, n);
}

function decodeRecord(codec: Codec, bytes: Uint8Array): PersistedActor | string {
  try {
    const value = codec.decode(bytes) as Partial<PersistedActor> | null;
    if (typeof value !== 'object' || value === null || Array.isArray(value)) return 'it is not an object';
    if (!Number.isSafeInteger(value.v) || (value.v as number) < 1) return `its version field 'v' is ${JSON.stringify(value.v) ?? 'missing'}`;
    if (!('context' in value)) return "it has no 'context'";
    return value as PersistedActor;
  } catch (e) {
    return `it is not a superjson document (${(e as Error).message})`;
  }
}

/**
 * Sends the latest entry of every key matching `filter` to `each`, in one
 * ordered push consumer delivering the last value per subject: one pass over
 * the bucket, with no request per key (a `get` costs a round trip and a
 * JetStream API reply per key, more than the rehearsal of a small actor).
 * `each` runs synchronously as entries arrive, so the stream is paced by it
 * (flow control). Resolves with how many entries there were when it started
 * (deletion markers included); writes made meanwhile are not waited for.
 */
async function streamLatest(kv: Bucket, filter: string, each: (entry: KvEntry, done: number, total: number) => void): Promise<number> {
  const consumer = await kv.js.consumers.getPushConsumer(kv.stream, { filter_subjects: kv.fullKeyName(filter), deliver_policy: DeliverPolicy.LastPerSubject });
  const total = (await consumer.info(true)).num_pending;
  if (total === 0) {
    await consumer.delete().catch(() => undefined);
    return 0;
  }
  let received = 0;
  let failed: unknown;
  let finish!: () => void;
  const finished = new Promise<void>((resolve) => (finish = resolve));
  const messages = await consumer.consume({
    callback: (m: JsMsg) => {
      if (received >= total || failed !== undefined) return;
      received++;
      try {
        each(kv.jmToWatchEntry(m, false), received, total);
      } catch (e) {
        failed = e;
      }
      // Pending 0: nothing more was stored (a key deleted since the start is not delivered).
      if (received >= total || m.info.pending === 0 || failed !== undefined) finish();
    },
  });
  void messages.closed().then((e) => {
    if (received < total && failed === undefined) failed = e ?? new Error(`the stream of ${kv.stream} ended after ${received} of ${total} entries`);
    finish();
  });
  await finished;
  messages.stop();
  await consumer.delete().catch(() => undefined);
  if (failed !== undefined) throw failed;
  return received;
}

/** Rehearses the upgrade of `options.type` to `options.to` on the actors stored in the service's state bucket. */
export async function rehearse(options: RehearseOptions): Promise<RehearseReport> {
  const started = performance.now();
  const { type, to } = options;
  const versions = type.versions;
  if (!versions.some((v) => v.version === to)) {
    throw new MoltError(ErrorCode.InvalidDefinition, `${type.name} has no version ${to} in this module; it has ${versions.map((v) => v.version).join(', ')}`);
  }
  const bucket = bucketNames(options.service).state;
  let kv: KV;
  try {
    kv = await new Kvm(options.nats).open(bucket);
    await kv.status();
  } catch (e) {
    throw new MoltError(ErrorCode.OperationRefused, `no state bucket ${bucket} on this NATS (${(e as Error).message}): is the service '${options.service}' running here?`, { cause: e });
  }
  const prefix = `${type.name}.`;
  const codec = options.codec ?? createSuperjsonCodec();
  const readsByVersion = new Map<number, VerifyCall[]>();
  const readsFor = (v: number) => {
    let reads = readsByVersion.get(v);
    if (!reads) readsByVersion.set(v, (reads = rehearsalReads(versions, v, to, { random: options.reads ?? 4, seed: options.seed, generators: options.generators })));
    return reads;
  };
  const report: RehearseReport = { service: options.service, type: type.name, to, stored: 0, checked: 0, current: 0, failures: [], ms: 0 };
  /** One stored actor: its record decoded, carried and read (an entry that is not a value is skipped). */
  const check = (entry: KvEntry | null, storeKey: string): void => {
    if (!entry || entry.operation !== 'PUT') return;
    let key = storeKey.slice(prefix.length);
    try {
      key = decodeKey(key);
    } catch {
      // Shown as stored.
    }
    report.checked++;
    const record = decodeRecord(codec, entry.value);
    if (typeof record === 'string') {
      report.failures.push({ key, version: 0, problem: 'unreadable', detail: `its stored record cannot be read: ${record}` });
    } else if (record.v >= to) {
      report.current++;
    } else {
      const found = rehearseActor(versions, to, record, readsFor(record.v), key);
      if (found) report.failures.push({ key, version: record.v, ...found });
    }
  };

  if (options.sample === undefined && kv instanceof Bucket) {
    // Every actor: one stream over the type's keys, each checked as it arrives.
    await streamLatest(kv, `${prefix}>`, (entry, done, total) => {
      if (entry.operation === 'PUT') report.stored++;
      check(entry, entry.key);
      options.onProgress?.(done, total);
    });
  } else {
    // A sample: the keys first (the pick is made from all of them, sorted), then only the chosen actors, `concurrency` reads at once.
    const keys: string[] = [];
    if (kv instanceof Bucket) keys.push(...(await listLiveKeys(kv, `${prefix}>`)));
    else for await (const k of await kv.keys(`${prefix}>`)) keys.push(k);
    keys.sort();
    report.stored = keys.length;
    const chosen = options.sample !== undefined && options.sample < keys.length ? pick(keys, options.sample, options.seed ?? 1) : keys;
    let next = 0;
    let done = 0;
    const worker = async () => {
      while (next < chosen.length) {
        const storeKey = chosen[next++]!;
        const entry = await kv.get(storeKey);
        done++;
        check(entry, storeKey);
        options.onProgress?.(done, chosen.length);
      }
    };
    await Promise.all(Array.from({ length: Math.max(1, options.concurrency ?? 32) }, worker));
  }
  report.failures.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  report.ms = performance.now() - started;
  return report;
}
