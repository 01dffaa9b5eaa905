/**
 * Typed access to the upgrade database (UDB) of one service. Records and keys
 * are in ./records.ts; this module reads, writes (rollouts with
 * compare-and-set) and watches them.
 *
 * @module
 */
import type { NatsConnection } from '@nats-io/transport-node';
import { Kvm, type Bucket, type KV, type KvEntry } from '@nats-io/kv';
import { jetstreamManager, type JetStreamManager } from '@nats-io/jetstream';
import { ErrorCode, MoltError } from '../errors.ts';
import { bucketNames } from '../wire/protocol.ts';
import { ensureServiceBuckets } from './buckets.ts';
import { controlsInForce, haltRecord } from './halts.ts';
import { isWrongLastSequence } from '../host/store.ts';
import { listSubjectKeys, readLastOfEach } from '../nats/kv-reads.ts';
import { stopWatch } from '../nats/internals.ts';
import {
  parseRecord,
  udbKey,
  udbShapes,
  type RecordShape,
  UdbPrefix,
  type ControlRecord,
  type NodeRecord,
  type ProgressRecord,
  type ReportRecord,
  type RetireRecord,
  type RolloutRecord,
  type CallerRecord,
} from './records.ts';

export * from './records.ts';

/** A record with the KV revision it was read at. */
export interface Versioned<T> {
  record: T;
  revision: number;
}

/** Everything in the UDB, as `molt status` shows it. */
export interface UdbSnapshot {
  nodes: NodeRecord[];
  rollouts: RolloutRecord[];
  control: ControlRecord[];
  retired: RetireRecord[];
  progress: ProgressRecord[];
  reports: ReportRecord[];
  /** Every node's caller evidence (`callers.<type>.<node>`, ./evidence.ts); absent from snapshots made without it. */
  callers?: CallerRecord[];
}

const MAX_CAS_ATTEMPTS = 16;

/** How long a snapshot's read of the values waits for the last of them before it fails (the caller reads again later). */
const SNAPSHOT_READ_TIMEOUT_MS = 10_000;

const encode = (value: unknown) => JSON.stringify(value);

/** Typed access to a service's UDB bucket. */
export class Udb {
  private jsm: Promise<JetStreamManager> | undefined;

  /**
   * @param nc - the connection `kv` was opened on; with it, {@link Udb.snapshot}
   *   reads a complete snapshot or fails (see there).
   */
  constructor(
    readonly kv: KV,
    readonly service: string,
    private readonly nc?: NatsConnection,
  ) {}

  /**
   * Every entry (latest value) under `prefix`, e.g. `nodes.`: the keys are
   * listed, then each is read — except those `skip` says the caller knows
   * already (and will not find changed).
   */
  async readAll(prefix: string, skip?: (key: string) => boolean): Promise<KvEntry[]> {
    // Deleted keys are listed too (their marker is a message) and left out below, once read.
    const keys = (await listSubjectKeys(this.kv, `${prefix}>`)).filter((key) => !skip?.(key));
    const entries = await Promise.all(keys.map((k) => this.kv.get(k)));
    return entries.filter((e): e is KvEntry => e !== null && e.operation === 'PUT');
  }

  /**
   * The last message of every key matching `filter` (deletes and purges too),
   * by key, delivered by one consumer — not a key listing and a get per key,
   * which cost `molt status --watch` and the dashboard, every second, one
   * request per node, rollout and progress record ever written.
   */
  private async lastOfEach(filter: string): Promise<Map<string, KvEntry>> {
    // Every Udb's KV is opened through `Kvm` (nats.js's Bucket): its stream and consumers are at hand.
    const bucket = this.kv as Bucket;
    const latest = new Map<string, KvEntry>();
    // A status watcher reads once a second: the consumer goes with each read.
    await readLastOfEach(this.kv, filter, { timeoutMs: SNAPSHOT_READ_TIMEOUT_MS, what: 'read' }, (m) => {
      // An ordered consumer that restarts under concurrent writes (heartbeats
      // never stop) resumes after the last message it delivered: keep the newest.
      const entry = bucket.jmToWatchEntry(m, false);
      if ((latest.get(entry.key)?.revision ?? 0) < entry.revision) latest.set(entry.key, entry);
    });
    return latest;
  }

  private async all<T>(prefix: string, shape: RecordShape<T>): Promise<T[]> {
    const out: T[] = [];
    for (const e of await this.readAll(prefix)) {
      const r = parseRecord(e.value, shape);
      if (r) out.push(r);
    }
    return out;
  }

  private async one<T>(key: string, shape: RecordShape<T>): Promise<Versioned<T> | undefined> {
    const e = await this.kv.get(key);
    if (!e || e.operation !== 'PUT') return undefined;
    const record = parseRecord(e.value, shape);
    return record ? { record, revision: e.revision } : undefined;
  }

  nodes(): Promise<NodeRecord[]> {
    return this.all(UdbPrefix.nodes, udbShapes.node);
  }
  /** One node's record, read directly (no key listing). */
  async node(id: string): Promise<NodeRecord | undefined> {
    return (await this.one(udbKey.node(id), udbShapes.node))?.record;
  }
  rollouts(): Promise<RolloutRecord[]> {
    return this.all(UdbPrefix.rollouts, udbShapes.rollout);
  }
  rollout(id: string): Promise<Versioned<RolloutRecord> | undefined> {
    return this.one(udbKey.rollout(id), udbShapes.rollout);
  }
  /** The control in force on each rollout: the operator's last command, or a node's later halt (./halts.ts). */
  async controls(): Promise<ControlRecord[]> {
    return [...controlsInForce(await this.readAll(UdbPrefix.control)).values()];
  }
  /** The control in force on one rollout (./halts.ts). */
  async control(id: string): Promise<ControlRecord | undefined> {
    const [own, halts] = await Promise.all([this.kv.get(udbKey.control(id)), this.readAll(`${udbKey.control(id)}.`)]);
    return controlsInForce(own ? [own, ...halts] : halts).get(id);
  }
  retirements(): Promise<RetireRecord[]> {
    return this.all(UdbPrefix.retired, udbShapes.retired);
  }
  progress(rolloutId?: string): Promise<ProgressRecord[]> {
    return this.all(rolloutId ? `${UdbPrefix.progress}${rolloutId}.` : UdbPrefix.progress, udbShapes.progress);
  }
  reports(): Promise<ReportRecord[]> {
    return this.all(UdbPrefix.reports, udbShapes.report);
  }
  /** Caller evidence (./evidence.ts), of one type or all. */
  callers(type?: string): Promise<CallerRecord[]> {
    return this.all(type ? `${UdbPrefix.callers}${type}.` : UdbPrefix.callers, udbShapes.callers);
  }

  /**
   * Everything in the UDB at once, as `molt status` shows it.
   *
   * With the connection given to the constructor, the snapshot is complete,
   * or this throws `Unavailable`: the keys come from the stream's own subject
   * list (one request, paged by the client), the values from one consumer of
   * each key's last message, and every listed key must be among them. The
   * consumer alone would not do: like the key lister it ends quietly with
   * what it has received when it goes away (a nats-server dying or shutting
   * down), so a read could show no nodes and no rollouts while both exist. A
   * watcher of the whole service must never be shown an empty world it
   * cannot tell from a real one.
   */
  async snapshot(): Promise<UdbSnapshot> {
    if (!this.nc) {
      const [nodes, rollouts, control, retired, progress, reports, callers] = await Promise.all([
        this.nodes(),
        this.rollouts(),
        this.controls(),
        this.retirements(),
        this.progress(),
        this.reports(),
        this.callers(),
      ]);
      return { nodes, rollouts, control, retired, progress, reports, callers };
    }
    const entries = [...(await this.lastMessages()).values()].filter((e) => e.operation === 'PUT');
    const of = <T>(prefix: string, shape: RecordShape<T>): T[] => {
      const out: T[] = [];
      for (const e of entries) {
        if (!e.key.startsWith(prefix)) continue;
        const r = parseRecord(e.value, shape);
        if (r) out.push(r);
      }
      return out;
    };
    return {
      nodes: of(UdbPrefix.nodes, udbShapes.node),
      rollouts: of(UdbPrefix.rollouts, udbShapes.rollout),
      control: of(UdbPrefix.control, udbShapes.control),
      retired: of(UdbPrefix.retired, udbShapes.retired),
      progress: of(UdbPrefix.progress, udbShapes.progress),
      reports: of(UdbPrefix.reports, udbShapes.report),
      callers: of(UdbPrefix.callers, udbShapes.callers),
    };
  }

  /**
   * The last message of every key in the bucket — a deleted key's is its
   * tombstone — read completely, as {@link Udb.snapshot} reads (it needs the
   * connection given to the constructor).
   *
   * @throws MoltError `Unavailable` if a key listed could not be read.
   */
  async lastMessages(): Promise<Map<string, KvEntry>> {
    if (!this.nc) throw new MoltError(ErrorCode.Unavailable, `reading the whole upgrade database of '${this.service}' needs its connection: open it with openUdb`);
    try {
      // Listed first: every key listed then has a message before the read starts
      // (a deleted key's is its tombstone), so one not delivered means a
      // server that does not hold it yet (a replica catching up after a
      // restart) or a read cut short, never a key written in between.
      const keys = await listSubjectKeys(this.kv, '>');
      const latest = await this.lastOfEach('>');
      const missing = keys.filter((k) => !latest.has(k));
      if (missing.length > 0) throw new Error(`${missing.length} of ${keys.length} keys could not be read (${missing.slice(0, 3).join(', ')}${missing.length > 3 ? ', …' : ''})`);
      return latest;
    } catch (e) {
      throw new MoltError(ErrorCode.Unavailable, `cannot read the upgrade database of '${this.service}' (${bucketNames(this.service).udb}) completely: ${(e as Error).message}`, { cause: e });
    }
  }

  /**
   * Removes every message — value, history and tombstone — of the keys
   * matching each filter (`nodes.n4`, `progress.*.n4`, `reports.n4.>`), with
   * one purge of the bucket's stream per filter. Nothing marks the removal:
   * a watcher does not see it, a reader no longer finds the key. Only for
   * records nobody needs any more (./prune.ts in operate/ says which).
   *
   * @returns the number of messages removed.
   */
  async purgeKeys(filters: readonly string[]): Promise<number> {
    const jsm = await this.manager();
    const bucket = bucketNames(this.service).udb;
    let purged = 0;
    for (const filter of filters) purged += (await jsm.streams.purge(`KV_${bucket}`, { filter: `$KV.${bucket}.${filter}` })).purged;
    return purged;
  }

  private manager(): Promise<JetStreamManager> {
    if (!this.nc) throw new MoltError(ErrorCode.Unavailable, `the stream of the upgrade database of '${this.service}' is reached through its connection: open it with openUdb`);
    this.jsm ??= jetstreamManager(this.nc, { checkAPI: false });
    this.jsm.catch(() => (this.jsm = undefined));
    return this.jsm;
  }

  /** Creates a rollout record; false if one with that id exists. */
  async createRollout(record: RolloutRecord): Promise<boolean> {
    try {
      await this.kv.create(udbKey.rollout(record.rolloutId), encode(record));
      return true;
    } catch (e) {
      const existing = await this.kv.get(udbKey.rollout(record.rolloutId));
      if (existing?.operation === 'PUT') return false;
      throw e;
    }
  }

  /**
   * Changes a rollout with compare-and-set: `change` gets the current record
   * and returns the next one, or undefined to leave it. Retries on conflict.
   */
  async updateRollout(id: string, change: (current: RolloutRecord) => RolloutRecord | undefined): Promise<RolloutRecord | undefined> {
    for (let attempt = 0; attempt < MAX_CAS_ATTEMPTS; attempt++) {
      const current = await this.rollout(id);
      if (!current) return undefined;
      const next = change(current.record);
      if (!next) return current.record;
      try {
        await this.kv.update(udbKey.rollout(id), encode(next), current.revision);
        return next;
      } catch (e) {
        if (!isWrongLastSequence(e)) throw e;
      }
    }
    throw new MoltError(ErrorCode.Unavailable, `rollout ${id}: ${MAX_CAS_ATTEMPTS} conflicting writes in a row; another writer keeps changing it, try again`, { data: { rollout: id } });
  }

  async setControl(record: ControlRecord): Promise<void> {
    await this.kv.put(udbKey.control(record.rolloutId), encode(record));
  }
  /** A node halts a rollout, under its own key (./halts.ts). */
  async putHalt(nodeId: string, rolloutId: string, reason: string, at: number): Promise<void> {
    await this.kv.put(udbKey.halt(rolloutId, nodeId), encode(haltRecord(rolloutId, nodeId, reason, at)));
  }
  async retire(record: RetireRecord): Promise<void> {
    await this.kv.put(udbKey.retired(record.type, record.version), encode(record));
  }
  async putProgress(record: ProgressRecord): Promise<void> {
    await this.kv.put(udbKey.progress(record.rolloutId, record.nodeId), encode(record));
  }
  /** Removes a node's report about a descriptor (it was applied after all). */
  async deleteReport(nodeId: string, type: string, to: number): Promise<void> {
    const key = udbKey.report(nodeId, type, to);
    const existing = await this.kv.get(key);
    if (existing?.operation === 'PUT') await this.kv.delete(key);
  }
  async putReport(record: ReportRecord): Promise<void> {
    const m = /^upgrade\.([^.]+)\.(\d+)$/.exec(record.key);
    await this.kv.put(udbKey.report(record.nodeId, m?.[1] ?? 'unknown', Number(m?.[2] ?? 0)), encode(record));
  }

  /**
   * Watches every key under `prefix` (initial values first). The callback
   * never throws into the watch. Returns a function that stops watching; the
   * watch ends by itself if NATS closes — reconcile with a full read.
   */
  async watch(prefix: string, onEntry: (entry: KvEntry) => void, onEnd?: (error?: unknown) => void): Promise<() => void> {
    const watcher = await this.kv.watch({ key: `${prefix}>` });
    void (async () => {
      for await (const entry of watcher) {
        try {
          onEntry(entry);
        } catch {
          // A faulty observer must not end the watch.
        }
      }
    })().then(
      () => onEnd?.(),
      (e) => onEnd?.(e),
    );
    return () => stopWatch(watcher);
  }
}

/**
 * Opens a service's UDB bucket, once the service is set up (udb/buckets.ts:
 * on a server without authentication this sets it up; elsewhere a missing
 * bucket is an error naming `molt setup`).
 */
export async function openUdb(nc: NatsConnection, service: string, options: { replicas?: number; asker?: string } = {}): Promise<Udb> {
  const infos = await ensureServiceBuckets(nc, service, { ...(options.replicas !== undefined ? { replicas: options.replicas } : {}), asker: options.asker ?? 'this tool' });
  const name = bucketNames(service).udb;
  const kv = await new Kvm(nc).open(name, { allow_direct: infos.get(name)?.config.allow_direct === true });
  return new Udb(kv, service, nc);
}
