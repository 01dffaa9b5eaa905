/**
 * `window`: upgrade only inside a daily time-of-day window, e.g. 02:00–04:00.
 *
 * The window is [start, end): it opens at `start` and closes at `end`. When
 * `end` is earlier than `start` the window runs over midnight (22:00–02:00
 * means from 22:00 to 02:00 the next day). Times are read in `timeZone`.
 * Time comes from `input.now` and `tick` events only, so a node decides at
 * the first tick inside the window.
 *
 * Params:
 * - `start`, `end` — "HH:MM", 24-hour, required, not equal.
 * - `timeZone` — "UTC" (default), "Z", a fixed offset such as "+02:00" or
 *   "-05:30", or an IANA zone name such as "Europe/Paris" (follows daylight
 *   saving time).
 * - `health` — the health gate (optional).
 *
 * Descriptor: `{ "name": "window", "params": { "start": "22:00", "end": "02:00", "timeZone": "+01:00" } }`
 *
 * @module
 */
import { fromSchedulePolicy, type SchedulePolicy } from './machine.ts';
import { parseClockTime, parseWith, type HealthParams } from './params.ts';

/** Parsed params of `window`: minutes after midnight, and a zone. */
export interface WindowParams {
  start: number;
  end: number;
  timeZone: string;
  health: HealthParams | undefined;
}

/** A fixed offset in minutes, or an IANA zone name. */
type Zone = { offsetMinutes: number } | { iana: string };

/** Parses a `timeZone` param; undefined if it is not one. */
export function parseTimeZone(tz: string): Zone | undefined {
  if (tz === 'UTC' || tz === 'Z') return { offsetMinutes: 0 };
  const m = /^([+-])(\d{2}):(\d{2})$/.exec(tz);
  if (m) {
    const h = Number(m[2]);
    const min = Number(m[3]);
    if (h > 14 || min > 59) return undefined;
    return { offsetMinutes: (m[1] === '-' ? -1 : 1) * (h * 60 + min) };
  }
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: tz });
    return { iana: tz };
  } catch {
    return undefined;
  }
}

/** Minutes after midnight at instant `now` (ms since epoch) in `zone`. */
export function minutesOfDay(now: number, zone: Zone): number {
  if ('offsetMinutes' in zone) {
    const m = Math.floor(now / 60_000) + zone.offsetMinutes;
    return ((m % 1440) + 1440) % 1440;
  }
  const parts = new Intl.DateTimeFormat('en-US', { timeZone: zone.iana, hour: 'numeric', minute: 'numeric', hourCycle: 'h23' }).formatToParts(now);
  const hour = Number(parts.find((p) => p.type === 'hour')?.value ?? 0);
  const minute = Number(parts.find((p) => p.type === 'minute')?.value ?? 0);
  return (hour % 24) * 60 + minute;
}

/** Is minute-of-day `m` inside [start, end), wrapping over midnight when end < start? */
export function inWindow(m: number, start: number, end: number): boolean {
  return start < end ? m >= start && m < end : m >= start || m < end;
}

const hhmm = (m: number) => `${String(Math.floor(m / 60)).padStart(2, '0')}:${String(m % 60).padStart(2, '0')}`;

/** The rule of `window`. */
export const windowPolicy: SchedulePolicy<WindowParams, null> = {
  name: 'window',
  needsLedger: false,
  parse: (params) =>
    parseWith('window', params, (r) => {
      const clock = (s: string) => (parseClockTime(s) === undefined ? `must be a time "HH:MM" (24-hour, e.g. "02:30"), got "${s}"` : undefined);
      const start = r.str('start', { required: true, expected: 'a time "HH:MM" when the window opens, e.g. "02:00"', check: clock });
      const end = r.str('end', { required: true, expected: 'a time "HH:MM" when the window closes, e.g. "04:00"', check: clock });
      const timeZone =
        r.str('timeZone', {
          expected: '"UTC", an offset such as "+02:00", or an IANA zone such as "Europe/Paris"',
          check: (s) => (parseTimeZone(s) ? undefined : `must be "UTC", an offset such as "+02:00" or "-05:30", or an IANA zone such as "Europe/Paris", got "${s}"`),
        }) ?? 'UTC';
      const s = start === undefined ? undefined : parseClockTime(start);
      const e = end === undefined ? undefined : parseClockTime(end);
      if (s !== undefined && s === e) r.problem(`"start" and "end" are both ${start}: a window needs two different times (to allow any time, use "immediate")`);
      return { start: s ?? 0, end: e ?? 0, timeZone, health: r.health() };
    }),
  init: () => null,
  evaluate: (_state, { params, now }) => {
    const zone = parseTimeZone(params.timeZone) ?? { offsetMinutes: 0 };
    const m = minutesOfDay(now, zone);
    if (inWindow(m, params.start, params.end)) return { ready: true };
    return { ready: false, note: `waiting for the window ${hhmm(params.start)}–${hhmm(params.end)} ${params.timeZone} (now ${hhmm(m)} there)` };
  },
};

/** The `window` SF machine; params come through `input.params`. */
export const window = fromSchedulePolicy(windowPolicy);
