/**
 * `statusView` over many rollouts of one type: each rollout shows its own
 * nodes' progress, and only the newest finished rollout of a type lists the
 * live nodes left behind (with the reason its own progress gives). The view
 * groups progress by rollout and finds each type's newest rollout once, since
 * `molt status --watch` and the dashboard render it every second over every
 * rollout the service has had; and the report lists only the current part of
 * that history unless asked for all of it.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { changeLines, GONE_SHOWN_MS, renderStatus, statusView } from '../../runtime/operate/status.ts';
import type { NodeRecord, ProgressRecord, RolloutRecord, UdbSnapshot } from '../../runtime/udb/index.ts';

const now = 1_000_000;
const node = (id: string, version: number): NodeRecord => ({ id, service: 's', host: 'h', pid: 1, versions: { counter: version }, status: 'running', startedAt: now, heartbeatAt: now });
const rollout = (to: number, startedAt: number, id = `counter-v${to}-${startedAt}`): RolloutRecord => ({ rolloutId: id, service: 's', type: 'counter', from: to - 1, to, schedule: { name: 'immediate', params: {} }, publisher: 'U', state: 'done', counts: {}, startedAt, updatedAt: now });
const progress = (r: RolloutRecord, nodeId: string, step: ProgressRecord['step'], note?: string): ProgressRecord => ({ rolloutId: r.rolloutId, nodeId, type: 'counter', from: r.from, to: r.to, step, at: now, steps: [{ step, at: now }], ...(note ? { note } : {}) });

test('status view - progress per rollout, and nodes behind only on the newest finished rollout of a type', () => {
  const rollouts = [rollout(2, 100), rollout(3, 200), rollout(4, 300)];
  const [, v3, v4] = rollouts as [RolloutRecord, RolloutRecord, RolloutRecord];
  const snap: UdbSnapshot = {
    nodes: [node('a', 4), node('b', 3), node('c', 4)],
    rollouts,
    control: [],
    retired: [],
    progress: [
      ...rollouts.flatMap((r) => ['c', 'a'].map((n) => progress(r, n, 'upgraded'))),
      progress(v3, 'b', 'upgraded'),
      progress(v4, 'b', 'waiting', 'batch 2 of 2'),
    ],
    reports: [],
  };
  const view = statusView('s', snap, now, 5000);
  assert.equal(view.rollouts.map((r) => r.rolloutId), rollouts.map((r) => r.rolloutId), 'every rollout, oldest first');
  for (const r of view.rollouts) {
    const expected = r.rolloutId === v3.rolloutId || r.rolloutId === v4.rolloutId ? ['a', 'b', 'c'] : ['a', 'c'];
    assert.equal(r.nodes.map((n) => n.nodeId), expected, `${r.rolloutId}: its own nodes' progress, by node id`);
  }
  assert.equal(view.rollouts.find((r) => r.rolloutId === v4.rolloutId)!.behind, [{ nodeId: 'b', version: 3, why: 'waiting: batch 2 of 2' }]);
  for (const r of view.rollouts.filter((r) => r.rolloutId !== v4.rolloutId)) assert.equal(r.behind, [], `${r.rolloutId} is superseded`);
});

test('status view - two rollouts to one version started at the same time both count as newest', () => {
  const first = rollout(2, 100, 'counter-v2-first');
  const second = rollout(2, 100, 'counter-v2-second');
  const view = statusView('s', { nodes: [node('a', 1)], rollouts: [first, second], control: [], retired: [], progress: [], reports: [] }, now, 5000);
  for (const r of view.rollouts) assert.equal(r.behind.map((b) => b.nodeId), ['a'], `${r.rolloutId}: superseded by neither`);
});

test('status report - the current part by default: live and recently gone nodes, rollouts not over and the newest of each type (here one running, so the finished ones are history); --all lists every one', () => {
  const old = rollout(2, 100);
  const aborted = rollout(3, 200);
  const done = rollout(4, 300);
  const running = { ...rollout(5, 400), state: 'running' as const };
  const other = { ...rollout(2, 150, 'cart-v2-150'), type: 'cart' };
  const gone = (id: string, agoMs: number): NodeRecord => ({ ...node(id, 4), status: 'stopped', heartbeatAt: now - agoMs });
  const snap: UdbSnapshot = {
    nodes: [node('a', 4), gone('left-recently', 60_000), gone('left-long-ago', GONE_SHOWN_MS + 1), gone('left-longer-ago', 10 * GONE_SHOWN_MS)],
    rollouts: [old, { ...aborted, state: 'aborted' }, done, running, other],
    control: [],
    retired: [],
    progress: [],
    reports: [],
  };
  const view = statusView('s', snap, now, 5000);
  const text = renderStatus(view, { unicode: false }).join('\n');
  for (const shown of ['left-recently', running.rolloutId, other.rolloutId]) assert.ok(text.includes(shown), `${shown} listed:\n${text}`);
  for (const hidden of ['left-long-ago', 'left-longer-ago', old.rolloutId, aborted.rolloutId, done.rolloutId]) assert.not.ok(text.includes(hidden), `${hidden} not listed:\n${text}`);
  assert.ok(text.includes('(2 nodes gone for more than an hour not listed: molt status --all)'), text);
  assert.ok(text.includes('(3 earlier rollouts, over, not listed: molt status --all)'), text);
  const lines = changeLines(view).join('\n');
  assert.not.ok(lines.includes(old.rolloutId) || lines.includes('left-long-ago'), lines);

  const all = renderStatus(view, { unicode: false, all: true }).join('\n');
  for (const id of ['left-long-ago', 'left-longer-ago', old.rolloutId, aborted.rolloutId, done.rolloutId, running.rolloutId]) assert.ok(all.includes(id), `--all lists ${id}`);
  assert.not.ok(all.includes('not listed'), all);
  assert.ok(changeLines(view, { all: true }).some((l) => l.includes(old.rolloutId)));
});

test.run();
