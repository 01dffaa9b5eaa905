/**
 * Health accounting for SFs: how much each node's counters rose since this SF
 * first saw them, and the health gate's verdict.
 *
 * Nodes report cumulative counters (`ScheduleNodeView.stats`, since the node
 * process started). The SF keeps, per node, the last value seen and the rise
 * since its baseline (the first value seen). A counter that goes down means
 * the node restarted; the new value is then all rise. Rises seen while a node
 * is already at the target version are also kept apart, because the failed and
 * disallowed rates are judged on upgraded nodes only.
 *
 * Everything here is plain data (no Map/Set) so an SF's context persists with
 * `getPersistedSnapshot()`.
 *
 * @module
 */
import type { ScheduleNodeView } from './contract.ts';
import type { HealthParams } from './params.ts';

/** The four counters a node reports. */
export interface Counters {
  calls: number;
  failed: number;
  disallowed: number;
  transformFailures: number;
}

/** One node's accounting. */
export interface LedgerEntry {
  last: Counters;
  /** Rise since the baseline (or the last operator resume). */
  rise: Counters;
  /** The part of `rise` observed while the node was at the target version. */
  riseUpgraded: Counters;
}

/** Per node id. */
export type HealthLedger = Record<string, LedgerEntry>;

const zero = (): Counters => ({ calls: 0, failed: 0, disallowed: 0, transformFailures: 0 });
const keys = ['calls', 'failed', 'disallowed', 'transformFailures'] as const;

function countersOf(stats: ScheduleNodeView['stats']): Counters {
  const c = zero();
  for (const k of keys) {
    const v = stats?.[k];
    c[k] = typeof v === 'number' && Number.isFinite(v) && v >= 0 ? v : 0;
  }
  return c;
}

/** Folds a new node view into the ledger (returns a new ledger). */
export function updateLedger(ledger: HealthLedger, nodes: readonly ScheduleNodeView[], to: number): HealthLedger {
  const next: HealthLedger = { ...ledger };
  for (const node of nodes) {
    const current = countersOf(node.stats);
    const entry = ledger[node.id];
    if (!entry) {
      // First sight: this is the baseline; nothing has risen yet.
      next[node.id] = { last: current, rise: zero(), riseUpgraded: zero() };
      continue;
    }
    const rise = { ...entry.rise };
    const riseUpgraded = { ...entry.riseUpgraded };
    for (const k of keys) {
      const delta = current[k] >= entry.last[k] ? current[k] - entry.last[k] : current[k];
      rise[k] += delta;
      if (node.version >= to) riseUpgraded[k] += delta;
    }
    next[node.id] = { last: current, rise, riseUpgraded };
  }
  return next;
}

/** Sets every rise back to zero: what an operator `resume` after a halt means. */
export function forgiveLedger(ledger: HealthLedger): HealthLedger {
  const next: HealthLedger = {};
  for (const [id, e] of Object.entries(ledger)) next[id] = { last: e.last, rise: zero(), riseUpgraded: zero() };
  return next;
}

/**
 * The first health problem among `nodes` (restricted to `only` if given), or
 * undefined when healthy. The text says what was seen and what the limit is.
 */
export function healthProblem(
  h: HealthParams,
  ledger: HealthLedger,
  nodes: readonly ScheduleNodeView[],
  to: number,
  only?: ReadonlySet<string>,
): string | undefined {
  const considered = only ? nodes.filter((n) => only.has(n.id)) : nodes;

  const failedNodes = considered.filter((n) => n.status === 'failed');
  if (failedNodes.length > h.maxFailedNodes) {
    return `${failedNodes.length} node(s) failed to upgrade (${failedNodes.map((n) => n.id).join(', ')}); at most ${h.maxFailedNodes} allowed`;
  }

  let tf = 0;
  const tfBy: string[] = [];
  for (const n of considered) {
    const r = ledger[n.id]?.rise.transformFailures ?? 0;
    if (r > 0) {
      tf += r;
      tfBy.push(`${n.id}: ${r}`);
    }
  }
  if (tf > h.maxTransformFailures) {
    return `${tf} transform failure(s) reported (${tfBy.join(', ')}); at most ${h.maxTransformFailures} allowed`;
  }

  const upgraded = considered.filter((n) => n.version >= to);
  let calls = 0;
  let failed = 0;
  let disallowed = 0;
  for (const n of upgraded) {
    const r = ledger[n.id]?.riseUpgraded;
    if (!r) continue;
    calls += r.calls;
    failed += r.failed;
    disallowed += r.disallowed;
  }
  if (calls >= h.minCalls && calls > 0) {
    if (h.maxFailedRate !== undefined && failed / calls > h.maxFailedRate) {
      return `failed-call rate ${pct(failed / calls)} on upgraded nodes (${failed} of ${calls} calls) is over the limit ${pct(h.maxFailedRate)}`;
    }
    if (h.maxDisallowedRate !== undefined && disallowed / calls > h.maxDisallowedRate) {
      return `disallowed-call rate ${pct(disallowed / calls)} on upgraded nodes (${disallowed} of ${calls} calls) is over the limit ${pct(h.maxDisallowedRate)}`;
    }
  }
  return undefined;
}

function pct(x: number): string {
  return `${(x * 100).toFixed(1)}%`;
}
