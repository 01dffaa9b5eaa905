/**
 * The demo's live view of the upgrade database: one plain line per change
 * that matters — a node loading a version (its future SO in service), a node
 * upgrading and finishing, a rollout changing state or counts, a scheduling
 * function saying what it waits for. Plain lines, since stdout may not be a
 * terminal (the same information as `molt status --watch`).
 *
 * @module
 */
import type { KvEntry } from '@nats-io/kv';
import { parseRecord, Udb, UdbPrefix, udbShapes, type NodeRecord, type ProgressRecord, type RolloutRecord } from '../runtime/udb/index.ts';

/** What the watcher knows of each node. */
export interface NodeView {
  id: string;
  version: number | undefined;
  known: number[];
  status: NodeRecord['status'];
}

export interface UdbWatcher {
  nodes(): NodeView[];
  rollout(id: string): RolloutRecord | undefined;
  /** Resolves once `check` holds on the node views (checked on every change), or rejects after `timeoutMs`. */
  until(what: string, check: (nodes: NodeView[]) => boolean, timeoutMs: number): Promise<void>;
  /** Resolves once the rollout satisfies `check`, or rejects after `timeoutMs`. */
  untilRollout(id: string, what: string, check: (r: RolloutRecord) => boolean, timeoutMs: number): Promise<void>;
  stop(): void;
}

const describeSchedule = (r: RolloutRecord) => {
  const params = Object.entries(r.schedule.params).map(([k, v]) => `${k} ${typeof v === 'object' ? JSON.stringify(v) : String(v)}`);
  return `${r.schedule.name}${params.length ? ` (${params.join(', ')})` : ''}`;
};
const countsText = (counts: Record<string, number>) =>
  Object.entries(counts)
    .sort(([a], [b]) => Number(a) - Number(b))
    .map(([v, n]) => `${n}×v${v}`)
    .join(' ') || 'none';

/** Starts watching the UDB of `udb.service`, printing with `log`, following actor type `type`. */
export async function watchUdb(udb: Udb, type: string, log: (line: string) => void): Promise<UdbWatcher> {
  const nodes = new Map<string, NodeView>();
  const rollouts = new Map<string, RolloutRecord>();
  const progress = new Map<string, { step: string; note: string | undefined }>();
  const waiters = new Set<() => void>();
  const notify = () => waiters.forEach((w) => w());

  const rolloutName = (id: string) => {
    const r = rollouts.get(id);
    return r ? `${r.type}@${r.to}` : id;
  };

  function onNode(entry: KvEntry): void {
    if (entry.operation !== 'PUT') return;
    const r = parseRecord(entry.value, udbShapes.node);
    if (!r) return;
    const next: NodeView = { id: r.id, version: r.versions[type], known: r.known?.[type] ?? [], status: r.status };
    const before = nodes.get(r.id);
    nodes.set(r.id, next);
    if (before) {
      const loaded = next.known.filter((v) => !before.known.includes(v) && v > (next.version ?? 0));
      if (loaded.length) log(`${r.id}  loaded ${loaded.map((v) => `${type}@${v}`).join(', ')}: serves callers of v${next.known.filter((v) => v >= (next.version ?? 1) - 1).join(', v')} (future SO${loaded.length > 1 ? 's' : ''} in service)`);
      if (before.status !== next.status && next.status === 'upgrading') log(`${r.id}  upgrading ${type} v${before.version} → v${(before.version ?? 0) + 1}: calls held, resident actors through the TF`);
      if (before.version !== next.version) log(`${r.id}  now runs ${type}@${next.version}`);
      if (before.status !== next.status && next.status !== 'upgrading' && next.status !== 'running') log(`${r.id}  status ${next.status}${r.lastError ? `: ${r.lastError}` : ''}`);
    }
    notify();
  }

  function onRollout(entry: KvEntry): void {
    if (entry.operation !== 'PUT') return;
    const r = parseRecord(entry.value, udbShapes.rollout);
    if (!r) return;
    const before = rollouts.get(r.rolloutId);
    rollouts.set(r.rolloutId, r);
    if (!before) log(`rollout ${r.rolloutId}: ${r.type} v${r.from} → v${r.to}, ${describeSchedule(r)}, ${r.state}${r.reason ? ` (${r.reason})` : ''}`);
    else {
      if (before.state !== r.state) log(`rollout ${rolloutName(r.rolloutId)}: ${before.state} → ${r.state}${r.state === 'done' && r.endedAt ? ` (every node runs v${r.to})` : r.reason ? ` (${r.reason})` : ''}`);
      // Counts of a staged (paused) rollout move with the other rollout: said once, there.
      else if (r.state !== 'paused' && JSON.stringify(before.counts) !== JSON.stringify(r.counts)) log(`rollout ${rolloutName(r.rolloutId)}: nodes ${countsText(r.counts)}`);
    }
    notify();
  }

  function onProgress(entry: KvEntry): void {
    if (entry.operation !== 'PUT') return;
    const p = parseRecord(entry.value, udbShapes.progress);
    if (!p) return;
    const id = `${p.rolloutId}.${p.nodeId}`;
    const before = progress.get(id);
    // Notes that differ only in their numbers ("soaking 2s of 5s") are one line.
    const noteKey = p.note?.replace(/\d+/g, '#');
    progress.set(id, { step: p.step, note: noteKey });
    if (before?.step === p.step && before.note === noteKey) return;
    const name = rolloutName(p.rolloutId);
    switch (p.step) {
      case 'upgraded': {
        const start = p.steps.find((s) => s.step === 'upgrading')?.at;
        log(`${p.nodeId}  upgraded to ${name}${start ? ` in ${p.at - start} ms` : ''}${p.note ? `: ${p.note}` : ''}`);
        break;
      }
      case 'scheduling':
      case 'held':
        // What the SF waits for ("paused" is said once by the rollout, "ready" by the upgrade that follows).
        if (p.note && p.note !== 'ready' && !/paused/.test(p.note)) log(`${p.nodeId}  ${name} schedule: ${p.note}`);
        break;
      case 'rejected':
      case 'failed':
      case 'aborted':
        log(`${p.nodeId}  ${name} ${p.step}${p.error ? `: ${p.error}` : p.note ? `: ${p.note}` : ''}`);
        break;
      default:
        break;
    }
  }

  const stops = await Promise.all([
    udb.watch(UdbPrefix.nodes, onNode),
    udb.watch(UdbPrefix.rollouts, onRollout),
    udb.watch(UdbPrefix.progress, onProgress),
  ]);

  function waitUntil(what: string, check: () => boolean, timeoutMs: number): Promise<void> {
    if (check()) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const poll = setInterval(() => waiter(), 250);
      const timer = setTimeout(() => {
        waiters.delete(waiter);
        clearInterval(poll);
        reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}`));
      }, timeoutMs);
      const waiter = () => {
        if (!check()) return;
        waiters.delete(waiter);
        clearInterval(poll);
        clearTimeout(timer);
        resolve();
      };
      waiters.add(waiter);
    });
  }

  return {
    nodes: () => [...nodes.values()].sort((a, b) => (a.id < b.id ? -1 : 1)),
    rollout: (id) => rollouts.get(id),
    until: (what, check, timeoutMs) => waitUntil(what, () => check([...nodes.values()]), timeoutMs),
    untilRollout: (id, what, check, timeoutMs) => waitUntil(`rollout ${id}: ${what}`, () => { const r = rollouts.get(id); return r !== undefined && check(r); }, timeoutMs),
    stop: () => stops.forEach((s) => s()),
  };
}
