/**
 * Worked example of a custom SF built with `fromSchedulePolicy` (quoted in
 * docs/scheduling.md): upgrade only on weekdays between `fromHour` and
 * `toHour` UTC, when people are around to watch. The shell adds pause,
 * resume, abort, status notes and the `health` gate for free.
 */
import { fromSchedulePolicy, parseWith, type HealthParams } from '../../../../actors/schedules/index.ts';

interface Params {
  fromHour: number;
  toHour: number;
  health: HealthParams | undefined;
}

export const businessHours = fromSchedulePolicy<Params, null>({
  name: 'businessHours',
  parse: (params) =>
    parseWith('businessHours', params, (r) => {
      const fromHour = r.int('fromHour', { min: 0, max: 23, default: 9, unit: 'hour of day, UTC' })!;
      const toHour = r.int('toHour', { min: 1, max: 24, default: 17, unit: 'hour of day, UTC' })!;
      if (fromHour >= toHour) r.problem(`"fromHour" (${fromHour}) must be before "toHour" (${toHour})`);
      return { fromHour, toHour, health: r.health() };
    }),
  init: () => null,
  evaluate: (_state, { now, params }) => {
    const t = new Date(now);
    const weekday = t.getUTCDay() >= 1 && t.getUTCDay() <= 5;
    const hour = t.getUTCHours();
    if (weekday && hour >= params.fromHour && hour < params.toHour) return { ready: true };
    return { ready: false, note: `waiting for a weekday between ${params.fromHour}:00 and ${params.toHour}:00 UTC` };
  },
});
