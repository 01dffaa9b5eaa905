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
  return [...nodes].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
}

/**
 * The view with this node in it (the manager's view may not include it yet,
 * e.g. right after the node registered) and without duplicate ids.
 */
export function withSelf(nodes: readonly ScheduleNodeView[], self: { nodeId: string; from: number }): ScheduleNodeView[] {
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
  const position = order.findIndex((n) => n.id === selfId);
  if (position < 0) return { ready: false, note: `this node (${selfId}) is not in the node list yet` };
  const batch = Math.floor(position / k);
  const blockers = order.slice(0, batch * k).filter((n) => !reached(n, to) && !gone(n));
  if (blockers.length > 0) {
    return {
      ready: false,
      note: `batch ${batch} waits for ${blockers.slice(0, 5).map(describeNode).join(', ')}${blockers.length > 5 ? ` and ${blockers.length - 5} more` : ''} to reach v${to}`,
    };
  }
  const upgrading = all.filter((n) => n.id !== selfId && n.live && n.status === 'upgrading');
  if (upgrading.length >= k) {
    return { ready: false, note: `${upgrading.length} node(s) upgrading (${upgrading.map((n) => n.id).join(', ')}), at most ${k} at once` };
  }
  const cap = options.maxUnavailable;
  if (cap !== undefined) {
    const unavailable = all.filter((n) => n.id !== selfId && n.live && (n.status === 'upgrading' || n.status === 'failed'));
    if (unavailable.length >= cap) {
      return { ready: false, note: `${unavailable.length} node(s) unavailable (${unavailable.map(describeNode).join(', ')}), maxUnavailable ${cap}` };
    }
  }
  return { ready: true };
}
