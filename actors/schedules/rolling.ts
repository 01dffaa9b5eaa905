/**
 * `rolling`: k nodes at a time, in a stable order, optionally with a pause
 * between batches and a cap on nodes unavailable at once.
 *
 * Every node sorts the node ids it sees in the UDB (dead ones included, so
 * positions do not shift when a node dies); its position decides its batch,
 * ⌊position / k⌋. A node upgrades when every node of an earlier batch has
 * reached the target version or is gone (dead or stopped), and fewer than k
 * live nodes are `upgrading`. So batches go one after another and never more
 * than k nodes upgrade at once (see order.ts for why).
 *
 * Params:
 * - `batch` — k, an integer ≥ 1; or
 * - `percent` — k as a share of the nodes recorded for the service:
 *   k = max(1, ⌊percent × nodes / 100⌋), recomputed from each node list.
 * - neither: `batch: 1`. Both: an error.
 * - `pauseMs` — after the earlier batches are done, the nodes of the next one
 *   wait this long before they go (Argo Rollouts' `pause`, between every
 *   batch). It counts only while the rollout runs: time paused or halted
 *   does not count (as for a canary's soak). Default 0.
 * - `maxUnavailable` — at most this many nodes unavailable at once: live
 *   nodes `upgrading` (their calls are held) or `failed`, this one included
 *   once it goes. A number of nodes (`1`) or a share of the nodes recorded
 *   (`"25%"`, rounded down, at least 1), like Kubernetes' `maxUnavailable`.
 *   Dead nodes do not count (a dead node never blocks a rollout). Useful with
 *   large batches: `percent: 50, maxUnavailable: 1` goes through half the
 *   nodes one at a time, then pauses, then the other half. Default: k.
 * - `health` — the health gate (optional).
 *
 * Descriptor: `{ "name": "rolling", "params": { "batch": 1, "pauseMs": 30000 } }`
 *
 * @module
 */
import { fromSchedulePolicy, type SchedulePolicy, type ScheduleView } from './machine.ts';
import { pendingBefore, positions, rollingGate, stableOrder } from './order.ts';
import { parseWith, resolveNodeCount, type HealthParams, type NodeCount } from './params.ts';

/** Parsed params of `rolling`: exactly one of `batch` and `percent`. */
export interface RollingParams {
  batch: number | undefined;
  percent: number | undefined;
  pauseMs: number;
  maxUnavailable: NodeCount | undefined;
  health: HealthParams | undefined;
}

/** What a rolling SF remembers: how long its batch has waited since the earlier ones were done. */
export interface RollingState {
  /** Time waited (while running) since this SF saw every earlier batch done. */
  waitedMs: number;
  /** The time the wait was counted up to, while it counts (null: not counting now). */
  countedAt: number | null;
}

/** k for a node list of `count` nodes. */
export function batchSize(params: Pick<RollingParams, 'batch' | 'percent'>, count: number): number {
  if (params.percent !== undefined) return Math.max(1, Math.floor((params.percent * count) / 100));
  return params.batch ?? 1;
}

/** This node's batch number, and whether every earlier batch is done (reached `to` or gone). */
function batchOf(view: ScheduleView<RollingParams>): { batch: number; earlierDone: boolean } | undefined {
  if (!view.nodes) return undefined;
  const order = stableOrder(view.nodes);
  const k = batchSize(view.params, order.length);
  const position = positions(order).ids.get(view.input.nodeId) ?? -1;
  if (position < 0) return undefined;
  const batch = Math.floor(position / k);
  return { batch, earlierDone: pendingBefore(order, view.input.to, batch * k) === 0 };
}

const seconds = (ms: number) => `${Math.floor(ms / 1000)}s`;

/** The rule of `rolling`. */
export const rollingPolicy: SchedulePolicy<RollingParams, RollingState> = {
  name: 'rolling',
  needsLedger: false,
  parse: (params) =>
    parseWith('rolling', params, (r) => {
      const batch = r.int('batch', { min: 1, unit: 'nodes upgrading at once' });
      const percent = r.num('percent', { min: 0, max: 100, minExclusive: true, unit: 'percent of the nodes at once' });
      if (batch !== undefined && percent !== undefined) {
        r.problem('give either "batch" (nodes at once) or "percent" (share of nodes at once), not both');
      }
      const pauseMs = r.int('pauseMs', { min: 0, default: 0, unit: 'milliseconds between batches' })!;
      const maxUnavailable = r.nodeCount('maxUnavailable', { unit: 'the most nodes upgrading or failed at once' });
      return { batch: batch === undefined && percent === undefined ? 1 : batch, percent, pauseMs, maxUnavailable, health: r.health() };
    }),
  init: () => ({ waitedMs: 0, countedAt: null }),
  observe: (state, _event, view) => {
    if (view.params.pauseMs === 0) return state;
    const b = batchOf(view);
    if (!b || b.batch === 0 || !b.earlierDone) return { waitedMs: 0, countedAt: null };
    // The time since the last count counts only if it was counting then (running, earlier batches done).
    const elapsed = state.countedAt === null ? 0 : Math.max(0, view.now - state.countedAt);
    return { waitedMs: state.waitedMs + elapsed, countedAt: view.running ? view.now : null };
  },
  evaluate: (state, view: ScheduleView<RollingParams>) => {
    if (!view.nodes) return { ready: false, note: 'waiting for the node list' };
    const order = stableOrder(view.nodes);
    const k = batchSize(view.params, order.length);
    const cap = view.params.maxUnavailable ? Math.min(k, resolveNodeCount(view.params.maxUnavailable, order.length)) : k;
    const gate = rollingGate(order, order, view.input.nodeId, k, view.input.to, { maxUnavailable: cap });
    if (!gate.ready) return gate;
    const b = view.params.pauseMs > 0 ? batchOf(view) : undefined;
    if (b && b.batch > 0 && state.waitedMs < view.params.pauseMs) {
      return { ready: false, note: `batch ${b.batch}: pausing between batches, ${seconds(state.waitedMs)} of ${seconds(view.params.pauseMs)} (counted while the rollout runs)` };
    }
    return { ready: true };
  },
};

/** The `rolling` SF machine; params come through `input.params`. */
export const rolling = fromSchedulePolicy(rollingPolicy);
