/**
 * `whenIdle`: upgrade when this node's own load has stayed under a threshold
 * for a while — the moment a soft restart disturbs the fewest callers.
 *
 * Load arrives as `load` events (`callsPerSecond`, `idleForMs`) from the
 * manager; time from `tick`. The quiet period starts at the first `load`
 * under the threshold (backdated by `idleForMs` when the node served no call
 * at all) and restarts from zero whenever load reaches the threshold again.
 * No `load` event yet means no evidence of quiet: the SF waits.
 *
 * Params:
 * - `maxCallsPerSecond` — "idle" means strictly fewer calls per second than
 *   this; number > 0, default 1.
 * - `forMs` — how long it must stay idle, ms, default 30000.
 * - `maxWaitMs` — upgrade anyway after this long since the SF started (optional;
 *   default: wait for idle however long it takes).
 * - `health` — the health gate (optional).
 *
 * Descriptor: `{ "name": "whenIdle", "params": { "maxCallsPerSecond": 5, "forMs": 10000 } }`
 *
 * @module
 */
import { fromSchedulePolicy, type SchedulePolicy } from './machine.ts';
import { parseWith, type HealthParams } from './params.ts';

/** Parsed params of `whenIdle`. */
export interface WhenIdleParams {
  maxCallsPerSecond: number;
  forMs: number;
  maxWaitMs: number | undefined;
  health: HealthParams | undefined;
}

/** What a whenIdle SF remembers. */
export interface WhenIdleState {
  startedAt: number;
  /** Start of the current quiet period (null: busy, or no load report yet). */
  quietSince: number | null;
  lastCallsPerSecond: number | null;
}

const seconds = (ms: number) => `${Math.floor(ms / 1000)}s`;

/** The rule of `whenIdle`. */
export const whenIdlePolicy: SchedulePolicy<WhenIdleParams, WhenIdleState> = {
  name: 'whenIdle',
  needsLedger: false,
  parse: (params) =>
    parseWith('whenIdle', params, (r) => ({
      maxCallsPerSecond: r.num('maxCallsPerSecond', { min: 0, minExclusive: true, default: 1, unit: 'calls per second' })!,
      forMs: r.int('forMs', { min: 0, default: 30_000, unit: 'milliseconds' })!,
      maxWaitMs: r.int('maxWaitMs', { min: 0, unit: 'milliseconds' }),
      health: r.health(),
    })),
  init: (input) => ({ startedAt: input.now, quietSince: null, lastCallsPerSecond: null }),
  observe: (state, event, view) => {
    if (event.type !== 'load') return state;
    if (!(event.callsPerSecond < view.params.maxCallsPerSecond)) {
      return { ...state, quietSince: null, lastCallsPerSecond: event.callsPerSecond };
    }
    // A node with no call at all knows how long it has been idle: count that too.
    const backdate = event.callsPerSecond === 0 ? Math.max(0, event.idleForMs) : 0;
    const since = view.now - backdate;
    return {
      ...state,
      quietSince: state.quietSince === null ? since : Math.min(state.quietSince, since),
      lastCallsPerSecond: event.callsPerSecond,
    };
  },
  evaluate: (state, view) => {
    const { params, now } = view;
    if (params.maxWaitMs !== undefined && now - state.startedAt >= params.maxWaitMs) return { ready: true };
    if (state.quietSince === null) {
      return {
        ready: false,
        note:
          state.lastCallsPerSecond === null
            ? 'waiting for a load report'
            : `busy: ${state.lastCallsPerSecond} calls/s, waiting for fewer than ${params.maxCallsPerSecond}`,
      };
    }
    const quietFor = now - state.quietSince;
    if (quietFor < params.forMs) return { ready: false, note: `idle for ${seconds(quietFor)} of ${seconds(params.forMs)}` };
    return { ready: true };
  },
};

/** The `whenIdle` SF machine; params come through `input.params`. */
export const whenIdle = fromSchedulePolicy(whenIdlePolicy);
