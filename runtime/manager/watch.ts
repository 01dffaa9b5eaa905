/**
 * How the manager learns: a KV watch on the descriptors (`upgrade.>` in the
 * upgrades bucket) for sub-second reaction, watches on the UDB keys it
 * follows (`nodes.>`, `control.>`, `rollouts.>`, `retired.>`), and a full
 * read of all of them — reconciliation — at start, after every reconnect and
 * every `reconcileMs`, because a watch can skip intermediate values and ends
 * when its server goes away (the next reconciliation restarts it).
 *
 * Every record, however it arrives, goes through one observer per key family
 * that keeps the newest revision in the manager's context and tells the rest
 * what changed (the hooks).
 *
 * @module
 */
import type { KvEntry } from '@nats-io/kv';
import { parseDescriptorKey } from '../server/descriptor.ts';
import { openUpgradeStore, type StoredDescriptor } from '../server/store.ts';
import {
  parseRecord,
  UdbPrefix,
  udbPatterns,
  type ControlRecord,
  type NodeRecord,
  type RetireRecord,
  type RolloutRecord,
} from '../udb/index.ts';
import type { ManagerContext } from './context.ts';
import { errorText } from './model.ts';

/** What the watch tells the rest of the manager. */
export interface WatchHooks {
  /** A descriptor appeared or changed. */
  descriptorsChanged(): void;
  /** A node's version or status changed, or it left: scheduling functions see the node list again. */
  nodesChanged(): void;
  /** A node's version or status changed: the rollouts are counted again. */
  recount(): void;
  control(record: ControlRecord): void;
  rollout(record: RolloutRecord): void;
  retired(): void;
  /** After each reconciliation's read (retries, lifecycles, rollbacks, counts). */
  reconciled(): Promise<void>;
}

export interface Watch {
  /** Reads everything again and acts on it (one at a time: a call during a reconciliation joins it). */
  reconcile(): Promise<void>;
  /** Reconciles after every reconnect to NATS. */
  followReconnects(): void;
  /** Stops every watch. */
  stop(): void;
}

export function createWatch(ctx: ManagerContext, hooks: WatchHooks): Watch {
  const { node, udb, clock, logger } = ctx;
  const watches = new Map<string, () => void>();
  let reconciling: Promise<void> | undefined;

  function observeNode(entry: KvEntry): void {
    const id = entry.key.slice(UdbPrefix.nodes.length);
    if (entry.operation !== 'PUT') {
      ctx.nodes.delete(id);
      hooks.nodesChanged();
      return;
    }
    const record = parseRecord<NodeRecord>(entry.value, udbPatterns.node);
    if (!record) return;
    const before = ctx.nodes.get(id);
    if (before && before.revision >= entry.revision) return;
    const now = clock.now();
    // First sight: trust the heartbeat time (bounded by now) so a long-dead record is not live for a lease.
    const lastSeen = before ? now : Math.min(now, record.heartbeatAt);
    ctx.nodes.set(id, { record, revision: entry.revision, lastSeen });
    const changed = !before || before.record.status !== record.status || JSON.stringify(before.record.versions) !== JSON.stringify(record.versions);
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
    const record = parseRecord<ControlRecord>(entry.value, udbPatterns.control);
    if (!record) return;
    ctx.controls.set(record.rolloutId, record);
    hooks.control(record);
  }

  function observeRollout(entry: KvEntry): void {
    if (entry.operation !== 'PUT') return;
    const record = parseRecord<RolloutRecord>(entry.value, udbPatterns.rollout);
    if (!record) return;
    ctx.rollouts.set(record.rolloutId, record);
    hooks.rollout(record);
  }

  function observeRetired(entry: KvEntry): void {
    if (entry.operation !== 'PUT') return;
    const record = parseRecord<RetireRecord>(entry.value, udbPatterns.retired);
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

  async function ensureWatch(name: string, start: () => Promise<() => void>): Promise<void> {
    if (watches.has(name) || ctx.stopped) return;
    try {
      const stop = await start();
      watches.set(name, stop);
    } catch (e) {
      logger.debug('watch not started', { watch: name, error: errorText(e) });
    }
  }

  function ended(name: string) {
    return (error?: unknown) => {
      watches.delete(name);
      if (!ctx.stopped) logger.debug('watch ended; the next reconciliation restarts it', { watch: name, ...(error ? { error: errorText(error) } : {}) });
    };
  }

  async function startWatches(): Promise<void> {
    await ensureWatch('nodes', () => udb.watch(UdbPrefix.nodes, observeNode, ended('nodes')));
    await ensureWatch('control', () => udb.watch(UdbPrefix.control, observeControl, ended('control')));
    await ensureWatch('rollouts', () => udb.watch(UdbPrefix.rollouts, observeRollout, ended('rollouts')));
    await ensureWatch('retired', () => udb.watch(UdbPrefix.retired, observeRetired, ended('retired')));
    if (ctx.store) {
      const descriptorsKv = ctx.store.descriptors;
      await ensureWatch('descriptors', async () => {
        const watcher = await descriptorsKv.watch({ key: 'upgrade.>' });
        void (async () => {
          for await (const entry of watcher) observeDescriptor(entry);
        })().then(() => ended('descriptors')(), (e) => ended('descriptors')(e));
        return () => watcher.stop();
      });
    }
  }

  async function reconcileOnce(): Promise<void> {
    if (ctx.stopped) return;
    try {
      // Created with the replication of the node's own buckets (`--replicas`): an
      // R1 upgrade store on a cluster stalls every rollout while its one server is down.
      const replicas = ctx.store ? 1 : await node.udb.status().then((s) => s.replicas, () => 1);
      ctx.store ??= await openUpgradeStore(node.connection, node.service, { create: 'try', replicas });
    } catch (e) {
      logger.debug('upgrade store not reachable yet', { error: errorText(e) });
    }
    await startWatches();
    try {
      const [nodeEntries, controlEntries, rolloutEntries, retiredEntries] = await Promise.all([
        udb.readAll(UdbPrefix.nodes),
        udb.readAll(UdbPrefix.control),
        udb.readAll(UdbPrefix.rollouts),
        udb.readAll(UdbPrefix.retired),
      ]);
      nodeEntries.forEach(observeNode);
      controlEntries.forEach(observeControl);
      rolloutEntries.forEach(observeRollout);
      retiredEntries.forEach(observeRetired);
      if (ctx.store) {
        const listed = await ctx.store.list();
        const present = new Set(listed.map((d) => d.key));
        for (const key of [...ctx.descriptors.keys()]) if (!present.has(key)) ctx.descriptors.delete(key);
        for (const d of listed) observeDescriptor(d);
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

  return {
    reconcile,
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
      for (const stop of watches.values()) stop();
      watches.clear();
    },
  };
}
