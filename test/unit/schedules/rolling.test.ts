import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { rolling } from '../../../actors/schedules/index.ts';
import { batchSize } from '../../../actors/schedules/rolling.ts';
import { resolveSchedule } from '../../../actors/schedules/index.ts';
import { Cluster, Sf, input, node } from './support.ts';

test('rolling - 5 nodes, batch 2: never more than 2 upgrading, in sorted order, batch by batch', () => {
  // Ids deliberately not created in sorted order.
  const c = new Cluster(rolling, ['n4', 'n2', 'n5', 'n1', 'n3'], { batch: 2 });
  const waves: string[][] = [];
  for (let round = 0; round < 10; round++) {
    for (const id of c.truth.keys()) c.deliver(id);
    const wave = c.upgrading();
    if (wave.length === 0) break;
    waves.push(wave.sort());
    for (const id of wave) c.finish(id);
  }
  assert.equal(waves, [['n1', 'n2'], ['n3', 'n4'], ['n5']]);
  assert.equal(waves.flat(), ['n1', 'n2', 'n3', 'n4', 'n5']);
  assert.is(c.maxUpgrading, 2);
});

test('rolling - a node waits while an earlier batch is still upgrading, even if one of it finished', () => {
  const c = new Cluster(rolling, ['a', 'b', 'c', 'd'], { batch: 2 });
  for (const id of ['a', 'b', 'c', 'd']) c.deliver(id);
  assert.equal(c.upgrading().sort(), ['a', 'b']);
  c.finish('a');
  for (const id of ['c', 'd']) c.deliver(id);
  assert.equal(c.upgrading(), ['b'], 'c waits for b: batches go one after another');
  assert.match(c.sfs.get('c')!.note ?? '', /batch 1 waits for b \(v1, upgrading\)/);
  c.finish('b');
  for (const id of ['c', 'd']) c.deliver(id);
  assert.equal(c.upgrading().sort(), ['c', 'd']);
});

test('rolling - dead nodes do not block later batches', () => {
  const c = new Cluster(rolling, ['a', 'b', 'c'], { batch: 1 });
  c.kill('a');
  c.settle();
  assert.equal(c.started, ['b', 'c']);
  assert.is(c.versionOf('a'), 1);
  assert.is(c.versionOf('c'), 2);
});

test('rolling - a stopped node does not block either', () => {
  const sf = new Sf(rolling, input({ batch: 1 }, { nodeId: 'b' }));
  sf.nodes(node('a', 1, { status: 'stopped' }), node('b'));
  assert.equal(sf.decision, { decision: 'upgrade' });
});

test('rolling - a node whose upgrade failed holds later batches', () => {
  const c = new Cluster(rolling, ['a', 'b', 'c'], { batch: 1 });
  c.deliver('a');
  c.fail('a');
  c.settle();
  assert.equal(c.started, ['a']);
  assert.match(c.sfs.get('b')!.note ?? '', /a \(v1, failed\)/);
});

test('rolling - fewer than k upgrading: a returning earlier node waits while k are upgrading', () => {
  // b and c upgraded while a was dead; a comes back with a fresh SF while c and d upgrade.
  const sf = new Sf(rolling, input({ batch: 2 }, { nodeId: 'a' }));
  sf.nodes(node('a'), node('b', 2), node('c', 1, { status: 'upgrading' }), node('d', 1, { status: 'upgrading' }), node('e'));
  assert.is(sf.decision, undefined);
  assert.match(sf.note ?? '', /2 node\(s\) upgrading \(c, d\), at most 2 at once/);
  sf.nodes(node('a'), node('b', 2), node('c', 2), node('d', 1, { status: 'upgrading' }), node('e'));
  assert.equal(sf.decision, { decision: 'upgrade' });
});

test('rolling - this node missing from the node list is placed by its own id', () => {
  const sf = new Sf(rolling, input({ batch: 1 }, { nodeId: 'a' }));
  sf.nodes(node('b'), node('c'));
  assert.equal(sf.decision, { decision: 'upgrade' }, 'a sorts first');
});

test('rolling - waits for the node list before deciding', () => {
  const sf = new Sf(rolling, input({ batch: 1 }));
  sf.advance(10_000);
  assert.is(sf.decision, undefined);
  assert.is(sf.note, 'waiting for the node list');
  sf.nodes(node('n1'));
  assert.equal(sf.decision, { decision: 'upgrade' });
});

test('rolling - input.nodes lets it decide at start', () => {
  const sf = new Sf(rolling, input({ batch: 1 }, { nodes: [node('n1'), node('n2')] }));
  assert.equal(sf.decision, { decision: 'upgrade' });
});

test('rolling - percent: k is a share of the recorded nodes, at least 1', () => {
  assert.is(batchSize({ batch: undefined, percent: 25 }, 10), 2);
  assert.is(batchSize({ batch: undefined, percent: 25 }, 3), 1);
  assert.is(batchSize({ batch: undefined, percent: 100 }, 7), 7);
  const c = new Cluster(rolling, ['a', 'b', 'c', 'd', 'e', 'f', 'g', 'h'], { percent: 25 });
  c.settle();
  assert.is(c.maxUpgrading, 2);
  assert.equal(c.started, ['a', 'b', 'c', 'd', 'e', 'f', 'g', 'h']);
});

test('rolling - no params means one at a time', () => {
  const c = new Cluster(rolling, ['x', 'y', 'z'], {});
  c.settle();
  assert.is(c.maxUpgrading, 1);
  assert.equal(c.started, ['x', 'y', 'z']);
});

test('rolling - invalid params abort with the reason', () => {
  const sf = new Sf(rolling, input({ batch: 2, percent: 10 }));
  const d = sf.decision;
  assert.ok(d && d.decision === 'abort');
  assert.match(d.decision === 'abort' ? d.reason : '', /either "batch".*or "percent"/);
});

test('rolling - pauseMs: the next batch waits that long after the earlier ones are done (issue 13)', () => {
  const c = new Cluster(rolling, ['a', 'b', 'c'], { batch: 1, pauseMs: 30_000 });
  c.settle();
  assert.equal(c.started, ['a'], 'batch 0 goes at once, then the pause');
  assert.match(c.sfs.get('b')!.note ?? '', /batch 1: pausing between batches, 0s of 30s/);
  c.tick(10_000);
  c.settle();
  assert.equal(c.started, ['a']);
  c.tick(10_000);
  c.tick(10_000);
  c.settle();
  assert.equal(c.started, ['a', 'b'], 'after 30 s the next batch');
  c.tick(10_000);
  c.settle();
  assert.equal(c.started, ['a', 'b'], 'and the pause again before the one after');
  c.tick(10_000);
  c.tick(10_000);
  c.settle();
  assert.equal(c.started, ['a', 'b', 'c']);
});

test('rolling - pauseMs counts only while running: a paused rollout does not use up the pause', () => {
  const sf = new Sf(rolling, input({ batch: 1, pauseMs: 20_000 }, { nodeId: 'b' }));
  sf.nodes(node('a', 2), node('b'));
  sf.advanceBy(5_000);
  sf.control('pause');
  sf.advanceBy(60_000);
  sf.control('resume');
  sf.advanceBy(10_000);
  assert.is(sf.decision, undefined);
  sf.advanceBy(10_000);
  assert.equal(sf.decision, { decision: 'upgrade' });
});

test('rolling - maxUnavailable caps nodes upgrading at once within a large batch (nodes or percent)', () => {
  for (const maxUnavailable of [1, '25%']) {
    const c = new Cluster(rolling, ['a', 'b', 'c', 'd'], { percent: 100, maxUnavailable });
    for (const id of ['a', 'b', 'c', 'd']) c.deliver(id);
    assert.equal(c.upgrading(), ['a'], `${maxUnavailable}: one at a time`);
    assert.match(c.sfs.get('b')!.note ?? '', /1 node\(s\) unavailable \(a \(v1, upgrading\)\), maxUnavailable 1/);
    c.settle();
    assert.equal(c.started, ['a', 'b', 'c', 'd']);
    assert.is(c.maxUpgrading, 1);
  }
});

test('rolling - bad pauseMs and maxUnavailable are refused with what is expected', () => {
  assert.throws(() => resolveSchedule('rolling', { pauseMs: -1 }), /"pauseMs" must be an integer ≥ 0 \(milliseconds between batches\)/);
  assert.throws(() => resolveSchedule('rolling', { maxUnavailable: '0%' }), /"maxUnavailable" must be a number of nodes \(an integer ≥ 1\) or a share of them \("25%"\)/);
  assert.throws(() => resolveSchedule('rolling', { maxUnavailable: 0 }), /"maxUnavailable" must be/);
  resolveSchedule('rolling', { percent: 50, maxUnavailable: '10%', pauseMs: 60_000 });
});

test.run();
