import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { setup } from 'xstate';
import {
  builtInSchedules,
  defineSchedule,
  isScheduleMachine,
  resolveSchedule,
  scheduleExamples,
  validateScheduleParams,
  type BuiltInScheduleName,
  type ScheduleDecision,
  type ScheduleEvent,
  type ScheduleInput,
} from '../../../actors/schedules/index.ts';
import * as molt from '../../../runtime/index.ts';
import { isMoltError, type MoltError } from '../../../runtime/index.ts';
import { businessHours } from './examples/businessHours.ts';
import { nightlyRolling } from './examples/nightlyRolling.ts';
import { scheduledAt } from './examples/scheduledAt.ts';
import { Cluster, Sf, T0, input } from './support.ts';

function refusal(fn: () => unknown): MoltError {
  try {
    fn();
  } catch (e) {
    assert.ok(isMoltError(e, 'InvalidDefinition'), `expected InvalidDefinition, got ${String(e)}`);
    return e;
  }
  assert.unreachable('expected a refusal');
  throw new Error('unreachable');
}

test('resolveSchedule - every documented example is valid and resolves to its machine', () => {
  for (const [name, example] of Object.entries(scheduleExamples)) {
    assert.is(resolveSchedule(example.name, example.params), builtInSchedules[name as BuiltInScheduleName]);
  }
  assert.is(resolveSchedule('rolling', undefined), builtInSchedules.rolling);
});

test('resolveSchedule - a wrong parameter is named, with what is expected and an example', () => {
  const e = refusal(() => resolveSchedule('rolling', { batch: 0 }));
  assert.match(e.message, /schedule "rolling": parameter "batch" must be an integer ≥ 1 \(nodes upgrading at once\), got 0/);
  assert.match(e.message, /Example: \{"name":"rolling","params":\{"batch":1\}\}/);
  assert.equal(e.data.problems, ['parameter "batch" must be an integer ≥ 1 (nodes upgrading at once), got 0']);
});

test('resolveSchedule - typos are caught, with a suggestion', () => {
  const e = refusal(() => resolveSchedule('canary', { canaris: 2 }));
  assert.match(e.message, /unknown parameter "canaris" \(did you mean "canaries"\?\); canary takes "canaries", "waitMs", "healthyForMs", "batch", "health"/);
});

test('resolveSchedule - every problem at once', () => {
  const problems = validateScheduleParams('window', { start: '9:00', timeZone: '+25:00' });
  assert.is(problems.length, 3, problems.join(' | '));
  assert.match(problems.join(' | '), /"start" must be a time "HH:MM"/);
  assert.match(problems.join(' | '), /"end" is required/);
  assert.match(problems.join(' | '), /"timeZone" must be "UTC"/);
});

test('resolveSchedule - each built-in checks its own params', () => {
  const cases: Array<[BuiltInScheduleName, unknown, RegExp]> = [
    ['rolling', { percent: 0 }, /"percent" must be a number > 0 and ≤ 100/],
    ['rolling', { percent: 150 }, /"percent" must be a number > 0 and ≤ 100/],
    ['rolling', { batch: 1.5 }, /"batch" must be an integer/],
    ['canary', { canaries: 0 }, /"canaries" must be an integer ≥ 1/],
    ['canary', { waitMs: -1 }, /"waitMs" must be an integer ≥ 0/],
    ['whenIdle', { maxCallsPerSecond: 0 }, /"maxCallsPerSecond" must be a number > 0/],
    ['whenIdle', { forMs: '10s' }, /"forMs" must be an integer ≥ 0 \(milliseconds\), got "10s"/],
    ['after', { service: 'billing' }, /"version" is required/],
    ['after', { version: 2 }, /give "type" .* and\/or "service"/],
    ['immediate', [1, 2], /params must be an object/],
    ['rolling', { health: 'yes' }, /"health" must be true or an object/],
  ];
  for (const [name, params, re] of cases) {
    assert.match(refusal(() => resolveSchedule(name, params)).message, re, `${name} ${JSON.stringify(params)}`);
  }
});

test('resolveSchedule - an unknown name lists the built-ins and says how to ship a custom SF', () => {
  const e = refusal(() => resolveSchedule('Rolling', {}));
  assert.match(e.message, /unknown schedule "Rolling" \(did you mean "rolling"\?\)/);
  assert.match(e.message, /built-ins are immediate, rolling, canary, whenIdle, window, after/);
  assert.match(e.message, /export const schedules = \{ "Rolling": defineSchedule\(machine\) \}/);
  const e2 = refusal(() => resolveSchedule('nightly', {}, { custom: { weekly: scheduledAt } }));
  assert.match(e2.message, /the bundle exports "weekly"/);
});

test('resolveSchedule - custom SFs come from the bundle\'s schedules export', () => {
  assert.is(resolveSchedule('scheduledAt', { at: '2026-01-01T00:00:00Z' }, { custom: { scheduledAt } }), scheduledAt);
  assert.match(refusal(() => resolveSchedule('x', {}, { custom: { x: { hello: 1 } } })).message, /schedules\.x is not an xstate machine/);
  assert.match(refusal(() => resolveSchedule('x', {}, { custom: 'nope' })).message, /must be an object of named schedule machines/);
  assert.match(refusal(() => resolveSchedule('rolling', {}, { custom: { rolling: scheduledAt } })).message, /name of a built-in; rename it \(e\.g\. "myRolling"\)/);
});

test('defineSchedule - refuses what is not a machine, at run time too', () => {
  assert.match(refusal(() => defineSchedule({} as never)).message, /expects an xstate v5 machine/);
  assert.not.ok(isScheduleMachine(() => 1));
  assert.ok(isScheduleMachine(builtInSchedules.window));
});

test('defineSchedule - types: the machine must take ScheduleInput, accept every ScheduleEvent and output a ScheduleDecision', () => {
  const ok = defineSchedule(
    setup({ types: { events: {} as ScheduleEvent, input: {} as ScheduleInput, output: {} as ScheduleDecision } }).createMachine({
      initial: 'go',
      states: { go: { type: 'final' } },
      output: () => ({ decision: 'upgrade' as const }),
    }),
  );
  assert.equal(new Sf(ok, input()).decision, { decision: 'upgrade' });
  defineSchedule(
    // @ts-expect-error the output must be a ScheduleDecision
    setup({ types: { events: {} as ScheduleEvent, input: {} as ScheduleInput, output: {} as { ok: boolean } } }).createMachine({ initial: 'a', states: { a: {} } }),
  );
  defineSchedule(
    // @ts-expect-error it must accept every ScheduleEvent, not just ticks
    setup({ types: { events: {} as { type: 'tick'; now: number }, input: {} as ScheduleInput, output: {} as ScheduleDecision } }).createMachine({ initial: 'a', states: { a: {} } }),
  );
});

test('custom SF example - scheduledAt waits for its time, holds while paused, aborts on bad params', () => {
  const at = new Date(T0 + 60_000).toISOString();
  const sf = new Sf(scheduledAt, input({ at }));
  sf.advanceBy(59_000);
  assert.is(sf.decision, undefined);
  assert.ok(sf.snapshot.hasTag('waiting'));
  sf.control('pause').advanceBy(10_000);
  assert.is(sf.decision, undefined);
  sf.control('resume');
  assert.equal(sf.decision, { decision: 'upgrade' });

  const paused = new Sf(scheduledAt, input({ at }, { paused: true })).advanceBy(120_000);
  assert.is(paused.decision, undefined);
  paused.control('abort');
  assert.equal(paused.decision, { decision: 'abort', reason: 'aborted by the operator' });

  const bad = new Sf(scheduledAt, input({ at: 'tomorrow-ish' }));
  assert.is(bad.decision?.decision, 'abort');
});

test('custom SF example - businessHours gets control and health gating from the shell', () => {
  // T0 is Thursday 2026-01-15 12:00 UTC.
  assert.equal(new Sf(businessHours, input({})).decision, { decision: 'upgrade' });
  const early = new Sf(businessHours, input({ fromHour: 13 }));
  assert.match(early.note ?? '', /weekday between 13:00 and 17:00/);
  early.advanceBy(60 * 60_000, 60_000);
  assert.equal(early.decision, { decision: 'upgrade' });
  const paused = new Sf(businessHours, input({}, { paused: true }));
  assert.is(paused.decision, undefined);
  const bad = new Sf(businessHours, input({ fromHour: 18 }));
  assert.match(bad.decision?.decision === 'abort' ? bad.decision.reason : '', /"fromHour" \(18\) must be before "toHour" \(17\)/);
});

test('custom SF example - nightlyRolling composes the window and the rolling gate', () => {
  // T0 is 12:00 UTC: outside the 22:00–04:00 night.
  const c = new Cluster(nightlyRolling, ['a', 'b', 'c'], { batch: 1 });
  c.settle();
  assert.equal(c.started, []);
  assert.match(c.sfs.get('a')!.note ?? '', /waiting for the night/);
  c.tick(10 * 60 * 60_000); // 22:00
  c.settle();
  assert.equal(c.started, ['a', 'b', 'c']);
  assert.is(c.maxUpgrading, 1);
});

test('public entry - the schedule API is exported from molt itself', () => {
  assert.is(molt.defineSchedule, defineSchedule);
  assert.is(molt.resolveSchedule, resolveSchedule);
  assert.is(molt.builtInSchedules, builtInSchedules);
  for (const name of ['fromSchedulePolicy', 'parseWith', 'ParamReader', 'scheduleStatusOf', 'validateScheduleParams', 'isBuiltInSchedule', 'scheduleExamples', 'isScheduleMachine', 'stableOrder', 'rollingGate', 'healthProblem', 'ScheduleTag']) {
    assert.ok((molt as Record<string, unknown>)[name] !== undefined, `molt exports ${name}`);
  }
});

test.run();
