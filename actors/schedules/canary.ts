/**
 * `canary`: the first n nodes upgrade; the rest wait a soak time and/or until
 * the canaries have been healthy for a while, then follow, all at once or k at
 * a time.
 *
 * The canaries are the first `canaries` nodes in the stable order (node ids
 * sorted), skipping nodes that are dead and not yet upgraded — so a dead
 * designated canary is replaced by the next node instead of holding the
 * rollout forever. The canary phase is over when every canary has reached the
 * target version; the soak clock starts when this SF first sees that.
 *
 * Soak and healthy time count only while the canaries run the code being
 * rolled out and the rollout runs: not while it is paused (by an operator, or
 * by a node's transform-failure halt) or halted by the health gate, and from
 * zero again when a fix replaces the code (the manager starts the SF again).
 * A canary that failed its transform, got a fix and a resume must soak the
 * fixed code in full before the rest follow.
 *
 * A canary is healthy when it is live, not `failed`, and the health check
 * (the thresholds of `params.health`, or the defaults: no transform failure,
 * no failed node) passes on the canaries alone. Without `params.health`,
 * unhealthy canaries only hold the rest back; with it, the health gate halts
 * the rollout.
 *
 * Params:
 * - `canaries` — n, integer ≥ 1, default 1.
 * - `waitMs` — soak time after the canaries reached the target, ms.
 * - `healthyForMs` — how long the canaries must have been healthy, ms.
 *   Neither given: `waitMs: 60000`. Both given: both must hold.
 * - `batch` — the rest go k at a time in the stable order (default: all at once).
 * - `health` — the health gate (optional).
 *
 * Descriptor: `{ "name": "canary", "params": { "canaries": 1, "healthyForMs": 30000, "batch": 2 } }`
 *
 * @module
 */
import type { ScheduleNodeView } from './contract.ts';
import { healthProblem } from './health.ts';
import { fromSchedulePolicy, type SchedulePolicy, type ScheduleView } from './machine.ts';
import { describeNode, gone, reached, rollingGate, stableOrder } from './order.ts';
import { defaultHealth, parseWith, type HealthParams } from './params.ts';

/** Parsed params of `canary`. */
export interface CanaryParams {
  canaries: number;
  waitMs: number | undefined;
  healthyForMs: number | undefined;
  batch: number | undefined;
  health: HealthParams | undefined;
}

/** What a canary SF remembers between events. */
export interface CanaryState {
  /** When this SF first saw every canary at the target version (null: not yet, or no longer). */
  phaseDoneAt: number | null;
  /** How long the canaries have run the target version while the rollout ran. */
  soakedMs: number;
  /** How long, of that, they have looked healthy without a break. */
  healthyMs: number;
  /** The time soak and health were counted up to, while they count (null: not counting now). */
  countedAt: number | null;
  /** Whether the canaries looked healthy at `countedAt`. */
  healthy: boolean;
  /** Why the canaries last looked unhealthy, for the note. */
  lastProblem: string | null;
}

/** The canaries among `order` (already stable-sorted). */
export function selectCanaries(order: readonly ScheduleNodeView[], count: number, to: number): ScheduleNodeView[] {
  return order.filter((n) => reached(n, to) || !gone(n)).slice(0, count);
}

function canaryProblem(canaries: readonly ScheduleNodeView[], view: ScheduleView<CanaryParams>): string | undefined {
  const down = canaries.filter((c) => !c.live || c.status === 'failed' || c.status === 'stopped');
  if (down.length > 0) return `canary ${down.map(describeNode).join(', ')} is not running`;
  const thresholds = view.params.health ?? defaultHealth;
  return healthProblem(thresholds, view.ledger, view.nodes ?? [], view.input.to, new Set(canaries.map((c) => c.id)));
}

const seconds = (ms: number) => `${Math.floor(ms / 1000)}s`;

/** The rule of `canary`. */
export const canaryPolicy: SchedulePolicy<CanaryParams, CanaryState> = {
  name: 'canary',
  parse: (params) =>
    parseWith('canary', params, (r) => {
      const canaries = r.int('canaries', { min: 1, default: 1, unit: 'nodes that go first' })!;
      const waitMs = r.int('waitMs', { min: 0, unit: 'milliseconds of soak after the canaries upgraded' });
      const healthyForMs = r.int('healthyForMs', { min: 0, unit: 'milliseconds the canaries must stay healthy' });
      const batch = r.int('batch', { min: 1, unit: 'nodes of the rest upgrading at once' });
      return {
        canaries,
        waitMs: waitMs === undefined && healthyForMs === undefined ? 60_000 : waitMs,
        healthyForMs,
        batch,
        health: r.health(),
      };
    }),
  init: () => ({ phaseDoneAt: null, soakedMs: 0, healthyMs: 0, countedAt: null, healthy: false, lastProblem: null }),
  observe: (state, _event, view) => {
    if (!view.nodes) return state;
    const canaries = selectCanaries(stableOrder(view.nodes), view.params.canaries, view.input.to);
    const done = canaries.length > 0 && canaries.every((c) => reached(c, view.input.to));
    if (!done) return { phaseDoneAt: null, soakedMs: 0, healthyMs: 0, countedAt: null, healthy: false, lastProblem: null };
    const problem = canaryProblem(canaries, view) ?? null;
    // The time since the last count counts only if it was counting then (running, canaries done).
    const elapsed = state.countedAt === null ? 0 : Math.max(0, view.now - state.countedAt);
    return {
      phaseDoneAt: state.phaseDoneAt ?? view.now,
      soakedMs: state.soakedMs + elapsed,
      healthyMs: problem ? 0 : state.healthy ? state.healthyMs + elapsed : 0,
      countedAt: view.running ? view.now : null,
      healthy: problem === null,
      lastProblem: problem,
    };
  },
  evaluate: (state, view) => {
    if (!view.nodes) return { ready: false, note: 'waiting for the node list' };
    const { input, params } = view;
    const order = stableOrder(view.nodes);
    const canaries = selectCanaries(order, params.canaries, input.to);
    if (canaries.some((c) => c.id === input.nodeId)) return { ready: true };

    const pending = canaries.filter((c) => !reached(c, input.to));
    if (pending.length > 0 || state.phaseDoneAt === null) {
      return { ready: false, note: `waiting for canary ${pending.map(describeNode).join(', ') || '(none yet)'} to reach v${input.to}` };
    }
    if (params.waitMs !== undefined && state.soakedMs < params.waitMs) {
      return { ready: false, note: `soaking: canaries have run v${input.to} for ${seconds(state.soakedMs)} of ${seconds(params.waitMs)} (counted while the rollout runs)` };
    }
    if (params.healthyForMs !== undefined) {
      if (!state.healthy) return { ready: false, note: `canaries unhealthy: ${state.lastProblem ?? 'no health data yet'}` };
      if (state.healthyMs < params.healthyForMs) {
        return { ready: false, note: `canaries healthy for ${seconds(state.healthyMs)} of ${seconds(params.healthyForMs)}` };
      }
    }
    if (params.batch === undefined) return { ready: true };
    const canaryIds = new Set(canaries.map((c) => c.id));
    const rest = order.filter((n) => !canaryIds.has(n.id));
    return rollingGate(rest, order, input.nodeId, params.batch, input.to);
  },
};

/** The `canary` SF machine; params come through `input.params`. */
export const canary = fromSchedulePolicy(canaryPolicy);
