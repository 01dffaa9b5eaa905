/**
 * Example of composing the building blocks (quoted in docs/scheduling.md):
 * roll through the cluster `batch` nodes at a time, but only inside a nightly
 * window. The window arithmetic and the rolling gate are the built-ins' own.
 */
import {
  fromSchedulePolicy,
  inWindow,
  minutesOfDay,
  parseWith,
  rollingGate,
  stableOrder,
  type HealthParams,
} from '../../../../actors/schedules/index.ts';

interface Params {
  batch: number;
  startHour: number;
  endHour: number;
  health: HealthParams | undefined;
}

export const nightlyRolling = fromSchedulePolicy<Params, null>({
  name: 'nightlyRolling',
  parse: (params) =>
    parseWith('nightlyRolling', params, (r) => ({
      batch: r.int('batch', { min: 1, default: 1, unit: 'nodes upgrading at once' })!,
      startHour: r.int('startHour', { min: 0, max: 23, default: 22, unit: 'hour of day, UTC' })!,
      endHour: r.int('endHour', { min: 0, max: 23, default: 4, unit: 'hour of day, UTC' })!,
      health: r.health(),
    })),
  init: () => null,
  evaluate: (_state, view) => {
    const { params, now, nodes, input } = view;
    if (!inWindow(minutesOfDay(now, { offsetMinutes: 0 }), params.startHour * 60, params.endHour * 60)) {
      return { ready: false, note: `waiting for the night (${params.startHour}:00–${params.endHour}:00 UTC)` };
    }
    if (!nodes) return { ready: false, note: 'waiting for the node list' };
    const order = stableOrder(nodes);
    return rollingGate(order, order, input.nodeId, params.batch, input.to);
  },
});
