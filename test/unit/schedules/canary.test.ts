import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { canary } from '../../../actors/schedules/index.ts';
import { Cluster, Sf, input, node } from './support.ts';

const others = (v = 1) => [node('a', v), node('b'), node('c'), node('d')];

test('canary - the first node in the stable order upgrades at once', () => {
  const sf = new Sf(canary, input({ canaries: 1, waitMs: 60_000 }, { nodeId: 'a' }));
  sf.nodes(node('c'), node('a'), node('b'));
  assert.equal(sf.decision, { decision: 'upgrade' });
});

test('canary - the rest wait for the canary to reach the target, then for waitMs', () => {
  const sf = new Sf(canary, input({ canaries: 1, waitMs: 60_000 }, { nodeId: 'c' }));
  sf.nodes(...others());
  sf.advanceBy(120_000);
  assert.is(sf.decision, undefined, 'canary has not upgraded yet');
  assert.match(sf.note ?? '', /waiting for canary a \(v1, running\) to reach v2/);
  sf.nodes(...others(2));
  sf.advanceBy(59_000);
  assert.is(sf.decision, undefined, 'soaking');
  assert.match(sf.note ?? '', /soaking/);
  sf.advanceBy(1_000);
  assert.equal(sf.decision, { decision: 'upgrade' });
});

test('canary - healthyForMs: an unhealthy canary restarts the clock', () => {
  const sf = new Sf(canary, input({ canaries: 2, healthyForMs: 30_000 }, { nodeId: 'c' }));
  sf.nodes(node('a', 2), node('b', 2), node('c'), node('d'));
  sf.advanceBy(20_000);
  assert.is(sf.decision, undefined);
  assert.match(sf.note ?? '', /healthy for 20s of 30s/);
  // b stops heartbeating (crashed on the new version?): unhealthy, clock resets.
  sf.nodes(node('a', 2), node('b', 2, { live: false }), node('c'), node('d'));
  sf.advanceBy(60_000);
  assert.is(sf.decision, undefined);
  assert.match(sf.note ?? '', /canaries unhealthy: canary b/);
  sf.nodes(node('a', 2), node('b', 2), node('c'), node('d'));
  sf.advanceBy(29_000);
  assert.is(sf.decision, undefined);
  sf.advanceBy(1_000);
  assert.equal(sf.decision, { decision: 'upgrade' });
});

test('canary - a canary transform failure holds the rest (no health gate: wait, not halt)', () => {
  const sf = new Sf(canary, input({ canaries: 1, healthyForMs: 10_000 }, { nodeId: 'b' }));
  sf.nodes(node('a', 2, { stats: { transformFailures: 0 } }), node('b'));
  sf.nodes(node('a', 2, { stats: { transformFailures: 1 } }), node('b'));
  sf.advanceBy(120_000);
  assert.is(sf.decision, undefined);
  assert.is(sf.state, 'running');
  assert.match(sf.note ?? '', /1 transform failure/);
});

test('canary - with a health gate, a canary transform failure halts the rollout', () => {
  const sf = new Sf(canary, input({ canaries: 1, healthyForMs: 10_000, health: { maxTransformFailures: 0 } }, { nodeId: 'b' }));
  sf.nodes(node('a', 2, { stats: { transformFailures: 0 } }), node('b'));
  sf.nodes(node('a', 2, { stats: { transformFailures: 1 } }), node('b'));
  assert.is(sf.state, 'halted');
  assert.ok(sf.emitted.some((e) => e.type === 'schedule.halted' && /transform failure/.test(e.reason)));
});

test('canary - both waitMs and healthyForMs must hold', () => {
  const sf = new Sf(canary, input({ waitMs: 60_000, healthyForMs: 10_000 }, { nodeId: 'b' }));
  sf.nodes(node('a', 2), node('b'));
  sf.advanceBy(30_000);
  assert.is(sf.decision, undefined);
  sf.advanceBy(30_000);
  assert.equal(sf.decision, { decision: 'upgrade' });
});

test('canary - a dead designated canary is replaced by the next node', () => {
  const sf = new Sf(canary, input({ canaries: 1 }, { nodeId: 'b' }));
  sf.nodes(node('a', 1, { live: false }), node('b'), node('c'));
  assert.equal(sf.decision, { decision: 'upgrade' }, 'b is the canary now');
});

test('canary - the rest go by batch after the soak, never more than the batch at once', () => {
  const c = new Cluster(canary, ['a', 'b', 'c', 'd', 'e', 'f'], { canaries: 1, waitMs: 10_000, batch: 2 });
  c.settle();
  assert.equal(c.started, ['a'], 'only the canary before the soak');
  c.tick(10_000);
  c.settle();
  assert.equal(c.started, ['a', 'b', 'c', 'd', 'e', 'f']);
  assert.is(c.maxUpgrading, 2);
});

test('canary - the rest go all at once without a batch', () => {
  const c = new Cluster(canary, ['a', 'b', 'c', 'd'], { canaries: 1, waitMs: 1_000 });
  c.settle();
  c.tick(1_000);
  for (const id of ['b', 'c', 'd']) c.deliver(id);
  assert.equal(c.upgrading().sort(), ['b', 'c', 'd']);
});

test('canary - default soak is 60s', () => {
  const sf = new Sf(canary, input({}, { nodeId: 'b' }));
  sf.nodes(node('a', 2), node('b'));
  sf.advanceBy(59_000);
  assert.is(sf.decision, undefined);
  sf.advanceBy(1_000);
  assert.equal(sf.decision, { decision: 'upgrade' });
});

test('canary - soak counts only while the rollout runs: time paused or halted does not count (issue 13)', () => {
  const sf = new Sf(canary, input({ canaries: 1, waitMs: 30_000 }, { nodeId: 'b' }));
  sf.nodes(node('a', 2), node('b'));
  sf.advanceBy(10_000);
  // The canary's transform failed: a node paused the rollout; a fix and a resume follow much later.
  sf.actor.send({ type: 'control', command: 'pause', by: 'node a', reason: '1 transform failure(s)' });
  assert.match(sf.note ?? '', /^paused by node a: 1 transform failure\(s\)$/);
  sf.advanceBy(300_000);
  sf.control('resume');
  sf.advanceBy(15_000);
  assert.is(sf.decision, undefined, 'the soak did not run out while paused');
  assert.match(sf.note ?? '', /soaking: canaries have run v2 for 2\ds of 30s/);
  sf.advanceBy(10_000);
  assert.equal(sf.decision, { decision: 'upgrade' }, 'and completes once 30 s ran');
});

test('canary - healthy time counts only while running too', () => {
  const sf = new Sf(canary, input({ canaries: 1, healthyForMs: 20_000 }, { nodeId: 'b' }));
  sf.nodes(node('a', 2), node('b'));
  sf.advanceBy(5_000);
  sf.control('pause');
  sf.advanceBy(60_000);
  sf.control('resume');
  sf.advanceBy(10_000);
  assert.is(sf.decision, undefined);
  assert.match(sf.note ?? '', /canaries healthy for 1\ds of 20s/);
  sf.advanceBy(10_000);
  assert.equal(sf.decision, { decision: 'upgrade' });
});

test.run();
