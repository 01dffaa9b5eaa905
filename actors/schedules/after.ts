/**
 * `after`: upgrade only once another actor type (of this service or another)
 * runs at least a given version on every live node that hosts it — e.g. the
 * `billing` service must serve `invoice` v3 before `cart` v4 may start
 * calling it.
 *
 * The SF emits `schedule.watch` for the dependency while starting; the manager
 * answers with `udb.versions` events (lowest version among the live nodes
 * hosting it, and how many there are). Until the first such event the SF
 * waits. No live node hosting the dependency counts as "not reached".
 *
 * Params:
 * - `type` — the other actor type (default: the type being upgraded, which
 *   makes sense only with another `service`).
 * - `service` — the other service (default: this service).
 *   At least one of `type` and `service` is required.
 * - `version` — the version it must have reached, integer ≥ 1, required.
 * - `health` — the health gate (optional).
 *
 * Descriptor: `{ "name": "after", "params": { "service": "billing", "type": "invoice", "version": 3 } }`
 *
 * @module
 */
import type { ScheduleInput } from './contract.ts';
import { fromSchedulePolicy, type SchedulePolicy } from './machine.ts';
import { parseWith, type HealthParams } from './params.ts';

/** Parsed params of `after`; `service`/`type` undefined mean "same as the input's". */
export interface AfterParams {
  service: string | undefined;
  type: string | undefined;
  version: number;
  health: HealthParams | undefined;
}

/** What an after SF knows of its dependency. */
export interface AfterState {
  minVersion: number | null;
  liveNodes: number | null;
}

/** The dependency, with defaults applied. */
export function dependencyOf(input: ScheduleInput, params: AfterParams): { service: string; type_: string } {
  return { service: params.service ?? input.service, type_: params.type ?? input.type };
}

/** The rule of `after`. */
export const afterPolicy: SchedulePolicy<AfterParams, AfterState> = {
  name: 'after',
  needsLedger: false,
  parse: (params) =>
    parseWith('after', params, (r) => {
      const type = r.str('type', { expected: 'the name of the actor type to wait for, e.g. "invoice"' });
      const service = r.str('service', { expected: 'the name of the service to wait for, e.g. "billing"' });
      const version = r.int('version', { min: 1, unit: 'the version the dependency must reach' });
      if (!r.has('version')) r.problem('parameter "version" is required: the version the dependency must reach, e.g. 3');
      if (!r.has('type') && !r.has('service')) {
        r.problem('give "type" (another actor type) and/or "service" (another service) to wait for, e.g. { "type": "invoice", "version": 3 }');
      }
      return { service, type, version: version ?? 1, health: r.health() };
    }),
  check: (input, params) => {
    const dep = dependencyOf(input, params);
    if (dep.service === input.service && dep.type_ === input.type) {
      return `it waits for ${dep.service}/${dep.type_}, the very type being upgraded; name another "type" or "service"`;
    }
    return undefined;
  },
  watches: (input, params) => [dependencyOf(input, params)],
  init: () => ({ minVersion: null, liveNodes: null }),
  observe: (state, event, view) => {
    if (event.type !== 'udb.versions') return state;
    const dep = dependencyOf(view.input, view.params);
    if (event.service !== dep.service || event.type_ !== dep.type_) return state;
    return { minVersion: event.minVersion, liveNodes: event.liveNodes ?? null };
  },
  evaluate: (state, view) => {
    const dep = dependencyOf(view.input, view.params);
    const name = `${dep.service}/${dep.type_}`;
    const want = view.params.version;
    if (state.minVersion === null) return { ready: false, note: `waiting for news of ${name} (needs v${want})` };
    if (state.liveNodes === 0) return { ready: false, note: `waiting for ${name} v${want}: no live node hosts it` };
    if (state.minVersion < want) return { ready: false, note: `waiting for ${name} to reach v${want} on every live node (lowest is v${state.minVersion})` };
    return { ready: true };
  },
};

/** The `after` SF machine; params come through `input.params`. */
export const after = fromSchedulePolicy(afterPolicy);
