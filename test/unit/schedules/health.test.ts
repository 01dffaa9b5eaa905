import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { rolling, immediate, window } from '../../../actors/schedules/index.ts';
import { Sf, input, node } from './support.ts';

const stats = (calls: number, failed = 0, disallowed = 0, transformFailures = 0) => ({ calls, failed, disallowed, transformFailures });

test('health gate - halts on a transform failure reported by an upgraded node', () => {
  const sf = new Sf(rolling, input({ batch: 1, health: { maxTransformFailures: 0 } }, { nodeId: 'c' }));
  sf.nodes(node('a', 1, { status: 'upgrading', stats: stats(0) }), node('b'), node('c'));
  sf.nodes(node('a', 2, { stats: stats(0, 0, 0, 1) }), node('b', 2), node('c'));
  assert.is(sf.decision, undefined, 'never decides on a view with failures');
  assert.is(sf.state, 'halted');
  assert.ok(sf.snapshot.hasTag('halted'));
  const halted = sf.emitted.find((e) => e.type === 'schedule.halted');
  assert.ok(halted && halted.type === 'schedule.halted');
  assert.match(halted.reason, /health gate: 1 transform failure\(s\) reported \(a: 1\); at most 0 allowed/);
  assert.ok(sf.emitted.some((e) => e.type === 'schedule.status' && e.state === 'halted'));
});

test('health gate - counters are relative to what the SF first saw', () => {
  const sf = new Sf(immediate, input({ health: true }, { nodeId: 'b', paused: true }));
  // a already had 3 transform failures before this rollout started on b: not counted.
  sf.nodes(node('a', 2, { stats: stats(100, 0, 0, 3) }), node('b'));
  sf.control('resume');
  assert.equal(sf.decision, { decision: 'upgrade' });
});

test('health gate - a counter that goes down is a restart, not a negative rise', () => {
  const sf = new Sf(rolling, input({ batch: 1, health: { maxTransformFailures: 1 } }, { nodeId: 'z', paused: true }));
  sf.nodes(node('a', 2, { stats: stats(0, 0, 0, 5) }), node('z'));
  sf.nodes(node('a', 2, { stats: stats(0, 0, 0, 1) }), node('z')); // restarted: 1 new failure
  sf.control('resume');
  assert.equal(sf.decision, { decision: 'upgrade' }, '1 ≤ 1 allowed');
  const sf2 = new Sf(rolling, input({ batch: 1, health: { maxTransformFailures: 1 } }, { nodeId: 'z', paused: true }));
  sf2.nodes(node('a', 2, { stats: stats(0, 0, 0, 5) }), node('z'));
  sf2.nodes(node('a', 2, { stats: stats(0, 0, 0, 1) }), node('z'));
  sf2.nodes(node('a', 2, { stats: stats(0, 0, 0, 2) }), node('z'));
  sf2.control('resume');
  assert.is(sf2.state, 'halted', '2 > 1');
});

test('health gate - a rise in the failed-call rate on upgraded nodes halts, once there are enough calls', () => {
  const params = { batch: 1, health: { maxFailedRate: 0.05, minCalls: 50 } };
  const sf = new Sf(rolling, input(params, { nodeId: 'c' }));
  sf.nodes(node('a', 2, { stats: stats(1000, 10) }), node('b', 1, { status: 'upgrading' }), node('c'));
  sf.nodes(node('a', 2, { stats: stats(1010, 15) }), node('b', 1, { status: 'upgrading' }), node('c'));
  assert.is(sf.state, 'running', '5 of 10 calls failed, but 10 < minCalls');
  sf.nodes(node('a', 2, { stats: stats(1060, 20) }), node('b', 1, { status: 'upgrading' }), node('c'));
  assert.is(sf.state, 'halted', '10 of 60 calls failed: 16.7% > 5%');
  assert.match(sf.note ?? '', /failed-call rate 16\.7% on upgraded nodes \(10 of 60 calls\) is over the limit 5\.0%/);
});

test('health gate - calls on nodes still at the old version do not count toward the rate', () => {
  const sf = new Sf(rolling, input({ batch: 5, health: { maxFailedRate: 0.01, minCalls: 1 } }, { nodeId: 'c' }));
  sf.nodes(node('a', 1, { stats: stats(0) }), node('b', 1, { status: 'upgrading' }), node('c'));
  sf.nodes(node('a', 1, { stats: stats(100, 50) }), node('b', 1, { status: 'upgrading' }), node('c'));
  assert.is(sf.decision?.decision, 'upgrade');
});

test('health gate - disallowed rate', () => {
  const sf = new Sf(window, input({ start: '00:00', end: '00:01', health: { maxDisallowedRate: 0.1, minCalls: 10 } }, { nodeId: 'b' }));
  sf.nodes(node('a', 2, { stats: stats(0) }), node('b'));
  sf.nodes(node('a', 2, { stats: stats(100, 0, 20) }), node('b'));
  assert.is(sf.state, 'halted');
  assert.match(sf.note ?? '', /disallowed-call rate 20\.0%/);
});

test('health gate - a failed node halts', () => {
  const sf = new Sf(rolling, input({ batch: 3, health: true }, { nodeId: 'b' }));
  sf.nodes(node('a', 1, { status: 'failed' }), node('b'));
  assert.is(sf.state, 'halted');
  assert.match(sf.note ?? '', /1 node\(s\) failed to upgrade \(a\)/);
});

test('health gate - resume after a halt accepts the errors so far and continues', () => {
  const sf = new Sf(rolling, input({ batch: 1, health: true }, { nodeId: 'b' }));
  sf.nodes(node('a', 1, { status: 'upgrading', stats: stats(0) }), node('b'));
  sf.nodes(node('a', 2, { stats: stats(0, 0, 0, 2) }), node('b'));
  assert.is(sf.state, 'halted');
  sf.advance(1_000).nodes(node('a', 2, { stats: stats(0, 0, 0, 2) }), node('b'));
  assert.is(sf.decision, undefined, 'halted holds');
  sf.control('resume');
  assert.equal(sf.decision, { decision: 'upgrade' });
});

test('health gate - after resume, new failures halt again', () => {
  const sf = new Sf(rolling, input({ batch: 1, health: true }, { nodeId: 'c' }));
  sf.nodes(node('a', 2, { stats: stats(0) }), node('b', 1, { status: 'upgrading' }), node('c'));
  sf.nodes(node('a', 2, { stats: stats(0, 0, 0, 1) }), node('b', 1, { status: 'upgrading' }), node('c'));
  sf.control('resume');
  assert.is(sf.state, 'running');
  sf.nodes(node('a', 2, { stats: stats(0, 0, 0, 2) }), node('b', 1, { status: 'upgrading' }), node('c'));
  assert.is(sf.state, 'halted');
});

test('health gate - onFailure abort ends with decision abort and the reason', () => {
  const sf = new Sf(immediate, input({ health: { onFailure: 'abort' } }, { nodeId: 'b' }));
  sf.nodes(node('a', 2, { stats: stats(0) }), node('b', 1, { status: 'failed' }));
  const d = sf.decision;
  assert.is(d?.decision, 'abort');
  assert.match(d?.decision === 'abort' ? d.reason : '', /^health gate: 1 node\(s\) failed to upgrade \(b\)/);
});

test('health gate - bad thresholds are rejected', () => {
  const sf = new Sf(rolling, input({ health: { maxFailedRate: 5, onFailure: 'explode', maxTransformFailure: 0 } }));
  const reason = sf.decision?.decision === 'abort' ? sf.decision.reason : '';
  assert.match(reason, /"health.maxFailedRate" must be a number ≥ 0 and ≤ 1/);
  assert.match(reason, /"health.onFailure" must be "halt" or "abort"/);
  assert.match(reason, /unknown parameter "health.maxTransformFailure" \(did you mean "maxTransformFailures"\?\); "health" takes/);
});

test.run();
