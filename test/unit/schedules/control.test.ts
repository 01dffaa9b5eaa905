/**
 * Operator control, the same for every built-in: pause holds (no decision while
 * paused), resume continues, abort ends with decision abort.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createActor } from 'xstate';
import { builtInSchedules, scheduleStatusOf, type BuiltInScheduleName } from '../../../actors/schedules/index.ts';
import { createSuperjsonCodec } from '../../../runtime/index.ts';
import { Sf, input, node, T0 } from './support.ts';

/** For each built-in: params, and the events that satisfy its condition. */
const cases: Record<BuiltInScheduleName, { params: Record<string, unknown>; satisfy: (sf: Sf) => void }> = {
  immediate: { params: {}, satisfy: () => {} },
  rolling: { params: { batch: 1 }, satisfy: (sf) => sf.nodes(node('n1'), node('n2')) },
  canary: { params: { canaries: 1 }, satisfy: (sf) => sf.nodes(node('n1'), node('n2')) },
  whenIdle: { params: { forMs: 5_000 }, satisfy: (sf) => sf.load(0).advance(5_000) },
  window: { params: { start: '13:00', end: '14:00' }, satisfy: (sf) => sf.advance(60 * 60_000) }, // T0 is 12:00 UTC
  after: { params: { service: 'billing', type: 'invoice', version: 2 }, satisfy: (sf) => sf.versions('billing', 'invoice', 2, 1) },
  zones: { params: {}, satisfy: (sf) => sf.nodes(node('n1', 1, { labels: { zone: 'a' } }), node('n2', 1, { labels: { zone: 'b' } })) },
  groups: { params: {}, satisfy: (sf) => sf.nodes(node('n1', 1, { labels: { group: 'g1' } }), node('n2', 1, { labels: { group: 'g1' } })) },
  ring: { params: {}, satisfy: (sf) => sf.nodes(node('n1'), node('n2'), node('n3'), node('n4')) },
};
const names = Object.keys(cases) as BuiltInScheduleName[];

for (const name of names) {
  const { params, satisfy } = cases[name];

  test(`${name} - pause holds and resume completes`, () => {
    const sf = new Sf(builtInSchedules[name], input(params, { paused: true }));
    assert.is(sf.state, 'paused');
    satisfy(sf);
    sf.advanceBy(10_000);
    assert.is(sf.decision, undefined, 'no decision while paused');
    assert.equal(scheduleStatusOf(sf.snapshot), { state: 'paused', note: 'paused by the operator' });
    sf.control('resume');
    assert.equal(sf.decision, { decision: 'upgrade' });
    assert.equal(scheduleStatusOf(sf.snapshot), { state: 'decided', decision: 'upgrade' });
  });

  test(`${name} - abort decides abort, with the operator's reason`, () => {
    const sf = new Sf(builtInSchedules[name], input(params, { paused: true }));
    sf.control('abort', 'bad release');
    assert.equal(sf.decision, { decision: 'abort', reason: 'aborted by the operator: bad release' });
    satisfy(sf);
    sf.control('resume');
    assert.equal(sf.decision, { decision: 'abort', reason: 'aborted by the operator: bad release' }, 'final');
    assert.equal(sf.errors, []);
  });
}

test('control - pause while waiting holds even once the condition is met', () => {
  const sf = new Sf(builtInSchedules.after, input(cases.after.params));
  assert.is(sf.state, 'running');
  sf.control('pause');
  sf.versions('billing', 'invoice', 2, 1);
  assert.is(sf.decision, undefined);
  sf.control('pause'); // twice is harmless
  sf.control('resume');
  assert.equal(sf.decision, { decision: 'upgrade' });
});

test('control - abort while waiting, without a reason', () => {
  const sf = new Sf(builtInSchedules.rolling, input({ batch: 1 }, { nodeId: 'b' }));
  sf.nodes(node('a'), node('b'));
  sf.control('abort');
  assert.equal(sf.decision, { decision: 'abort', reason: 'aborted by the operator' });
});

test('control - abort while halted', () => {
  const sf = new Sf(builtInSchedules.immediate, input({ health: true }, { nodes: [node('a', 1, { status: 'failed' }), node('n1')] }));
  assert.is(sf.state, 'halted');
  sf.control('pause');
  assert.is(sf.state, 'halted', 'pause does not lift a halt');
  sf.control('abort');
  assert.is(sf.decision?.decision, 'abort');
});

test('control - resume without pause changes nothing', () => {
  const sf = new Sf(builtInSchedules.whenIdle, input({}));
  sf.control('resume');
  assert.is(sf.state, 'running');
});

test('status - emits schedule.status only when the note changes', () => {
  const sf = new Sf(builtInSchedules.whenIdle, input({ forMs: 10_000 }));
  sf.advance(1_000).advance(1_000);
  sf.load(0).advance(1_000).advance(1_000);
  const notes = sf.emitted.filter((e) => e.type === 'schedule.status').map((e) => (e.type === 'schedule.status' ? e.note : ''));
  assert.equal(notes, ['waiting for a load report', 'idle for 0s of 10s', 'idle for 1s of 10s', 'idle for 2s of 10s']);
});

test('persistence - a waiting SF survives a round trip through the production codec', () => {
  const codec = createSuperjsonCodec();
  const machine = builtInSchedules.canary;
  const first = new Sf(machine, input({ canaries: 1, waitMs: 30_000 }, { nodeId: 'b' }));
  first.nodes(node('a', 2, { stats: { calls: 1 } }), node('b'));
  first.advance(10_000);
  const bytes = codec.encode(first.actor.getPersistedSnapshot());
  first.actor.stop();
  const restored = createActor(machine, { snapshot: codec.decode(bytes) as never, input: input() });
  const errors: unknown[] = [];
  restored.subscribe({ error: (e) => errors.push(e) });
  restored.start();
  assert.is(restored.getSnapshot().status, 'active');
  restored.send({ type: 'tick', now: T0 + 29_000 });
  assert.is(restored.getSnapshot().status, 'active');
  restored.send({ type: 'tick', now: T0 + 30_000 });
  assert.equal(restored.getSnapshot().output, { decision: 'upgrade' });
  assert.equal(errors, []);
});

test.run();
