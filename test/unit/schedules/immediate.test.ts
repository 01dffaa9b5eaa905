import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { immediate } from '../../../actors/schedules/index.ts';
import { Sf, input, node } from './support.ts';

test('immediate - decides upgrade as soon as it starts', () => {
  const sf = new Sf(immediate, input());
  assert.equal(sf.decision, { decision: 'upgrade' });
  assert.equal(sf.errors, []);
});

test('immediate - starts paused when the rollout is paused and decides on resume', () => {
  const sf = new Sf(immediate, input({}, { paused: true }));
  assert.is(sf.decision, undefined);
  assert.ok(sf.snapshot.hasTag('paused'));
  sf.advance(60_000).nodes(node('n1'));
  assert.is(sf.decision, undefined, 'no decision while paused');
  sf.control('resume');
  assert.equal(sf.decision, { decision: 'upgrade' });
});

test('immediate - with a health gate it waits for the node list, then decides', () => {
  const sf = new Sf(immediate, input({ health: true }));
  assert.is(sf.decision, undefined);
  assert.match(sf.note ?? '', /node list/);
  sf.nodes(node('n1'), node('n2', 2));
  assert.equal(sf.decision, { decision: 'upgrade' });
});

test('immediate - with a health gate and a failed node it halts instead', () => {
  const sf = new Sf(immediate, input({ health: true }, { nodes: [node('n1'), node('n2', 1, { status: 'failed' })] }));
  assert.is(sf.decision, undefined);
  assert.is(sf.state, 'halted');
});

test('immediate - invalid params end with abort and say why', () => {
  const sf = new Sf(immediate, input({ batch: 2 }));
  const d = sf.decision;
  assert.is(d?.decision, 'abort');
  assert.match(d?.decision === 'abort' ? d.reason : '', /unknown parameter "batch"/);
});

test.run();
