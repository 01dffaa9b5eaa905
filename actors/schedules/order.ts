/**
 * The stable order of nodes and the rolling gate, shared by `rolling` and
 * `canary`'s second phase.
 *
 * Every node's SF computes the same order from the same UDB view (node ids
 * sorted by code unit, not locale, so all nodes agree), and its own position in
 * it decides its batch: batch = ⌊position / k⌋.
 *
 * Why at most k upgrade at once: a node of batch b decides only when every
 * node of an earlier batch has reached the target version or is gone, and the
 * view it decided from is an older copy of the truth. Reaching the target and
 * being gone never revert (a node that comes back restarts its SF), so at any
 * moment all nodes still upgrading belong to one batch, which has at most k
 * members. The extra check "fewer than k live nodes are `upgrading`" keeps
 * the bound when the order itself shifts (a node joins, a dead node returns).
 *
 * @module
 */
import type { ScheduleNodeView } from './contract.ts';

/** Has this node reached version `to`? */
export const reached = (n: ScheduleNodeView, to: number): boolean => n.version >= to;

/** A dead (no heartbeat) or stopped node never blocks a rollout. */
export const gone = (n: ScheduleNodeView): boolean => !n.live || n.status === 'stopped';

/** Node ids sorted by UTF-16 code units: the same on every node, whatever its locale. */
export function stableOrder(nodes: readonly ScheduleNodeView[]): ScheduleNodeView[] {
  let sorted = sortedOf.get(nodes);
  if (!sorted) {
    sorted = Object.freeze([...nodes].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0))) as ScheduleNodeView[];
    sortedOf.set(nodes, sorted);
    sortedOf.set(sorted, sorted);
    // A list that was in order already (the simulator's are) has the same positions: one map for both.
    const known = idsOf.get(nodes);
    if (known && sorted.every((n, i) => n === nodes[i])) idsOf.set(sorted, known);
  }
  return sorted;
}

/**
 * Per node list, computed once however many SFs look at it. Every node's SF
 * sorts and scans the whole node list on each event; with thousands of nodes
 * (and `molt simulate`, which runs every node's SF in one process on one
 * shared list) that was most of the cost. Lists are never mutated (SFs get
 * their own or a frozen one), so caching by identity is safe; the results are
 * frozen because callers share them.
 */
const sortedOf = new WeakMap<readonly ScheduleNodeView[], ScheduleNodeView[]>();
const idsOf = new WeakMap<readonly ScheduleNodeView[], { ids: Map<string, number>; duplicates: boolean }>();

/** Position of each id in `nodes` (the first, with duplicates), computed once per list. */
export function positions(nodes: readonly ScheduleNodeView[]): { ids: ReadonlyMap<string, number>; duplicates: boolean } {
  let found = idsOf.get(nodes);
  if (!found) {
    const ids = new Map<string, number>();
    let duplicates = false;
    nodes.forEach((n, i) => {
      if (ids.has(n.id)) duplicates = true;
      else ids.set(n.id, i);
    });
    found = { ids, duplicates };
    idsOf.set(nodes, found);
  }
  return found;
}

/** The first node of `nodes` with this id, found through the per-list positions (not a scan per SF). */
export function findNode(nodes: readonly ScheduleNodeView[], id: string): ScheduleNodeView | undefined {
  const i = positions(nodes).ids.get(id);
  return i === undefined ? undefined : nodes[i];
}

/**
 * The view with this node in it (the manager's view may not include it yet,
 * e.g. right after the node registered) and without duplicate ids.
 */
export function withSelf(nodes: readonly ScheduleNodeView[], self: { nodeId: string; from: number }): ScheduleNodeView[] {
  // The usual case, this node listed once and no id twice: the list itself.
  const known = positions(nodes);
  if (!known.duplicates && known.ids.has(self.nodeId)) return nodes as ScheduleNodeView[];
  const byId = new Map<string, ScheduleNodeView>();
  for (const n of nodes) byId.set(n.id, n);
  if (!byId.has(self.nodeId)) byId.set(self.nodeId, { id: self.nodeId, version: self.from, status: 'running', live: true });
  return [...byId.values()];
}

/** The verdict of a gate: go, or what it waits for (one human line). */
export type GateResult = { ready: true } | { ready: false; note: string };

/** Short description of a node for notes: `n2 (v1, upgrading)`. */
export function describeNode(n: ScheduleNodeView): string {
  return `${n.id} (v${n.version}, ${n.status})`;
}

/**
 * The rolling gate for `selfId` within `order` (already stable-sorted), k at a
 * time: every node of an earlier batch reached `to` or is gone, and fewer than
 * k live nodes among `all` are upgrading. With `maxUnavailable` (at most k),
 * fewer than that many live nodes are upgrading or failed.
 */
export function rollingGate(
  order: readonly ScheduleNodeView[],
  all: readonly ScheduleNodeView[],
  selfId: string,
  k: number,
  to: number,
  options: { maxUnavailable?: number } = {},
): GateResult {
  const position = positions(order).ids.get(selfId) ?? -1;
  if (position < 0) return { ready: false, note: `this node (${selfId}) is not in the node list yet` };
  const batch = Math.floor(position / k);
  const waiting = batchWaits(order, to, k, batch);
  if (waiting) return waiting;
  const upgrading = upgradingIn(all).filter((n) => n.id !== selfId);
  if (upgrading.length >= k) {
    return { ready: false, note: `${upgrading.length} node(s) upgrading (${upgrading.map((n) => n.id).join(', ')}), at most ${k} at once` };
  }
  const cap = options.maxUnavailable;
  if (cap !== undefined) {
    const unavailable = unavailableIn(all).filter((n) => n.id !== selfId);
    if (unavailable.length >= cap) {
      return { ready: false, note: `${unavailable.length} node(s) unavailable (${unavailable.map(describeNode).join(', ')}), maxUnavailable ${cap}` };
    }
  }
  return { ready: true };
}

const waitsOf = new WeakMap<readonly ScheduleNodeView[], Map<string, GateResult | null>>();

/**
 * What batch `batch` of `order` (k at a time) waits for, or null if every
 * earlier batch is done. The same for every node of that batch, so it is
 * computed once per list and batch (with thousands of waiting nodes, naming
 * the blockers for each of them was most of a rolling SF's step); the verdict
 * is frozen because SFs share it.
 */
function batchWaits(order: readonly ScheduleNodeView[], to: number, k: number, batch: number): GateResult | null {
  let byBatch = waitsOf.get(order);
  if (!byBatch) waitsOf.set(order, (byBatch = new Map()));
  const key = `${to}/${k}/${batch}`;
  let verdict = byBatch.get(key);
  if (verdict === undefined) {
    verdict = null;
    const end = Math.min(batch * k, order.length);
    const blocking = pendingBefore(order, to, end);
    if (blocking > 0) {
      const named: ScheduleNodeView[] = [];
      for (let i = firstPending(order, to); i < end && named.length < 5; i++) if (!reached(order[i]!, to) && !gone(order[i]!)) named.push(order[i]!);
      verdict = Object.freeze({
        ready: false as const,
        note: `batch ${batch} waits for ${named.map(describeNode).join(', ')}${blocking > 5 ? ` and ${blocking - 5} more` : ''} to reach v${to}`,
      });
    }
    byBatch.set(key, verdict);
  }
  return verdict;
}

const pendingOf = new WeakMap<readonly ScheduleNodeView[], Map<number, number>>();
const upgradingOf = new WeakMap<readonly ScheduleNodeView[], ScheduleNodeView[]>();

/** Index of the first node of `nodes` neither at `to` nor gone (`nodes.length` if none), once per list. */
export function firstPending(nodes: readonly ScheduleNodeView[], to: number): number {
  let byTo = pendingOf.get(nodes);
  if (!byTo) pendingOf.set(nodes, (byTo = new Map()));
  let i = byTo.get(to);
  if (i === undefined) {
    i = nodes.findIndex((n) => !reached(n, to) && !gone(n));
    if (i < 0) i = nodes.length;
    byTo.set(to, i);
  }
  return i;
}

/** The live nodes of `nodes` that are `upgrading`, once per list. */
export function upgradingIn(nodes: readonly ScheduleNodeView[]): readonly ScheduleNodeView[] {
  let found = upgradingOf.get(nodes);
  if (!found) upgradingOf.set(nodes, (found = nodes.filter((n) => n.live && n.status === 'upgrading')));
  return found;
}

const unavailableOf = new WeakMap<readonly ScheduleNodeView[], ScheduleNodeView[]>();

/** The live nodes of `nodes` that are `upgrading` or `failed`, once per list. */
export function unavailableIn(nodes: readonly ScheduleNodeView[]): readonly ScheduleNodeView[] {
  let found = unavailableOf.get(nodes);
  if (!found) unavailableOf.set(nodes, (found = nodes.filter((n) => n.live && (n.status === 'upgrading' || n.status === 'failed'))));
  return found;
}

const prefixOf = new WeakMap<readonly ScheduleNodeView[], Map<number, Int32Array>>();

/** How many of `nodes[0 .. end)` are neither at `to` nor gone (prefix counts, once per list). */
export function pendingBefore(nodes: readonly ScheduleNodeView[], to: number, end: number): number {
  let byTo = prefixOf.get(nodes);
  if (!byTo) prefixOf.set(nodes, (byTo = new Map()));
  let prefix = byTo.get(to);
  if (!prefix) {
    prefix = new Int32Array(nodes.length + 1);
    for (let i = 0; i < nodes.length; i++) prefix[i + 1] = prefix[i]! + (!reached(nodes[i]!, to) && !gone(nodes[i]!) ? 1 : 0);
    byTo.set(to, prefix);
  }
  return prefix[Math.max(0, Math.min(end, nodes.length))]!;
}
