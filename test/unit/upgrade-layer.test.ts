/**
 * The upgrade layer on its own (no NATS): routing by version, simulation
 * objects of both styles, the sequence requirement, TF chains and failures.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { assign, setup } from 'xstate';
import { ask, defineVersion, disallow, ErrorCode, isMoltError, P, tell, type AnyActorVersion, type EventsOf } from '../../runtime/index.ts';
import { admit, initialActorState, persist, refreshSOStates, restore, runTurn, routeFor, servedVersions, type ActorState, type TypeVersions } from '../../runtime/internal.ts';
import { colorset, colorsetDirect, DEFAULT_COLOR } from '../fixtures/colorset.ts';
import { colorsetChain } from '../fixtures/colorset-chain.ts';
import { counterChain, counterV2, counterV3 } from '../fixtures/counter-chain.ts';
import { counterV1 } from '../fixtures/counter.ts';

function typeAt(versions: readonly AnyActorVersion[], current: number, retired: number[] = []): TypeVersions {
  return { name: versions[0]!.type, byVersion: new Map(versions.map((v) => [v.version, v])), current, retired: new Set(retired) };
}

/**
 * A counter with versions 1–5 whose SOs pass every call on, except a refusal
 * (the past SO of v4 refuses `refuse`; the past SO of v2 adds 100 before
 * calling it), and which are all interceptors: each records, as its state,
 * the calls it observed. `compatibleAt` declares that version compatible
 * instead of giving it a past SO.
 */
function logType(options: { compatibleAt?: number } = {}): AnyActorVersion[] {
  const messages = { add: tell({ n: P.number }), sum: ask({}, P.number), refuse: tell({}) };
  const machine = setup({ types: { context: {} as { total: number }, events: {} as EventsOf<typeof messages> } }).createMachine({
    context: { total: 0 },
    on: { add: { actions: assign({ total: ({ context, event }) => context.total + event.n }) } },
  });
  const so = (version: number, side: 'past' | 'future') => ({
    initialState: [] as string[],
    handlers: {
      add: ({ request, target }: any) => target.add(request),
      sum: ({ target }: any) => target.sum(),
      refuse:
        side === 'past' && version === 4
          ? disallow('v4 refuses')
          : ({ target }: any) => {
              if (side === 'past' && version === 2) target.add({ n: 100 });
              return target.refuse();
            },
    },
    observe: ({ message, request, state, setState }: any) => setState([...state, `${message} ${request.n ?? ''}`.trim()]),
  });
  const versions: AnyActorVersion[] = [];
  for (let v = 1; v <= 5; v++) {
    const def = defineVersion({ type: 'log', version: v, messages, machine, replies: { sum: ({ snapshot }) => snapshot.context.total } });
    const prev = versions[v - 2];
    versions.push(
      prev === undefined
        ? def
        : def.from(prev, {
            transform: ({ context }: any) => ({ context, past: v === 5 ? ['seeded by the TF'] : undefined }),
            down: ({ context }: any) => ({ context }),
            ...(options.compatibleAt === v ? { compatible: true } : { past: so(v, 'past') }),
            future: so(v, 'future'),
          } as never),
    );
  }
  return versions;
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

/** A route as `kind` or `kind×steps` for chains, or undefined. */
function routeOf(types: TypeVersions, version: number): string | undefined {
  const route = routeFor(types, version);
  return route === undefined ? undefined : route.steps > 1 ? `${route.kind}×${route.steps}` : route.kind;
}

layer('routing - a node at i serves i natively, older versions by past SOs chained, i+1 and i+2 by future SOs', () => {
  const chain = counterChain.versions;
  assert.is(routeOf(typeAt(chain, 2), 2), 'native');
  assert.is(routeOf(typeAt(chain, 2), 1), 'past');
  assert.is(routeOf(typeAt(chain, 2), 3), 'future');
  assert.is(routeOf(typeAt(chain, 1), 3), 'future×2');
  assert.is(routeOf(typeAt(chain, 3), 1), 'past×2', 'the past SO of v2 calling the past SO of v3');
  assert.is(routeOf(typeAt(chain, 1), 4), undefined);
  assert.is(routeOf(typeAt(chain.slice(0, 2), 1), 3), undefined, 'an unknown version is not served');
  assert.is(routeOf(typeAt(colorsetChain.versions, 4), 1), 'past×3');
  assert.equal(servedVersions(typeAt(colorsetChain.versions, 4)), [1, 2, 3, 4]);
  assert.is(routeFor(typeAt(chain, 2), 2), routeFor(typeAt(chain, 3), 3), 'one shared native route: a native call allocates none');
});

/** counter@2 without a past SO: the chain of past SOs stops there. */
const counterV2NoPast = counterV2.from(counterV1, { ...(counterV2.upgrade as object), past: undefined } as never);
const counterV3OnNoPast = counterV3.from(counterV2NoPast, counterV3.upgrade as never);

layer('routing - unsupported versions fail with VersionUnsupported naming the served versions and where the chain stops', () => {
  const types = typeAt([counterV1, counterV2NoPast, counterV3OnNoPast], 3);
  assert.is(routeOf(types, 2), 'past');
  const old = expectError(() => admit(types, 1, 'get', {}), ErrorCode.VersionUnsupported) as Error & { retryable: boolean; data: Record<string, unknown> };
  assert.is(old.retryable, false, 'an older version will never come back');
  assert.equal(old.data.served, [2, 3]);
  assert.match(old.message, 'counter@2 declares no past SO for callers of 1');
  const newer = expectError(() => admit(typeAt(counterChain.versions.slice(0, 1), 1), 2, 'get', {}), ErrorCode.VersionUnsupported) as Error & { retryable: boolean };
  assert.is(newer.retryable, true, 'a newer version may be loaded later');
  const unknown = expectError(() => admit(typeAt(counterChain.versions.slice(1), 3), 1, 'get', {}), ErrorCode.VersionUnsupported);
  assert.match(unknown.message, 'counter@1 is not known on this node');
});

layer('retire - callers of a retired version get VersionRetired', () => {
  const types = typeAt(counterChain.versions, 2, [1]);
  const e = expectError(() => admit(types, 1, 'get', {}), ErrorCode.VersionRetired) as Error & { retryable: boolean };
  assert.is(e.retryable, false);
  assert.is(admit(types, 2, 'get', {}).kind, 'native');
});

layer('retire - retiring a version ends the chain there: every older version is retired with it', () => {
  const types = typeAt(colorsetChain.versions, 4, [2]);
  assert.equal(servedVersions(types), [3, 4]);
  const e = expectError(() => admit(types, 1, 'contains', { x: 1 }), ErrorCode.VersionRetired) as Error & { data: Record<string, unknown> };
  assert.match(e.message, 'colorset@2 was retired, and every version before it with it');
  assert.equal(e.data.served, [3, 4]);
  expectError(() => admit(types, 2, 'contains', { x: 1 }), ErrorCode.VersionRetired);
  assert.is(admit(types, 3, 'contains', { x: 1 }).kind, 'past');
});

layer('admit - unknown message and invalid payload name the message and the field', () => {
  const types = typeAt(counterChain.versions, 1);
  expectError(() => admit(types, 1, 'decrement', { by: 1 }), ErrorCode.UnknownMessage);
  assert.is(admit(types, 2, 'decrement', { by: 1 }).kind, 'future', 'v2 has decrement, served through the future SO');
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

layer('past SO chain - v1 callers on a v4 node go through the past SOs of v2, v3 and v4, and see every other caller', () => {
  const types = typeAt(colorsetChain.versions, 4);
  let s = initialActorState(types);
  s = call(types, s, 1, 'insert', { x: 1 }).state;
  s = call(types, s, 2, 'insertColor', { x: 2, color: 'red' }).state;
  s = call(types, s, 3, 'put', { x: 3, color: 'blue' }).state;
  s = call(types, s, 4, 'insert', { x: 4 }).state;
  for (const v of [1, 2, 3]) assert.equal(call(types, s, v, 'elements').reply, [1, 2, 3, 4], `v${v} elements`);
  assert.is(call(types, s, 4, 'size').reply, 4);
  assert.is(call(types, s, 2, 'getColor', { x: 1 }).reply, DEFAULT_COLOR, 'inserted by a v1 caller: the default colour');
  assert.is(call(types, s, 2, 'getColor', { x: 2 }).reply, 'red');
  assert.is(call(types, s, 2, 'getColor', { x: 3 }).reply, 'blue', 'set by a v3 caller, read by a v2 caller');
  assert.is(call(types, s, 3, 'colorOf', { x: 2 }).reply, 'red', 'set by a v2 caller, read by a v3 caller');
  // The sequence requirement across the chain: a v4 caller's delete and a v1
  // caller's insert leave no trace of the colour red.
  s = call(types, s, 4, 'delete', { x: 2 }).state;
  assert.is(call(types, s, 2, 'getColor', { x: 2 }).reply, null);
  assert.is(call(types, s, 1, 'contains', { x: 2 }).reply, false);
  s = call(types, s, 1, 'insert', { x: 2 }).state;
  assert.is(call(types, s, 2, 'getColor', { x: 2 }).reply, DEFAULT_COLOR, 'reinserted: the default, never red');
  assert.is(call(types, s, 3, 'colorOf', { x: 2 }).reply, DEFAULT_COLOR);
});

layer('past SO chain - a disallow anywhere along the chain is Disallowed, and the whole turn is undone', () => {
  const types = typeAt(counterChain.versions, 3);
  let s = initialActorState(types);
  s = call(types, s, 1, 'increment', { by: 5 }).state;
  assert.is(call(types, s, 1, 'get').reply, 5, 'v1 callers on a v3 node, through the past SOs of v2 and v3');
  // v1 reset → the past SO of v2 calls reset on v2 → the past SO of v3 refuses it.
  const e = expectError(() => call(types, s, 1, 'reset'), ErrorCode.Disallowed) as Error & { data: Record<string, unknown> };
  assert.is(e.data.version, 2, 'the refusal names the step of the chain that refused');
  assert.match(String(e.data.reason), 'v3 has no reset');
  // A handler that changed the object before a step further on refused: nothing of it stays.
  const logTypes = typeAt(logType(), 4);
  let l = initialActorState(logTypes);
  l = call(logTypes, l, 4, 'add', { n: 1 }).state;
  expectError(() => call(logTypes, l, 1, 'refuse'), ErrorCode.Disallowed);
  assert.is(call(logTypes, l, 1, 'sum').reply, 1, 'the add made before the refusal was undone');
});

layer('interceptors along the chain - each sees the calls made through the interface it simulates through, whatever serves it, except its own', () => {
  const types = typeAt(logType(), 4);
  let s = initialActorState(types);
  for (const v of [1, 2, 3, 4, 5]) s = call(types, s, v, 'add', { n: v }).state;
  assert.is(call(types, s, 1, 'sum').reply, 15);
  // Keyed by the version each SO serves: past[k] is the past SO of k + 1, watching k + 1.
  assert.equal(s.past[1], ['add 2'], 'the past SO of v2 sees v2 callers, served by the past SO of v3');
  assert.equal(s.past[2], ['add 3'], 'the past SO of v3 sees v3 callers, served by the past SO of v4');
  assert.equal(s.past[3], ['add 4', 'add 5'], 'the past SO of v4 sees every call to the current object but its own: v4 callers, the future SO');
  assert.equal(s.future[5], ['add 1', 'add 2', 'add 3', 'add 4'], 'the future SO of v5 sees every call to the current object, also those at the end of a past chain');
  // Calls that reach the object without passing an SO's target interface are
  // not its to see (docs/transforms-and-simulation.md, "Chains").
});

layer('past SO chain - every SO state of the chain is persisted (past, older) and kept across restore and the next upgrade', () => {
  const at4 = typeAt(logType(), 4);
  let s = initialActorState(at4);
  for (const v of [2, 3, 4]) s = call(at4, s, v, 'add', { n: v }).state;
  const record = persist(s);
  assert.equal(record.so?.past, ['add 4'], 'the past SO serving v3');
  assert.equal(record.so?.older, { 1: ['add 2'], 2: ['add 3'] });
  const reloaded = restore(at4, record, 'k');
  assert.equal(reloaded.past, s.past);
  // The upgrade to v5: the TF seeds the past SO of v5; the SOs below keep their states.
  const at5 = typeAt(logType(), 5);
  const upgraded = restore(at5, record, 'k');
  assert.equal(upgraded.past, { 1: ['add 2'], 2: ['add 3'], 3: ['add 4'], 4: ['seeded by the TF'] });
  assert.equal(upgraded.future, {}, 'the future SO of v5 was consumed by the TF');
  assert.equal(persist(upgraded).so, { past: ['seeded by the TF'], older: { 1: ['add 2'], 2: ['add 3'], 3: ['add 4'] } });
  assert.is(call(at5, upgraded, 1, 'sum').reply, 9, 'v1 callers on a v5 node, through four past SOs');
});

layer('past SO chain - a rollback keeps the states of the past SOs still in service and drops the one of the version left behind', () => {
  const at4 = typeAt(logType(), 4);
  let s = initialActorState(at4);
  for (const v of [2, 3, 4]) s = call(at4, s, v, 'add', { n: v }).state;
  const rolledBack: TypeVersions = { ...typeAt(logType(), 3), rolledBackFrom: 4 };
  const down = restore(rolledBack, persist(s), 'k');
  assert.is(down.version, 3);
  assert.equal(down.past, { 1: ['add 2'], 2: ['add 3'] }, 'the past SOs of v2 and v3 serve the same callers as before');
  assert.equal(down.future, { 4: [], 5: [] }, 'future SOs start from their initial state');
  assert.is(call(rolledBack, down, 1, 'sum').reply, 9);
});

layer('refreshSOStates - the future SO of a newly known version starts from its initial state; an actor not yet carried keeps the state its TF needs', () => {
  const onlyV1 = typeAt(colorset.versions.slice(0, 1), 1);
  const known = typeAt(colorset.versions, 1);
  const s = refreshSOStates(known, initialActorState(onlyV1));
  assert.equal(s.future, { 2: {} }, 'the future SO of v2 comes into service with its initial state');
  const coloured = call(known, s, 2, 'insertColor', { x: 1, color: 'red' }).state;
  // The node switched to v2 (and then learned of v3) before this actor was carried.
  const upgraded = typeAt(colorsetChain.versions, 2);
  const kept = refreshSOStates(upgraded, coloured);
  assert.is(kept, coloured, 'an actor at an older version is left for the carry');
  const carried = restore(upgraded, persist(kept), 'k');
  assert.is(call(upgraded, carried, 2, 'getColor', { x: 1 }).reply, 'red', 'the TF got the colour the future SO kept');
});

layer('past SO chain - a compatible step passes the call on unchanged', () => {
  const versions = logType({ compatibleAt: 3 });
  const types = typeAt(versions, 4);
  assert.is(routeOf(types, 2), 'compatible×2');
  assert.is(routeOf(types, 1), 'past×3');
  let s = initialActorState(types);
  s = call(types, s, 2, 'add', { n: 2 }).state;
  s = call(types, s, 1, 'add', { n: 1 }).state;
  assert.is(call(types, s, 3, 'sum').reply, 3);
  assert.equal(s.past[1], ['add 2'], 'the past SO of v2 sees v2 callers, served by v3 (compatible)');
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
