/**
 * The control in force on a rollout (runtime/udb/halts.ts): the latest record
 * of the `control.` family by revision; a node's key counts only as its pause;
 * abort and rollback are final.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { controlOf, controlsInForce, haltRecord } from '../../runtime/udb/halts.ts';

let revision = 0;
const entry = (key: string, value: unknown) => ({ key, value: new TextEncoder().encode(JSON.stringify(value)), operation: 'PUT' as const, revision: ++revision });
const op = (command: string, at = 1) => ({ rolloutId: 'r1', command, by: 'alice@host', at });

test('halts - a node key is only that node\'s pause of that rollout', () => {
  assert.equal(controlOf(entry('control.r1.n1', haltRecord('r1', 'n1', 'tf failed', 5))), { rolloutId: 'r1', command: 'pause', reason: 'tf failed', by: 'node n1', at: 5 });
  assert.is(controlOf(entry('control.r1.n1', { ...haltRecord('r1', 'n1', 'x', 5), command: 'rollback' })), undefined, 'a node cannot command');
  assert.is(controlOf(entry('control.r1.n1', haltRecord('r1', 'n2', 'x', 5))), undefined, 'nor speak for another node');
  assert.is(controlOf(entry('control.r1.n1', haltRecord('r2', 'n1', 'x', 5))), undefined, 'nor for another rollout');
  assert.is(controlOf(entry('control.r1.n1.x', haltRecord('r1', 'n1', 'x', 5))), undefined);
  assert.equal(controlOf(entry('control.r1', op('resume'))), op('resume'));
  assert.is(controlOf(entry('control.r2', op('resume'))), undefined, 'the key names the rollout');
});

test('halts - the latest record by revision is in force; abort and rollback are final', () => {
  const resume = entry('control.r1', op('resume', 100));
  const halt = entry('control.r1.n1', haltRecord('r1', 'n1', 'tf', 1)); // an older clock does not matter
  assert.equal(controlsInForce([halt, resume]).get('r1')?.by, 'node n1', 'given in any order');
  const resumeAgain = entry('control.r1', op('resume', 50));
  assert.equal(controlsInForce([resumeAgain, halt]).get('r1')?.command, 'resume');
  const abort = entry('control.r1', op('abort'));
  const late = entry('control.r1.n2', haltRecord('r1', 'n2', 'tf', 9));
  assert.equal(controlsInForce([late, abort]).get('r1')?.command, 'abort');
});

test.run();
