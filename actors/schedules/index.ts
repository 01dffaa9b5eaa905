/**
 * Scheduling functions (SFs): the built-ins, their parameter validation, and
 * the contract for custom SFs shipped in an upgrade bundle.
 *
 * Every SF here is an xstate v5 machine that takes its parameters through
 * `input.params` — so {@link builtInSchedules} maps each name to the machine
 * itself, not to a factory. The manager does:
 *
 * ```ts
 * const machine = resolveSchedule(descriptor.schedule.name, descriptor.schedule.params, { custom: bundle.schedules });
 * const sf = createActor(machine, { input: { nodeId, service, type, from, to, params: descriptor.schedule.params ?? {}, now, rolloutId, paused } });
 * ```
 *
 * See docs/scheduling.md for each built-in's parameters, and
 * ./contract.ts for the events, emitted events and tags.
 *
 * @module
 */
import { ErrorCode, MoltError } from '../../runtime/errors.ts';
import { after, afterPolicy } from './after.ts';
import { canary, canaryPolicy } from './canary.ts';
import type { BuiltInScheduleName, ScheduleDescriptor, ScheduleMachine } from './contract.ts';
import { ScheduleTag } from './contract.ts';
import { immediate, immediatePolicy } from './immediate.ts';
import type { ParseResult } from './params.ts';
import { rolling, rollingPolicy } from './rolling.ts';
import { whenIdle, whenIdlePolicy } from './whenIdle.ts';
import { window, windowPolicy } from './window.ts';
import { zones, zonesPolicy } from './zones.ts';
import { groups, groupsPolicy } from './groups.ts';
import { ring, ringPolicy } from './ring.ts';

export type {
  BuiltInScheduleName,
  ScheduleDecision,
  ScheduleDescriptor,
  ScheduleEmitted,
  ScheduleEvent,
  ScheduleInput,
  ScheduleMachine,
  ScheduleNodeView,
} from './contract.ts';
export { ScheduleTag } from './contract.ts';
export { fromSchedulePolicy } from './machine.ts';
export type { ObservedEvent, ScheduleContext, SchedulePolicy, ScheduleView } from './machine.ts';
export { parseWith, ParamReader, defaultHealth } from './params.ts';
export type { HealthParams, ParseResult } from './params.ts';
export type { GateResult } from './order.ts';
export { rollingGate, stableOrder, withSelf } from './order.ts';
export { healthProblem } from './health.ts';
export { inWindow, minutesOfDay, parseTimeZone } from './window.ts';
export { immediate, rolling, canary, whenIdle, window, after, zones, groups, ring };
export type { ImmediateParams } from './immediate.ts';
export type { RollingParams } from './rolling.ts';
export type { CanaryParams } from './canary.ts';
export type { WhenIdleParams } from './whenIdle.ts';
export type { WindowParams } from './window.ts';
export type { AfterParams } from './after.ts';
export type { ZonesParams } from './zones.ts';
export type { GroupsParams } from './groups.ts';
export type { RingParams } from './ring.ts';

/**
 * The built-in SFs by descriptor name. Each value is the machine itself;
 * its parameters come through `input.params` (validate them first with
 * {@link resolveSchedule} or {@link validateScheduleParams}).
 */
export const builtInSchedules: Readonly<Record<BuiltInScheduleName, ScheduleMachine>> = Object.freeze({
  immediate,
  rolling,
  canary,
  whenIdle,
  window,
  after,
  zones,
  groups,
  ring,
});

const parsers: Readonly<Record<BuiltInScheduleName, (params: unknown) => ParseResult<unknown>>> = {
  immediate: immediatePolicy.parse,
  rolling: rollingPolicy.parse,
  canary: canaryPolicy.parse,
  whenIdle: whenIdlePolicy.parse,
  window: windowPolicy.parse,
  after: afterPolicy.parse,
  zones: zonesPolicy.parse,
  groups: groupsPolicy.parse,
  ring: ringPolicy.parse,
};

/** A valid descriptor `schedule` field for each built-in, quoted in error messages and docs. */
export const scheduleExamples: Readonly<Record<BuiltInScheduleName, ScheduleDescriptor>> = {
  immediate: { name: 'immediate' },
  rolling: { name: 'rolling', params: { batch: 1 } },
  canary: { name: 'canary', params: { canaries: 1, healthyForMs: 30_000, batch: 2 } },
  whenIdle: { name: 'whenIdle', params: { maxCallsPerSecond: 5, forMs: 10_000 } },
  window: { name: 'window', params: { start: '22:00', end: '02:00', timeZone: '+01:00' } },
  after: { name: 'after', params: { service: 'billing', type: 'invoice', version: 3 } },
  zones: { name: 'zones', params: { order: ['a', 'b', 'c'] } },
  groups: { name: 'groups', params: { label: 'group' } },
  ring: { name: 'ring', params: { label: 'ring' } },
};

const builtInNames = Object.keys(builtInSchedules) as BuiltInScheduleName[];

/** True if `name` is the name of a built-in schedule. */
export function isBuiltInSchedule(name: string): name is BuiltInScheduleName {
  return (builtInNames as string[]).includes(name);
}

/** The problems with a built-in's params (empty when valid). */
export function validateScheduleParams(name: BuiltInScheduleName, params: unknown): string[] {
  const result = parsers[name](params);
  return result.ok ? [] : result.problems;
}

/** Options of {@link resolveSchedule}. */
export interface ResolveScheduleOptions {
  /**
   * Custom SFs by name: the `schedules` export of the upgrade bundle
   * (`export const schedules = { myName: defineSchedule(machine) }`).
   */
  custom?: unknown;
}

/**
 * The machine to run for a descriptor's `schedule` field, after checking its
 * params (built-ins) or its shape (custom SFs).
 *
 * @throws MoltError `InvalidDefinition` naming the wrong parameter and what is
 *   expected, an unknown schedule name, or a custom export that is not an SF.
 */
export function resolveSchedule(name: string, params?: unknown, options: ResolveScheduleOptions = {}): ScheduleMachine {
  const custom = customSchedules(options.custom);
  if (isBuiltInSchedule(name)) {
    if (custom && Object.hasOwn(custom, name)) {
      throw new MoltError(
        ErrorCode.InvalidDefinition,
        `the bundle exports a custom schedule named "${name}", which is the name of a built-in; rename it (e.g. "my${name[0]!.toUpperCase()}${name.slice(1)}")`,
        { data: { schedule: name } },
      );
    }
    const problems = validateScheduleParams(name, params);
    if (problems.length > 0) {
      const example = JSON.stringify(scheduleExamples[name]);
      throw new MoltError(ErrorCode.InvalidDefinition, `schedule "${name}": ${problems.join('; ')}. Example: ${example}`, {
        data: { schedule: name, problems },
      });
    }
    return builtInSchedules[name];
  }
  const found = custom && Object.hasOwn(custom, name) ? custom[name] : undefined;
  if (found === undefined) {
    const guess = builtInNames.find((b) => b.toLowerCase() === name.toLowerCase() || b.startsWith(name) || name.startsWith(b));
    throw new MoltError(
      ErrorCode.InvalidDefinition,
      `unknown schedule "${name}"${guess ? ` (did you mean "${guess}"?)` : ''}: the built-ins are ${builtInNames.join(', ')}; ` +
        `a custom schedule must be exported by the upgrade bundle as \`export const schedules = { ${JSON.stringify(name)}: defineSchedule(machine) }\`` +
        (custom ? ` (the bundle exports ${Object.keys(custom).map((k) => `"${k}"`).join(', ') || 'none'})` : ''),
      { data: { schedule: name } },
    );
  }
  if (!isScheduleMachine(found)) {
    throw new MoltError(
      ErrorCode.InvalidDefinition,
      `the bundle's schedules.${name} is not an xstate machine; export \`defineSchedule(setup({ ... }).createMachine({ ... }))\``,
      { data: { schedule: name } },
    );
  }
  return found;
}

function customSchedules(value: unknown): Record<string, unknown> | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'object' || Array.isArray(value)) {
    throw new MoltError(
      ErrorCode.InvalidDefinition,
      'the bundle\'s `schedules` export must be an object of named schedule machines, e.g. `export const schedules = { nightly: defineSchedule(machine) }`',
    );
  }
  return value as Record<string, unknown>;
}

/** True if `value` looks like an xstate v5 machine (what the manager can run as an SF). */
export function isScheduleMachine(value: unknown): value is ScheduleMachine {
  if (typeof value !== 'object' || value === null) return false;
  const m = value as Record<string, unknown>;
  return (
    typeof m.transition === 'function' &&
    typeof m.getInitialSnapshot === 'function' &&
    typeof m.getPersistedSnapshot === 'function' &&
    typeof m.root === 'object' &&
    m.root !== null
  );
}

/**
 * Declares a custom SF: an xstate v5 machine that takes {@link ScheduleInput},
 * handles every {@link ScheduleEvent} (ignoring those it does not need) and
 * ends in a final state whose output is a {@link ScheduleDecision}. Checks the
 * types at compile time and the shape at run time; returns the machine as is.
 *
 * Rules a custom SF must follow (the manager relies on them):
 * - no I/O, no timers, no `Date.now()`: time is `input.now` and `tick.now`;
 * - decide nothing while paused (`input.paused`, `control: pause`) and end
 *   with `{ decision: 'abort' }` on `control: abort`;
 * - be deterministic: every node runs the same machine on nearly the same view.
 *
 * @throws MoltError `InvalidDefinition` if `machine` is not an xstate machine.
 * @example
 * ```ts
 * export const schedules = { oddNodesFirst: defineSchedule(setup({ types: { ... } }).createMachine({ ... })) };
 * ```
 * @see docs/scheduling.md, "Writing a custom SF"
 */
export function defineSchedule<TMachine extends ScheduleMachine>(machine: TMachine): TMachine {
  if (!isScheduleMachine(machine)) {
    throw new MoltError(ErrorCode.InvalidDefinition, 'defineSchedule expects an xstate v5 machine (setup({ ... }).createMachine({ ... }))');
  }
  return machine;
}

/** What an SF is doing, as `molt status` shows it. */
export type ScheduleStatus =
  | { state: 'waiting' | 'paused' | 'halted'; note: string | undefined }
  | { state: 'decided'; decision: 'upgrade' }
  | { state: 'decided'; decision: 'abort'; reason: string }
  | { state: 'error'; error: unknown };

/**
 * Reads any SF's snapshot (built-in or custom) into a {@link ScheduleStatus}:
 * the output when done, the tags ({@link ScheduleTag}) while running, and the
 * built-ins' note (`context.status.note`) when there is one.
 */
export function scheduleStatusOf(snapshot: {
  status: string;
  output?: unknown;
  error?: unknown;
  context?: unknown;
  hasTag(tag: string): boolean;
}): ScheduleStatus {
  if (snapshot.status === 'error') return { state: 'error', error: snapshot.error };
  if (snapshot.status === 'done') {
    const out = snapshot.output as { decision?: unknown; reason?: unknown } | undefined;
    if (out?.decision === 'upgrade') return { state: 'decided', decision: 'upgrade' };
    const reason = typeof out?.reason === 'string' ? out.reason : `the schedule ended with an unexpected output: ${JSON.stringify(out)}`;
    return { state: 'decided', decision: 'abort', reason };
  }
  const ctx = snapshot.context as { status?: { note?: unknown } } | undefined;
  const note = typeof ctx?.status?.note === 'string' ? ctx.status.note : undefined;
  if (snapshot.hasTag(ScheduleTag.halted)) return { state: 'halted', note };
  if (snapshot.hasTag(ScheduleTag.paused)) return { state: 'paused', note };
  return { state: 'waiting', note };
}
