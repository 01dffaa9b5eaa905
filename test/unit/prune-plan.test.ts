/**
 * What `molt prune` removes from the UDB, decided from every key's last
 * message: nodes gone for the window with their progress and reports, and
 * the per-node detail of superseded rollouts that ended before it — never a
 * live node, a rollout still running (a gone node's halt still holds it
 * paused), the newest rollout of a type, a rollout record, an operator's
 * command, a retirement or caller evidence.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { planPrune, type KeyMessage } from '../../runtime/operate/prune.ts';
import type { RolloutRecord } from '../../runtime/udb/index.ts';
import { rolloutRecord } from '../support/records.ts';

const DAY = 86_400_000;
const now = 100 * DAY;
const window = 7 * DAY;
const old = now - 30 * DAY;
const recent = now - DAY;

const encoder = new TextEncoder();
const at = (key: string, time: number): KeyMessage => ({ key, at: time });
function rollout(id: string, to: number, state: RolloutRecord['state'], endedAt: number | undefined, type = 'counter'): KeyMessage {
  const record = rolloutRecord(id, to, state, { type, startedAt: to * DAY, updatedAt: endedAt ?? now, ...(endedAt === undefined ? {} : { endedAt }) });
  return { key: `rollouts.${id}`, at: endedAt ?? now, value: encoder.encode(JSON.stringify(record)) };
}

test('prune plan - a node silent for the window goes with its progress and reports; its caller evidence stays', () => {
  const plan = planPrune(
    [
      at('nodes.gone', old),
      at('progress.r9.gone', old),
      at('progress.r10.gone', old),
      at('reports.gone.counter.3', old),
      at('callers.counter.gone', old),
      at('nodes.live', recent),
      at('progress.r9.live', old),
      at('reports.live.counter.3', old),
      rollout('r10', 10, 'running', undefined),
    ],
    now,
    window,
  );
  assert.equal(plan.nodes, [{ id: 'gone', lastSeenAt: old, keys: ['nodes.gone', 'progress.r10.gone', 'progress.r9.gone', 'reports.gone.counter.3'] }]);
  assert.equal(plan.filters, ['nodes.gone', 'progress.*.gone', 'reports.gone.>']);
  assert.is(plan.keys, 4);
  assert.is(plan.cutoff, now - window);
});

test('prune plan - a stopped node goes by its tombstone\'s time; a node whose record is gone already, by its newest key', () => {
  const plan = planPrune(
    [
      at('nodes.stopped', old), // the tombstone `stopped` leaves
      at('progress.r1.orphan', old),
      at('reports.orphan.counter.2', old - DAY),
      at('progress.r1.fresh-orphan', old),
      at('reports.fresh-orphan.counter.2', recent),
      at('nodes.stopped-lately', recent),
    ],
    now,
    window,
  );
  assert.equal(
    plan.nodes.map((n) => [n.id, n.lastSeenAt]),
    [
      ['orphan', old],
      ['stopped', old],
    ],
  );
  assert.equal(plan.filters, ['nodes.stopped', 'progress.*.orphan', 'reports.orphan.>']);
});

test('prune plan - a superseded rollout that ended before the window loses its progress and halts; the rest stays', () => {
  const plan = planPrune(
    [
      rollout('v2', 2, 'done', old),
      rollout('v3', 3, 'aborted', old),
      rollout('v4', 4, 'rolled-back', old),
      rollout('v5', 5, 'done', recent), // ended within the window
      rollout('v6', 6, 'done', old), // the newest of its type: `molt status` explains who is behind from it
      rollout('c2', 2, 'running', undefined, 'cart'), // old detail of a running rollout, a gone node's halt holding it
      rollout('c1', 1, 'paused', undefined, 'cart'),
      ...['v2', 'v3', 'v4', 'v5', 'v6', 'c1', 'c2'].flatMap((r) => [at(`progress.${r}.a`, old), at(`progress.${r}.b`, old)]),
      at('control.v2', old), // the operator's command stays with its rollout
      at('control.v3', old),
      at('control.v3.a', old), // a node's halt of a finished rollout goes
      at('control.c1.gone', old), // a node's halt still holding a rollout paused stays
      at('retired.counter.1', old),
      at('nodes.a', recent),
      at('nodes.b', recent),
    ],
    now,
    window,
  );
  assert.equal(plan.nodes, []);
  assert.equal(
    plan.rollouts.map((r) => [r.rolloutId, r.state, r.keys]),
    [
      ['v2', 'done', ['progress.v2.a', 'progress.v2.b']],
      ['v3', 'aborted', ['control.v3.a', 'progress.v3.a', 'progress.v3.b']],
      ['v4', 'rolled-back', ['progress.v4.a', 'progress.v4.b']],
    ],
  );
  assert.equal(plan.filters, ['progress.v2.*', 'progress.v3.*', 'control.v3.*', 'progress.v4.*']);
  assert.is(plan.keys, 7);
});

test('prune plan - a key of a gone node in a finished rollout is counted and purged once, under the node', () => {
  const plan = planPrune([rollout('v2', 2, 'done', old), rollout('v3', 3, 'done', old), at('nodes.gone', old), at('progress.v2.gone', old), at('nodes.live', recent), at('progress.v2.live', old)], now, window);
  assert.equal(plan.nodes.map((n) => n.keys), [['nodes.gone', 'progress.v2.gone']]);
  assert.equal(plan.rollouts.map((r) => r.keys), [['progress.v2.live']]);
  assert.is(plan.keys, 3);
  // The rollout whose only detail went with its node needs no purge of its own.
  const alone = planPrune([rollout('v2', 2, 'done', old), rollout('v3', 3, 'done', old), at('nodes.gone', old), at('progress.v2.gone', old)], now, window);
  assert.equal(alone.rollouts, []);
  assert.equal(alone.filters, ['nodes.gone', 'progress.*.gone']);
});

test('prune plan - nothing old, nothing planned', () => {
  const plan = planPrune([rollout('v2', 2, 'done', recent), rollout('v3', 3, 'running', undefined), at('nodes.a', recent), at('progress.v2.a', recent)], now, window);
  assert.equal([plan.nodes, plan.rollouts, plan.filters, plan.keys], [[], [], [], 0]);
});

test.run();
