/**
 * UDB record parsing shared by every observer in a process (placement and the
 * upgrade manager of each node): one parse per record text, the same frozen
 * value for all, and the same verdicts as a plain parse.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { parseRecord, parseSharedJson, parseSharedRecord, supersedes, udbShapes, type NodeRecord, type RolloutRecord } from '../../runtime/udb/index.ts';

const test = suite('udb records');
const bytes = (value: unknown) => new TextEncoder().encode(JSON.stringify(value));
const node: NodeRecord = { id: 'n1', service: 's', host: 'h', pid: 1, versions: { counter: 2 }, known: { counter: [1, 2] }, status: 'running', startedAt: 1, heartbeatAt: 2, claims: [3, 5] };

test('shared parse - observers of one record text get one frozen value', () => {
  // Two copies of the bytes, as two connections receive them.
  const a = parseSharedRecord(bytes(node), udbShapes.node);
  const b = parseSharedRecord(bytes(node), udbShapes.node);
  assert.ok(a);
  assert.is(a, b);
  assert.equal(a, node);
  assert.is(parseSharedJson(bytes(node)), a);
  assert.ok(Object.isFrozen(a) && Object.isFrozen(a!.versions) && Object.isFrozen(a!.known!.counter) && Object.isFrozen(a!.claims));
  assert.throws(() => {
    (a!.versions as Record<string, number>).counter = 3;
  });
});

test('shared parse - the same verdicts as parseRecord', () => {
  const wrong = { ...node, status: 'sleeping' };
  assert.is(parseSharedRecord(bytes(wrong), udbShapes.node), undefined);
  assert.is(parseRecord(bytes(wrong), udbShapes.node), undefined);
  // The text matched one pattern and not another: each verdict is its own.
  assert.ok(parseSharedRecord(bytes(node), udbShapes.node));
  assert.is(parseSharedRecord(bytes(node), udbShapes.control), undefined);
  assert.is(parseSharedRecord(new TextEncoder().encode('{not json'), udbShapes.node), undefined);
  assert.throws(() => parseSharedJson(new TextEncoder().encode('{not json')));
});

test('shared parse - a changed record is parsed anew', () => {
  const a = parseSharedRecord(bytes(node), udbShapes.node);
  const b = parseSharedRecord(bytes({ ...node, heartbeatAt: 3 }), udbShapes.node);
  assert.is.not(a, b);
  assert.is(b!.heartbeatAt, 3);
});

test('supersedes - the newest rollout of a type: a later version (even published at the same moment), or the same version published again', () => {
  const rollout = (rolloutId: string, to: number, startedAt: number): RolloutRecord => ({
    rolloutId, service: 's', type: 'counter', from: to - 1, to, schedule: { name: 'immediate', params: {} }, publisher: 'U', state: 'done', counts: {}, startedAt, updatedAt: startedAt,
  });
  const v2 = rollout('counter-v2-a', 2, 100);
  const v3 = rollout('counter-v3-a', 3, 100); // one publish of v2 and v3: same startedAt
  const v2again = rollout('counter-v2-b', 2, 200);
  assert.ok(supersedes(v3, v2));
  assert.not.ok(supersedes(v2, v3));
  assert.ok(supersedes(v2again, v2));
  assert.not.ok(supersedes(v2, v2));
  assert.not.ok(supersedes({ ...v3, type: 'cart' }, v2), 'another type');
});

test.run();
