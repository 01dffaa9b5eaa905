/**
 * The label-aware schedules on small, named fleets: what each waits for and
 * says, how nodes without the label are placed, and their parameter checks.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { groups, ring, validateScheduleParams, zones } from '../../../actors/schedules/index.ts';
import { ringOrder, ringPhase } from '../../../actors/schedules/ring.ts';
import { Cluster, Sf, input, node } from './support.ts';

const z = (id: string, zone?: string, version = 1, status: 'running' | 'upgrading' = 'running') => node(id, version, { status, ...(zone ? { labels: { zone } } : {}) });

test('zones - a node waits for every earlier zone, named in the note', () => {
  const sf = new Sf(zones, input({}, { nodeId: 'n3' }));
  sf.nodes(z('n1', 'a'), z('n2', 'a', 2), z('n3', 'b'), z('n4'));
  assert.is(sf.decision, undefined);
  assert.is(sf.note, 'zone b waits for n1 (v1, running) to reach v2');
  sf.nodes(z('n1', 'a', 2), z('n2', 'a', 2), z('n3', 'b'), z('n4'));
  assert.equal(sf.decision, { decision: 'upgrade' });
});

test('zones - order puts the listed zones first; nodes without the label go last', () => {
  const c = new Cluster(zones, ['n1', 'n2', 'n3', 'n4'], { order: ['b'] });
  const labels: Record<string, string | undefined> = { n1: 'a', n2: 'b', n3: undefined, n4: 'b' };
  for (const [id, zone] of Object.entries(labels)) if (zone) c.truth.set(id, { ...c.truth.get(id)!, labels: { zone } });
  c.settle();
  // The whole zone b at once, then a, then the unlabelled node.
  assert.equal(c.started, ['n2', 'n4', 'n1', 'n3']);
});

test('zones - batch limits a zone to k nodes at once', () => {
  const sf = new Sf(zones, input({ batch: 1 }, { nodeId: 'n2' }));
  sf.nodes(z('n1', 'a', 1, 'upgrading'), z('n2', 'a'));
  assert.is(sf.decision, undefined);
  assert.match(sf.note!, /^zone a: batch 1 waits for n1/);
});

test('groups - one node per group at a time; groups in parallel; an unlabelled node is its own group', () => {
  const c = new Cluster(groups, ['a1', 'a2', 'a3', 'b1', 'b2', 'solo'], {});
  for (const id of ['a1', 'a2', 'a3', 'b1', 'b2']) c.truth.set(id, { ...c.truth.get(id)!, labels: { group: id[0]! } });
  for (const id of c.truth.keys()) c.deliver(id);
  assert.equal(c.upgrading().sort(), ['a1', 'b1', 'solo']);
  const sf = c.sfs.get('a2')!;
  assert.is(sf.note, 'group a waits for a1 (v1, upgrading) to reach v2');
  c.settle();
  assert.is(c.maxUpgrading, 3);
  for (const id of c.truth.keys()) assert.is(c.versionOf(id), 2);
});

test('groups - a dead member does not hold its group', () => {
  const sf = new Sf(groups, input({}, { nodeId: 'g2' }));
  sf.nodes(node('g1', 1, { live: false, labels: { group: 'x' } }), node('g2', 1, { labels: { group: 'x' } }));
  assert.equal(sf.decision, { decision: 'upgrade' });
});

test('ring - order by position, then id; phases 0, 1 and, for an odd ring, the last alone', () => {
  const order = ringOrder([node('c', 1, { labels: { ring: '30' } }), node('a'), node('b', 1, { labels: { ring: '4' } }), node('d', 1, { labels: { ring: '4' } })], 'ring');
  assert.equal(order.map((n) => n.id), ['b', 'd', 'c', 'a']);
  assert.equal([0, 1, 2, 3, 4].map((i) => ringPhase(i, 5)), [0, 1, 0, 1, 2]);
  assert.equal([0, 1, 2, 3].map((i) => ringPhase(i, 4)), [0, 1, 0, 1]);
  assert.is(ringPhase(0, 1), 0);
  const c = new Cluster(ring, ['n0', 'n1', 'n2', 'n3', 'n4'], {});
  for (const id of c.truth.keys()) c.deliver(id);
  assert.equal(c.upgrading(), ['n0', 'n2']);
  c.settle();
  assert.equal(c.started, ['n0', 'n2', 'n1', 'n3', 'n4']);
});

test('ring - two members of a phase that became neighbours go one after the other', () => {
  // n1 and n3 are gone: n0, n2 and n4 are now each other's neighbours (n4 closes the ring onto n0).
  const view = [node('n0'), node('n1', 1, { live: false }), node('n2'), node('n3', 1, { live: false }), node('n4'), node('n5')];
  const sf = new Sf(ring, input({}, { nodeId: 'n2' }));
  sf.nodes(...view);
  assert.is(sf.decision, undefined);
  assert.is(sf.note, 'ring position 2 waits for n0 (v1, running) to reach v2');
  const n0 = new Sf(ring, input({}, { nodeId: 'n0' }));
  n0.nodes(...view);
  assert.equal(n0.decision, { decision: 'upgrade' });
});

test('label schedules - bad params are named', () => {
  assert.equal(validateScheduleParams('zones', { order: 'a,b' }), ['parameter "order" must be a list of distinct zone names, e.g. ["eu-1", "eu-2"], got "a,b"']);
  assert.equal(validateScheduleParams('zones', { order: ['a', 'a'] }), ['parameter "order" must be a list of distinct zone names, e.g. ["eu-1", "eu-2"], got an array']);
  assert.equal(validateScheduleParams('groups', { label: 'Group' }), ['parameter "label" must be a label name such as "zone" (lower-case letters, digits, \'.\', \'_\', \'/\', \'-\'), got "Group"']);
  assert.match(validateScheduleParams('ring', { lable: 'ring' })[0]!, /unknown parameter "lable" \(did you mean "label"\?\)/);
  assert.equal(validateScheduleParams('groups', { maxUnavailable: '10%' }), []);
});

test.run();
