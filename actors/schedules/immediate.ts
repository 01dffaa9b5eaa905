/**
 * `immediate`: upgrade as soon as the upgrade is known (unless the rollout is
 * paused, or the health gate holds it).
 *
 * Params: `health` (optional, see docs/scheduling.md). With `health`, the node
 * first waits for one node list so the gate has something to judge.
 *
 * Descriptor: `{ "name": "immediate" }`
 *
 * @module
 */
import { fromSchedulePolicy, type SchedulePolicy } from './machine.ts';
import { parseWith, type HealthParams } from './params.ts';

/** Parsed params of `immediate`. */
export interface ImmediateParams {
  health: HealthParams | undefined;
}

/** The rule of `immediate`: always go. */
export const immediatePolicy: SchedulePolicy<ImmediateParams, null> = {
  name: 'immediate',
  needsLedger: false,
  parse: (params) => parseWith('immediate', params, (r) => ({ health: r.health() })),
  init: () => null,
  evaluate: () => ({ ready: true }),
};

/** The `immediate` SF machine; params come through `input.params`. */
export const immediate = fromSchedulePolicy(immediatePolicy);
