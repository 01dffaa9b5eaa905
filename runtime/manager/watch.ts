/**
 * How the manager learns: a KV watch on the descriptors (`upgrade.>` in the
 * upgrades bucket) for sub-second reaction, watches on the UDB keys it
 * follows (`control.>`, `rollouts.>`, `retired.>`; the node records,
 * `nodes.>`, come from the node's placement watch, which follows them
 * already — a watch of its own would double their deliveries), and a full
 * read of all of them — reconciliation — at start, after every reconnect,
 * whenever a watch has ended (it ends when its server goes away; the
 * reconciliation restarts it) and every {@link FULL_READ_EVERY} periods.
 *
 * Every `reconcileMs` a periodic pass checks that every watch still runs and
 * still delivers (a watch that has stalled is restarted, see
 * `stalledWatches`) and acts on what the manager knows (retries, lifecycles,
 * rollbacks, counts); it reads everything again only when a watch has ended
 * or stalled, or the full read is due. Why not a full read every period: a
 * running watch is an ordered consumer that restarts itself from the last
 * value it delivered on a gap, so it already holds what a read would return;
 * the read costs five key listings and one get per record, per manager and
 * period — with 50 nodes, ≈ 20 % of a nats-server core, in bursts that
 * delayed the watches themselves. The full reads of different managers
 * start at a random period so that they do not come together, and read again
 * only the rollouts whose records can still change ({@link settledRollouts}).
 *
 * Every record, however it arrives, goes through one observer per key family
 * that keeps the newest revision in the manager's context and tells the rest
 * what changed (the hooks).
 *
 * @module
 */
import type { KV, KvEntry } from '@nats-io/kv';
import { lastRevision } from '../nats/kv-reads.ts';
import { stopWatch } from '../nats/internals.ts';
import { parseDescriptorKey } from '../server/descriptor.ts';
import { openUpgradeStore, type StoredDescriptor } from '../server/store.ts';
import { controlOf, replaces } from '../udb/halts.ts';
import {
  isFinal,
  isNewest,
  newestOfEachType,
  parseRecord,
  parseSharedRecord,
  UdbPrefix,
  udbShapes,
  type ControlRecord,
  type NodeRecord,
  type RetireRecord,
  type RolloutRecord,
} from '../udb/index.ts';
import type { ManagerContext } from './context.ts';
import { errorText } from './model.ts';
import { fnv1a } from '../wire/protocol.ts';

/** Same native version of every type (a heartbeat usually changes neither). */
function sameVersions(a: Readonly<Record<string, number>>, b: Readonly<Record<string, number>>): boolean {
  const keys = Object.keys(a);
  if (keys.length !== Object.keys(b).length) return false;
  for (const k of keys) if (a[k] !== b[k]) return false;
  return true;
}

/** What the watch tells the rest of the manager. */
export interface WatchHooks {
  /** A descriptor appeared or changed. */
  descriptorsChanged(): void;
  /** A node's version or status changed, or it left: scheduling functions see the node list again. */
  nodesChanged(): void;
  /** A node's version or status changed, or a rollout appeared: the rollouts are counted again. */
  recount(): void;
  control(record: ControlRecord): void;
  rollout(record: RolloutRecord): void;
  retired(): void;
  /** After each reconciliation's read (retries, lifecycles, rollbacks, counts). */
  reconciled(): Promise<void>;
  /** Every descriptor was read (the upgrades bucket listed without error). */
  descriptorsRead(): void;
}

/** Every this many periodic passes, a full read even with every watch running. */
export const FULL_READ_EVERY = 12;
/** The watches a manager keeps: nodes, control, rollouts, retired (UDB) and descriptors. */
const WATCH_COUNT = 5;

/** A watch the manager keeps running. */
interface RunningWatch {
  stop(): void;
  /** The bucket and key filter it follows (absent for the node records: placement checks that watch). */
  followed?: { kv: KV; filter: string };
  /** The highest revision it has delivered. */
  delivered: number;
  /** A revision stored under its keys and not yet delivered at the last stall check. */
  missing?: number;
}

export interface Watch {
  /** Reads everything again and acts on it (one at a time: a call during a reconciliation joins it). */
  reconcile(): Promise<void>;
  /**
   * The periodic pass: a full {@link Watch.reconcile} if a watch has ended or
   * one is due, else only the reconciliation's actions on what is known.
   */
  periodic(): Promise<void>;
  /** Reconciles after every reconnect to NATS. */
  followReconnects(): void;
  /** Stops every watch. */
  stop(): void;
}

/**
 * The rollouts whose records can no longer change, of those known: ended
 * (`done`, `aborted`, `rolled-back`) and superseded by a later rollout of the
 * type — so their counts are no longer kept — that has not been rolled back
 * (a `done` or `aborted` one can still be rolled back once every later one
 * is; a `rolled-back` one cannot change). A full read lists their keys but
 * does not read them again: with one rollout per publish, reading them all
 * made every manager's full read grow with every upgrade the service ever
 * had. (A restarted watch delivers every record again.)
 */
export function settledRollouts(known: Iterable<RolloutRecord>): Set<string> {
  const all = [...known];
  const newest = newestOfEachType(all);
  const newestStanding = newestOfEachType(all.filter((r) => r.state !== 'rolled-back'));
  const settled = new Set<string>();
  for (const r of all) {
    if (isFinal(r) && !isNewest(r.state === 'rolled-back' ? newest : newestStanding, r)) settled.add(r.rolloutId);
  }
  return settled;
}

export function createWatch(ctx: ManagerContext, hooks: WatchHooks): Watch {
  const { node, udb, clock, logger } = ctx;
  const watches = new Map<string, RunningWatch>();
  let reconciling: Promise<void> | undefined;
  /** Periodic passes until the next full read: a phase per node (from its id), so that the nodes' full reads spread out. */
  let passesToFullRead = 1 + (fnv1a(node.id) % FULL_READ_EVERY);

  function observeNode(entry: KvEntry): void {
    const id = entry.key.slice(UdbPrefix.nodes.length);
    if (entry.operation !== 'PUT') {
      ctx.nodes.delete(id);
      hooks.nodesChanged();
      return;
    }
    const before = ctx.nodes.get(id);
    if (before && before.revision >= entry.revision) return;
    // Shared with every other observer in the process (placement, other nodes' managers).
    const record = parseSharedRecord(entry.value, udbShapes.node);
    if (!record) return;
    const now = clock.now();
    // First sight: trust the heartbeat time (bounded by now) so a long-dead record is not live for a lease.
    const lastSeen = before ? now : Math.min(now, record.heartbeatAt);
    ctx.nodes.set(id, { record, revision: entry.revision, lastSeen });
    const changed = !before || before.record.status !== record.status || !sameVersions(before.record.versions, record.versions);
    if (changed) {
      hooks.nodesChanged();
      queueMicrotask(hooks.recount);
    }
  }

  function observeControl(entry: KvEntry): void {
    const id = entry.key.slice(UdbPrefix.control.length);
    if (entry.operation !== 'PUT') {
      ctx.controls.delete(id);
      return;
    }
    // The operator's command or a node's halt, in write order (udb/halts.ts).
    const record = controlOf(entry);
    if (!record || !replaces(ctx.controls.get(record.rolloutId), record)) return;
    ctx.controls.set(record.rolloutId, record);
    hooks.control(record);
  }

  function observeRollout(entry: KvEntry): void {
    if (entry.operation !== 'PUT') return;
    const record = parseRecord(entry.value, udbShapes.rollout);
    if (!record) return;
    const known = ctx.rollouts.has(record.rolloutId);
    ctx.rollouts.set(record.rolloutId, record);
    hooks.rollout(record);
    // A new rollout is counted at once (its counter writes the first counts), not at the next node change or reconciliation.
    if (!known) queueMicrotask(hooks.recount);
  }

  function observeRetired(entry: KvEntry): void {
    if (entry.operation !== 'PUT') return;
    const record = parseRecord(entry.value, udbShapes.retired);
    if (!record) return;
    ctx.retired.set(`${record.type}@${record.version}`, record);
    hooks.retired();
  }

  function observeDescriptor(entry: KvEntry | StoredDescriptor & { operation?: string }): void {
    const key = entry.key;
    if (!parseDescriptorKey(key)) return;
    if ((entry as KvEntry).operation !== undefined && (entry as KvEntry).operation !== 'PUT') {
      ctx.descriptors.delete(key);
      return;
    }
    const before = ctx.descriptors.get(key);
    if (before && before.revision >= entry.revision) return;
    ctx.descriptors.set(key, { key, revision: entry.revision, value: entry.value });
    queueMicrotask(hooks.descriptorsChanged);
  }

  /**
   * Starts watch `name` unless it runs. `start` is given the watch's record,
   * to note each revision it delivers, and the function to call when it ends.
   * `followed`: the bucket and key filter it follows, for the stall check.
   */
  async function ensureWatch(
    name: string,
    start: (running: RunningWatch, ended: (error?: unknown) => void) => Promise<() => void>,
    followed?: RunningWatch['followed'],
  ): Promise<void> {
    if (watches.has(name) || ctx.stopped) return;
    const running: RunningWatch = { stop: () => undefined, delivered: 0, ...(followed ? { followed } : {}) };
    const ended = (error?: unknown) => {
      // A watch stopped for a stall ends after its successor may have started: only its own entry goes.
      if (watches.get(name) !== running) return;
      watches.delete(name);
      if (!ctx.stopped) logger.debug('watch ended; the next reconciliation restarts it', { watch: name, ...(error ? { error: errorText(error) } : {}) });
    };
    try {
      running.stop = await start(running, ended);
      // Stopped while the watch was starting: nothing will stop it later, and a
      // watch left running outlives its connection (its heartbeat timer keeps
      // the process alive, resubscribing on a closed connection).
      if (ctx.stopped) return running.stop();
      watches.set(name, running);
    } catch (e) {
      logger.debug('watch not started', { watch: name, error: errorText(e) });
    }
  }

  /** Watches UDB keys under `prefix`, noting each revision delivered. */
  function watchUdb(name: string, prefix: string, observe: (entry: KvEntry) => void): Promise<void> {
    return ensureWatch(
      name,
      (running, ended) =>
        udb.watch(
          prefix,
          (entry) => {
            if (entry.revision > running.delivered) running.delivered = entry.revision;
            observe(entry);
          },
          ended,
        ),
      { kv: udb.kv, filter: `${prefix}>` },
    );
  }

  async function startWatches(): Promise<void> {
    // The node's placement watches the node records already; it hands them
    // over (one delivery per record, not two), and checks that watch itself.
    await ensureWatch('nodes', async () => ctx.internals.followNodeRecords(observeNode));
    await watchUdb('control', UdbPrefix.control, observeControl);
    await watchUdb('rollouts', UdbPrefix.rollouts, observeRollout);
    await watchUdb('retired', UdbPrefix.retired, observeRetired);
    if (ctx.store) {
      const descriptorsKv = ctx.store.descriptors;
      await ensureWatch(
        'descriptors',
        async (running, ended) => {
          const watcher = await descriptorsKv.watch({ key: 'upgrade.>' });
          void (async () => {
            for await (const entry of watcher) {
              if (entry.revision > running.delivered) running.delivered = entry.revision;
              observeDescriptor(entry);
            }
          })().then(() => ended(), ended);
          return () => stopWatch(watcher);
        },
        { kv: descriptorsKv, filter: 'upgrade.>' },
      );
    }
  }

  /**
   * Stops the running watches that have stalled, and names them: a watch has
   * stalled when a record stored under its keys at the previous check is
   * still not delivered. A watch is an ordered
   * consumer on one nats-server; when that server dies, or the consumer is
   * lost, the watch delivers nothing more, and the NATS client notices only
   * after two missed idle heartbeats of 30 s each — meanwhile this node would
   * learn of a publish, a pause or an abort only at its next full read. The
   * newest revision under the watch's keys is one message get answered by the
   * stream's leader; a healthy watch delivers it within milliseconds, so one
   * not delivered a whole period later is taken as lost. The stalled watch is
   * stopped, and a full read (which starts it again) follows.
   */
  async function stalledWatches(): Promise<string[]> {
    const stalled: string[] = [];
    await Promise.all(
      [...watches].map(async ([name, running]) => {
        if (!running.followed) return;
        let newest: number;
        try {
          newest = await lastRevision(running.followed.kv, running.followed.filter);
        } catch {
          return; // No answer (an election, a partition): nothing to judge by.
        }
        // Ended and replaced meanwhile: the new watch is judged at the next check.
        if (watches.get(name) !== running) return;
        if (running.missing !== undefined && running.delivered < running.missing) {
          logger.warn('upgrade watch stalled: restarting it', { watch: name, delivered: running.delivered, stored: running.missing });
          stalled.push(name);
          watches.delete(name);
          running.stop();
          return;
        }
        running.missing = newest > running.delivered ? newest : undefined;
      }),
    );
    return stalled;
  }

  async function reconcileOnce(): Promise<void> {
    if (ctx.stopped) return;
    try {
      // Created by `molt setup` (udb/buckets.ts) with the node's own buckets; bound here.
      ctx.store ??= await openUpgradeStore(node.connection, node.service, { create: false });
    } catch (e) {
      logger.debug('upgrade store not reachable yet', { error: errorText(e) });
    }
    await startWatches();
    const settled = settledRollouts(ctx.rollouts.values());
    try {
      const [nodeEntries, controlEntries, rolloutEntries, retiredEntries] = await Promise.all([
        udb.readAll(UdbPrefix.nodes),
        udb.readAll(UdbPrefix.control),
        udb.readAll(UdbPrefix.rollouts, (key) => settled.has(key.slice(UdbPrefix.rollouts.length))),
        udb.readAll(UdbPrefix.retired),
      ]);
      nodeEntries.forEach(observeNode);
      // In write order: the last one observed is the control in force.
      controlEntries.sort((a, b) => a.revision - b.revision).forEach(observeControl);
      rolloutEntries.forEach(observeRollout);
      retiredEntries.forEach(observeRetired);
      if (ctx.store) {
        const listed = await ctx.store.list();
        const present = new Set(listed.map((d) => d.key));
        for (const key of [...ctx.descriptors.keys()]) if (!present.has(key)) ctx.descriptors.delete(key);
        for (const d of listed) observeDescriptor(d);
        hooks.descriptorsRead();
      }
    } catch (e) {
      logger.warn('reconciliation read failed; retrying next period', { error: errorText(e) });
    }
    await hooks.reconciled();
  }

  function reconcile(): Promise<void> {
    reconciling ??= reconcileOnce().finally(() => {
      reconciling = undefined;
    });
    return reconciling;
  }

  /** Every watch this manager keeps is running (the descriptors' only once the upgrades bucket is reachable). */
  function watching(): boolean {
    return ctx.store !== undefined && watches.size === WATCH_COUNT;
  }

  /**
   * Runs the stall check beside the period's work, not before it: its reads
   * may wait for a timeout (a stream without a leader), and the period's
   * actions must not. A stall found starts a full read.
   */
  let checking = false;
  function checkStalls(): void {
    if (checking || reconciling) return;
    checking = true;
    stalledWatches()
      .then((stalled) => {
        if (stalled.length > 0) void reconcile();
      })
      .catch((e) => logger.debug('watch stall check failed', { error: errorText(e) }))
      .finally(() => {
        checking = false;
      });
  }

  async function periodic(): Promise<void> {
    checkStalls();
    if (--passesToFullRead <= 0 || !watching()) {
      passesToFullRead = FULL_READ_EVERY;
      return reconcile();
    }
    if (reconciling) return reconciling;
    await hooks.reconciled();
  }

  return {
    reconcile,
    periodic,
    followReconnects() {
      // Reconnects: watches may have missed values while away.
      void (async () => {
        for await (const s of node.connection.status()) {
          if (ctx.stopped) break;
          if (s.type === 'reconnect') {
            logger.info('reconnected to NATS: reconciling upgrades');
            void reconcile();
          }
        }
      })().catch(() => undefined);
    },
    stop() {
      for (const running of watches.values()) running.stop();
      watches.clear();
    },
  };
}
