/**
 * Which rollouts a manager's full read need not read again: those whose
 * records can no longer change — ended, superseded, and not where a rollback
 * could reach them (a `done` or `aborted` rollout can be rolled back once
 * every later one of its type is).
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { settledRollouts } from '../../runtime/manager/watch.ts';
import type { RolloutRecord } from '../../runtime/udb/index.ts';
import { rolloutRecord } from '../support/records.ts';

const rollout = (id: string, to: number, state: RolloutRecord['state'], type = 'counter', startedAt = to) => rolloutRecord(id, to, state, { type, startedAt });
const settled = (...rollouts: RolloutRecord[]) => [...settledRollouts(rollouts)].sort();

test('settled - ended and superseded by a rollout still standing', () => {
  assert.equal(settled(rollout('v2', 2, 'done'), rollout('v3', 3, 'aborted'), rollout('v4', 4, 'done')), ['v2', 'v3']);
  assert.equal(settled(rollout('v2', 2, 'done'), rollout('v3', 3, 'running')), ['v2'], 'a running later rollout stands');
  assert.equal(settled(rollout('v2', 2, 'aborted'), rollout('v3', 3, 'paused')), ['v2']);
});

test('settled - never the newest of a type (its counts are kept current), nor one that has not ended', () => {
  assert.equal(settled(rollout('v2', 2, 'done')), []);
  assert.equal(settled(rollout('v2', 2, 'running'), rollout('v3', 3, 'running')), []);
  assert.equal(settled(rollout('v2', 2, 'rolling-back'), rollout('v3', 3, 'rolled-back')), [], 'rolling back is not an end');
  assert.equal(settled(rollout('c2', 2, 'done', 'cart'), rollout('v3', 3, 'done')), [], 'types apart');
});

test('settled - a rollout below rolled-back ones only can be rolled back next; a rolled-back one is final', () => {
  assert.equal(settled(rollout('v2', 2, 'done'), rollout('v3', 3, 'rolled-back')), [], 'v2 may be rolled back next; v3 is the newest');
  assert.equal(settled(rollout('v2', 2, 'done'), rollout('v3', 3, 'rolled-back'), rollout('v3b', 3, 'done', 'counter', 10)), ['v2', 'v3']);
  assert.equal(settled(rollout('v2', 2, 'aborted'), rollout('v3', 3, 'rolled-back'), rollout('v4', 4, 'rolled-back')), ['v3']);
});

test('settled - two rollouts alike in version and start supersede neither', () => {
  assert.equal(settled(rollout('a', 2, 'done', 'counter', 5), rollout('b', 2, 'done', 'counter', 5)), []);
});

test.run();
