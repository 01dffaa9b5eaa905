/**
 * What the label-aware schedules (`zones`, `groups`, `ring`) share: reading
 * a node's label, and the "wait for these nodes" note.
 *
 * A node's labels come from its UDB record (`molt node --label zone=a`); a
 * node without the label a schedule reads is handled as each schedule says
 * (its own zone after the named ones, its own group, a ring position after
 * the labelled ones).
 *
 * @module
 */
import type { ScheduleNodeView } from './contract.ts';
import { describeNode, gone, reached, type GateResult } from './order.ts';
import { resolveNodeCount, type NodeCount } from './params.ts';

/** A node's value of label `name`, or undefined. */
export function labelOf(n: ScheduleNodeView, name: string): string | undefined {
  const v = n.labels?.[name];
  return typeof v === 'string' ? v : undefined;
}

/** Nodes that still block: neither at `to` nor gone. */
export function pending(nodes: readonly ScheduleNodeView[], to: number): ScheduleNodeView[] {
  return nodes.filter((n) => !reached(n, to) && !gone(n));
}

/** "`what` waits for n1 (v1, upgrading), … to reach v2", at most five named. */
export function waitFor(what: string, blockers: readonly ScheduleNodeView[], to: number): GateResult {
  const named = blockers.slice(0, 5).map(describeNode).join(', ');
  return { ready: false, note: `${what} waits for ${named}${blockers.length > 5 ? ` and ${blockers.length - 5} more` : ''} to reach v${to}` };
}

/** Live nodes other than `selfId` that are `upgrading` now. */
export function upgradingOthers(nodes: readonly ScheduleNodeView[], selfId: string): ScheduleNodeView[] {
  return nodes.filter((n) => n.id !== selfId && n.live && n.status === 'upgrading');
}

/** Live nodes other than `selfId` that are unavailable (`upgrading` or `failed`). */
export function unavailableOthers(nodes: readonly ScheduleNodeView[], selfId: string): ScheduleNodeView[] {
  return nodes.filter((n) => n.id !== selfId && n.live && (n.status === 'upgrading' || n.status === 'failed'));
}

/**
 * The `maxUnavailable` gate of the label-aware schedules: refuses while
 * `cap` (a count or share of `nodes`) nodes other than `selfId` are upgrading
 * or failed. Ready when no cap is set.
 */
export function unavailableGate(nodes: readonly ScheduleNodeView[], selfId: string, cap: NodeCount | undefined): GateResult {
  if (cap === undefined) return { ready: true };
  const limit = resolveNodeCount(cap, nodes.length);
  const unavailable = unavailableOthers(nodes, selfId);
  if (unavailable.length < limit) return { ready: true };
  return { ready: false, note: `${unavailable.length} node(s) unavailable (${unavailable.map((n) => n.id).join(', ')}), maxUnavailable ${limit}` };
}

/** A label name as schedules take it (`"zone"`): same form as `molt node --label`. */
export function checkLabelName(s: string): string | undefined {
  return /^[a-z0-9]([a-z0-9._/-]{0,61}[a-z0-9])?$/.test(s) ? undefined : `must be a label name such as "zone" (lower-case letters, digits, '.', '_', '/', '-'), got "${s}"`;
}

const memos = new WeakMap<readonly ScheduleNodeView[], Map<string, unknown>>();

/**
 * `compute(nodes)` once per node list and `key`: every node's SF looks at the
 * same list (see order.ts, `positions`); the result is shared, never mutate it.
 */
export function perList<T>(nodes: readonly ScheduleNodeView[], key: string, compute: () => T): T {
  let m = memos.get(nodes);
  if (!m) memos.set(nodes, (m = new Map()));
  if (!m.has(key)) m.set(key, compute());
  return m.get(key) as T;
}
