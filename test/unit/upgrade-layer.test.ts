/**
 * The upgrade layer on its own (no NATS): routing by version, simulation
 * objects of both styles, the sequence requirement, TF chains and failures.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { ErrorCode, isMoltError, type AnyActorVersion } from '../../runtime/index.ts';
import { admit, initialActorState, persist, restore, runTurn, routeFor, type ActorState, type TypeVersions } from '../../runtime/internal.ts';
import { colorset, colorsetDirect, DEFAULT_COLOR } from '../fixtures/colorset.ts';
import { counterChain } from '../fixtures/counter-chain.ts';

function typeAt(versions: readonly AnyActorVersion[], current: number, retired: number[] = []): TypeVersions {
  return { name: versions[0]!.type, byVersion: new Map(versions.map((v) => [v.version, v])), current, retired: new Set(retired) };
}

/** Sends one call through the layer, like the host does, and returns reply and new state. */
function call(types: TypeVersions, state: ActorState, version: number, message: string, request: unknown = {}) {
  const route = admit(types, version, message, request);
  return runTurn(types, state, route, version, message, request);
}

function expectError(fn: () => unknown, code: string): Error {
  try {
    fn();
  } catch (e) {
    assert.ok(isMoltError(e, code as never), `expected ${code}, got ${String(e)}`);
    return e as Error;
  }
  assert.unreachable(`expected ${code}`);
  throw new Error('unreachable');
}

const layer = suite('upgrade layer');

layer('routing - a node at i serves i natively, i-1 by past SO, i+1 and i+2 by future SOs', () => {
  const chain = counterChain.versions;
  assert.is(routeFor(typeAt(chain, 2), 2), 'native');
  assert.is(routeFor(typeAt(chain, 2), 1), 'past');
  assert.is(routeFor(typeAt(chain, 2), 3), 'future');
  assert.is(routeFor(typeAt(chain, 1), 3), 'future2');
  assert.is(routeFor(typeAt(chain, 3), 1), undefined);
  assert.is(routeFor(typeAt(chain, 1), 4), undefined);
  assert.is(routeFor(typeAt(chain.slice(0, 2), 1), 3), undefined, 'an unknown version is not served');
});

layer('routing - unsupported versions fail with VersionUnsupported naming the served versions', () => {
  const types = typeAt(counterChain.versions, 3);
  const old = expectError(() => admit(types, 1, 'get', {}), ErrorCode.VersionUnsupported) as Error & { retryable: boolean; data: Record<string, unknown> };
  assert.is(old.retryable, false, 'an older version will never come back');
  assert.equal(old.data.served, [2, 3]);
  const newer = expectError(() => admit(typeAt(counterChain.versions.slice(0, 1), 1), 2, 'get', {}), ErrorCode.VersionUnsupported) as Error & { retryable: boolean };
  assert.is(newer.retryable, true, 'a newer version may be loaded later');
});

layer('retire - callers of a retired version get VersionRetired', () => {
  const types = typeAt(counterChain.versions, 2, [1]);
  const e = expectError(() => admit(types, 1, 'get', {}), ErrorCode.VersionRetired) as Error & { retryable: boolean };
  assert.is(e.retryable, false);
  assert.is(admit(types, 2, 'get', {}), 'native');
});

layer('admit - unknown message and invalid payload name the message and the field', () => {
  const types = typeAt(counterChain.versions, 1);
  expectError(() => admit(types, 1, 'decrement', { by: 1 }), ErrorCode.UnknownMessage);
  assert.is(admit(types, 2, 'decrement', { by: 1 }), 'future', 'v2 has decrement, served through the future SO');
  const bad = expectError(() => admit(types, 1, 'increment', { by: 'one' }), ErrorCode.InvalidPayload);
  assert.match(bad.message, /field 'by'/);
});

layer('future SO - v2 callers on a v1 node change the v1 object', () => {
  const types = typeAt(counterChain.versions, 1);
  let s = initialActorState(types);
  s = call(types, s, 1, 'increment', { by: 5 }).state;
  const dec = call(types, s, 2, 'decrement', { by: 2 });
  assert.is(dec.reply, 3);
  s = dec.state;
  assert.is(call(types, s, 1, 'get').reply, 3);
  assert.is(call(types, s, 2, 'get').reply, 3);
});

layer('future SO chain - v3 callers on a v1 node go through the v3 then the v2 future SO', () => {
  const types = typeAt(counterChain.versions, 1);
  let s = initialActorState(types);
  s = call(types, s, 3, 'add', { amount: 4 }).state;
  assert.is(call(types, s, 1, 'get').reply, 4);
  assert.is(call(types, s, 3, 'total').reply, 4);
});

layer('past SO - v1 callers on a v2 node', () => {
  const types = typeAt(counterChain.versions, 2);
  let s = initialActorState(types);
  s = call(types, s, 1, 'increment', { by: 2 }).state;
  s = call(types, s, 2, 'decrement', { by: 1 }).state;
  assert.is(call(types, s, 1, 'get').reply, 1);
  assert.equal(call(types, s, 2, 'stats').reply, { count: 1, ops: 2 });
});

layer('disallow - a disallowed call fails with Disallowed naming message, version and reason, and changes nothing', () => {
  const types = typeAt(colorsetDirect.versions, 1);
  let s = initialActorState(types);
  s = call(types, s, 1, 'insert', { x: 1 }).state;
  const e = expectError(() => call(types, s, 2, 'getColor', { x: 1 }), ErrorCode.Disallowed) as Error & { data: Record<string, unknown> };
  assert.is(e.data.message, 'getColor');
  assert.is(e.data.version, 2);
  assert.match(String(e.data.reason), /direct SO/);
  // A handler that disallows after calling the target: its effects are rolled back.
  expectError(() => call(types, s, 2, 'insertColor', { x: 7, color: 'red' }), ErrorCode.Disallowed);
  assert.equal(call(types, s, 1, 'elements').reply, [1]);
});

layer('sequence requirement - ColorSet: a colour set through the future SO does not survive delete+insert by v1 callers', () => {
  const types = typeAt(colorset.versions, 1);
  let s = initialActorState(types);
  s = call(types, s, 2, 'insertColor', { x: 1, color: 'red' }).state;
  assert.is(call(types, s, 2, 'getColor', { x: 1 }).reply, 'red');
  s = call(types, s, 1, 'delete', { x: 1 }).state;
  assert.is(call(types, s, 2, 'getColor', { x: 1 }).reply, null, 'deleted through the object: no colour');
  s = call(types, s, 1, 'insert', { x: 1 }).state;
  assert.is(call(types, s, 2, 'getColor', { x: 1 }).reply, DEFAULT_COLOR, 'reinserted by a v1 caller: the default, never red');
  assert.is(call(types, s, 2, 'contains', { x: 1 }).reply, true);
});

layer('interceptor - SO state is part of the persisted record and reaches the TF', () => {
  const v1 = typeAt(colorset.versions, 1);
  let s = initialActorState(v1);
  s = call(v1, s, 2, 'insertColor', { x: 3, color: 'green' }).state;
  s = call(v1, s, 1, 'insert', { x: 4 }).state;
  const record = persist(s);
  assert.equal(record.so?.future?.[2], { 3: 'green' });
  const v2 = typeAt(colorset.versions, 2);
  const upgraded = restore(v2, record, 'k');
  assert.is(upgraded.version, 2);
  assert.is(call(v2, upgraded, 2, 'getColor', { x: 3 }).reply, 'green');
  assert.is(call(v2, upgraded, 2, 'getColor', { x: 4 }).reply, DEFAULT_COLOR);
  assert.equal(call(v2, upgraded, 1, 'elements').reply, [3, 4]);
});

layer('TF chain - state written at v1 and loaded at v3 runs TF 1→2 then 2→3', () => {
  const v1 = typeAt(counterChain.versions, 1);
  let s = initialActorState(v1);
  s = call(v1, s, 1, 'increment', { by: 9 }).state;
  const v3 = typeAt(counterChain.versions, 3);
  const loaded = restore(v3, persist(s), 'k');
  assert.is(loaded.version, 3);
  assert.equal(loaded.snapshot.context, { total: 9, ops: 0, label: '' });
  assert.is(call(v3, loaded, 3, 'total').reply, 9);
  assert.is(call(v3, loaded, 2, 'get').reply, 9, 'v2 callers through the v3 past SO');
});

layer('TF failure - TransformFailed, not retryable, nothing changed', () => {
  const v1 = typeAt(counterChain.versions, 1);
  let s = initialActorState(v1);
  s = call(v1, s, 1, 'increment', { by: -1 }).state; // the v2 TF refuses negative counts
  const record = persist(s);
  const e = expectError(() => restore(typeAt(counterChain.versions, 2), record, 'neg'), ErrorCode.TransformFailed) as Error & { retryable: boolean };
  assert.is(e.retryable, false);
  assert.equal(record, persist(s), 'the record was not modified');
});

layer('state stamp - state written at a newer version is not served by an older node', () => {
  const v2 = typeAt(counterChain.versions, 2);
  const s = initialActorState(v2);
  const e = expectError(() => restore(typeAt(counterChain.versions, 1), persist(s), 'k'), ErrorCode.VersionUnsupported) as Error & { retryable: boolean };
  assert.is(e.retryable, true);
});

layer('current object - a message an SO disallows is served by the object that has it natively', () => {
  const atV2 = typeAt(counterChain.versions, 2);
  const atV3 = typeAt(counterChain.versions, 3);
  let s2 = initialActorState(atV2);
  s2 = call(atV2, s2, 2, 'increment', { by: 3 }).state;
  s2 = call(atV2, s2, 2, 'reset').state;
  assert.is(call(atV2, s2, 2, 'get').reply, 0, 'native reset on a v2 node');
  const s3 = restore(atV3, persist(s2), 'k');
  expectError(() => call(atV3, s3, 2, 'reset'), ErrorCode.Disallowed);
  assert.is(call(atV3, s3, 3, 'add', { amount: 1 }).reply, 1, 'the same actor, natively on v3');
});

layer.run();
