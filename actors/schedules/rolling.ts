/**
 * `rolling`: k nodes at a time, in a stable order.
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
 * - `health` — the health gate (optional).
 *
 * Descriptor: `{ "name": "rolling", "params": { "batch": 1 } }`
 *
 * @module
 */
import { fromSchedulePolicy, type SchedulePolicy, type ScheduleView } from './machine.ts';
import { rollingGate, stableOrder } from './order.ts';
import { parseWith, type HealthParams } from './params.ts';

/** Parsed params of `rolling`: exactly one of `batch` and `percent`. */
export interface RollingParams {
  batch: number | undefined;
  percent: number | undefined;
  health: HealthParams | undefined;
}

/** k for a node list of `count` nodes. */
export function batchSize(params: Pick<RollingParams, 'batch' | 'percent'>, count: number): number {
  if (params.percent !== undefined) return Math.max(1, Math.floor((params.percent * count) / 100));
  return params.batch ?? 1;
}

/** The rule of `rolling`. */
export const rollingPolicy: SchedulePolicy<RollingParams, null> = {
  name: 'rolling',
  parse: (params) =>
    parseWith('rolling', params, (r) => {
      const batch = r.int('batch', { min: 1, unit: 'nodes upgrading at once' });
      const percent = r.num('percent', { min: 0, max: 100, minExclusive: true, unit: 'percent of the nodes at once' });
      if (batch !== undefined && percent !== undefined) {
        r.problem('give either "batch" (nodes at once) or "percent" (share of nodes at once), not both');
      }
      return { batch: batch === undefined && percent === undefined ? 1 : batch, percent, health: r.health() };
    }),
  init: () => null,
  evaluate: (_state, view: ScheduleView<RollingParams>) => {
    if (!view.nodes) return { ready: false, note: 'waiting for the node list' };
    const order = stableOrder(view.nodes);
    const k = batchSize(view.params, order.length);
    return rollingGate(order, order, view.input.nodeId, k, view.input.to);
  },
};

/** The `rolling` SF machine; params come through `input.params`. */
export const rolling = fromSchedulePolicy(rollingPolicy);
