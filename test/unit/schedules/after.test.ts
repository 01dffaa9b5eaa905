import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { after } from '../../../actors/schedules/index.ts';
import { Sf, input } from './support.ts';

test('after - asks the manager to watch the dependency while starting', () => {
  const sf = new Sf(after, input({ service: 'billing', type: 'invoice', version: 3 }));
  assert.equal(sf.emitted.filter((e) => e.type === 'schedule.watch'), [{ type: 'schedule.watch', service: 'billing', type_: 'invoice' }]);
});

test('after - waits for the dependency to reach the version on every live node', () => {
  const sf = new Sf(after, input({ service: 'billing', type: 'invoice', version: 3 }));
  sf.advanceBy(60_000);
  assert.is(sf.decision, undefined);
  assert.match(sf.note ?? '', /waiting for news of billing\/invoice/);
  sf.versions('billing', 'invoice', 2, 3);
  assert.is(sf.decision, undefined);
  assert.match(sf.note ?? '', /lowest is v2/);
  sf.versions('shop', 'invoice', 5, 3).versions('billing', 'payment', 5, 3);
  assert.is(sf.decision, undefined, 'other services and types are ignored');
  sf.versions('billing', 'invoice', 3, 3);
  assert.equal(sf.decision, { decision: 'upgrade' });
});

test('after - no live node hosting the dependency is not "reached"', () => {
  const sf = new Sf(after, input({ service: 'billing', type: 'invoice', version: 3 }));
  sf.versions('billing', 'invoice', 0, 0);
  assert.is(sf.decision, undefined);
  assert.match(sf.note ?? '', /no live node hosts it/);
});

test('after - type alone means another type of this service', () => {
  const sf = new Sf(after, input({ type: 'inventory', version: 2 }));
  assert.equal(sf.emitted.find((e) => e.type === 'schedule.watch'), { type: 'schedule.watch', service: 'shop', type_: 'inventory' });
  sf.versions('shop', 'inventory', 2);
  assert.equal(sf.decision, { decision: 'upgrade' });
});

test('after - a dependency on the type being upgraded aborts with the reason', () => {
  const sf = new Sf(after, input({ type: 'cart', version: 2 }));
  const d = sf.decision;
  assert.is(d?.decision, 'abort');
  assert.match(d?.decision === 'abort' ? d.reason : '', /the very type being upgraded/);
});

test('after - dependency news while paused is kept', () => {
  const sf = new Sf(after, input({ service: 'billing', type: 'invoice', version: 3 }, { paused: true }));
  sf.versions('billing', 'invoice', 3);
  assert.is(sf.decision, undefined);
  sf.control('resume');
  assert.equal(sf.decision, { decision: 'upgrade' });
});

test.run();
