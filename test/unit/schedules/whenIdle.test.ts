import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { whenIdle } from '../../../actors/schedules/index.ts';
import { Sf, input } from './support.ts';

test('whenIdle - upgrades after load stays under the threshold for forMs', () => {
  const sf = new Sf(whenIdle, input({ maxCallsPerSecond: 5, forMs: 10_000 }));
  sf.load(2).advanceBy(9_000);
  assert.is(sf.decision, undefined);
  assert.match(sf.note ?? '', /idle for 9s of 10s/);
  sf.load(3).advance(1_000);
  assert.equal(sf.decision, { decision: 'upgrade' });
});

test('whenIdle - resets when load rises', () => {
  const sf = new Sf(whenIdle, input({ maxCallsPerSecond: 5, forMs: 10_000 }));
  sf.load(1).advanceBy(8_000);
  sf.load(50).advance(1_000);
  assert.match(sf.note ?? '', /busy: 50 calls\/s/);
  sf.load(1).advanceBy(9_000);
  assert.is(sf.decision, undefined, 'the quiet period restarted at the drop');
  sf.advanceBy(1_000);
  assert.equal(sf.decision, { decision: 'upgrade' });
});

test('whenIdle - the threshold itself is not idle', () => {
  const sf = new Sf(whenIdle, input({ maxCallsPerSecond: 5, forMs: 1_000 }));
  sf.load(5).advanceBy(10_000);
  assert.is(sf.decision, undefined);
});

test('whenIdle - waits without any load report', () => {
  const sf = new Sf(whenIdle, input({ forMs: 1_000 }));
  sf.advanceBy(60_000);
  assert.is(sf.decision, undefined);
  assert.is(sf.note, 'waiting for a load report');
});

test('whenIdle - a node idle for a while already counts that time', () => {
  const sf = new Sf(whenIdle, input({ forMs: 30_000 }));
  sf.load(0, 45_000);
  assert.equal(sf.decision, { decision: 'upgrade' });
});

test('whenIdle - maxWaitMs upgrades a busy node anyway', () => {
  const sf = new Sf(whenIdle, input({ maxCallsPerSecond: 1, forMs: 10_000, maxWaitMs: 120_000 }));
  sf.load(100).advanceBy(119_000);
  assert.is(sf.decision, undefined);
  sf.advanceBy(1_000);
  assert.equal(sf.decision, { decision: 'upgrade' });
});

test('whenIdle - load seen while paused still counts after resume', () => {
  const sf = new Sf(whenIdle, input({ forMs: 10_000 }));
  sf.control('pause').load(0).advanceBy(20_000);
  assert.is(sf.decision, undefined);
  sf.control('resume');
  assert.equal(sf.decision, { decision: 'upgrade' });
});

test.run();
