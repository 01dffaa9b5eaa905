/**
 * The paper's identity condition for transform functions, as a property:
 * for any sequence of calls through both versions' interfaces on a node at
 * version i, the upgrade to i+1 is invisible to readers —
 *   what the past SO answers after  = what the old object answered before,
 *   what the new object answers after = what the future SO answered before.
 * Also over chains of past SOs: ColorSet over four versions, where a v1 reader
 * on a v4 node is served through the past SOs of v2, v3 and v4.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import fc from 'fast-check';
import type { AnyActorVersion } from '../../runtime/index.ts';
import { checkIdentity, checkIdentityPath, SimulatedActor, type SimulatedCall as Call } from 'molt/testing';
import { routeFor, type TypeVersions } from '../../runtime/internal.ts';
import { colorset } from '../fixtures/colorset.ts';
import { colorsetChain, colorsetV3, colorsetV4 } from '../fixtures/colorset-chain.ts';
import { counterChain } from '../fixtures/counter-chain.ts';

/** The identity condition for `from` → `from + 1`, over random call sequences (seeded: failures reproduce). */
function checkIdentityProperty(
  versions: readonly AnyActorVersion[],
  from: number,
  callArb: fc.Arbitrary<Call>,
  readsOld: Call[],
  readsNew: Call[],
  runs = 300,
): void {
  fc.assert(
    fc.property(fc.array(callArb, { maxLength: 40 }), (calls) => checkIdentity({ versions, from, calls, readsOld, readsNew })),
    { numRuns: runs, seed: 20261126 },
  );
}

const identity = suite('identity condition');
const element = fc.integer({ min: 0, max: 5 });

identity('ColorSet 1→2 - reads through both interfaces are unchanged by the upgrade', () => {
  const callArb = fc.oneof(
    element.map((x) => ({ version: 1, message: 'insert', request: { x } })),
    element.map((x) => ({ version: 1, message: 'delete', request: { x } })),
    fc.tuple(element, fc.constantFrom('red', 'green', 'blue')).map(([x, color]) => ({ version: 2, message: 'insertColor', request: { x, color } })),
    element.map((x) => ({ version: 2, message: 'delete', request: { x } })),
  );
  const xs = [0, 1, 2, 3, 4, 5];
  const readsOld = [...xs.map((x) => ({ version: 1, message: 'contains', request: { x } })), { version: 1, message: 'elements', request: {} }];
  const readsNew = [
    ...xs.map((x) => ({ version: 2, message: 'contains', request: { x } })),
    ...xs.map((x) => ({ version: 2, message: 'getColor', request: { x } })),
    { version: 2, message: 'elements', request: {} },
  ];
  checkIdentityProperty(colorset.versions, 1, callArb, readsOld, readsNew);
});

identity('Counter 1→2 and 2→3 - reads are unchanged by each upgrade', () => {
  const amount = fc.integer({ min: 0, max: 20 });
  const v1v2 = fc.oneof(
    amount.map((by) => ({ version: 1, message: 'increment', request: { by } })),
    fc.constant({ version: 1, message: 'reset', request: {} }),
    amount.map((by) => ({ version: 2, message: 'increment', request: { by } })),
    // No decrements here: the v2 TF refuses negative counts by design (tested elsewhere).
  );
  checkIdentityProperty(counterChain.versions, 1, v1v2, [{ version: 1, message: 'get', request: {} }], [
    { version: 2, message: 'get', request: {} },
    { version: 2, message: 'stats', request: {} },
  ]);
  const v2v3 = fc.oneof(
    amount.map((by) => ({ version: 2, message: 'increment', request: { by } })),
    amount.map((by) => ({ version: 2, message: 'decrement', request: { by } })),
    amount.map((a) => ({ version: 3, message: 'add', request: { amount: a } })),
  );
  checkIdentityProperty(counterChain.versions, 2, v2v3, [{ version: 2, message: 'get', request: {} }, { version: 2, message: 'stats', request: {} }], [
    { version: 3, message: 'total', request: {} },
  ]);
});

identity('the check can fail - a TF that drops colours breaks the identity condition', () => {
  const [v1, v2] = colorset.versions;
  const broken = v2!.from(v1!, {
    ...(v2!.upgrade as object),
    transform: ({ context }: { context: { items: number[] } }) => ({ context: { colors: Object.fromEntries(context.items.map((x) => [String(x), 'none'])) } }),
  } as never);
  const callArb = fc.tuple(element, fc.constantFrom('red', 'green')).map(([x, color]) => ({ version: 2, message: 'insertColor', request: { x, color } }));
  assert.throws(() =>
    checkIdentityProperty([v1!, broken], 1, callArb, [], [0, 1, 2].map((x) => ({ version: 2, message: 'getColor', request: { x } })), 50),
  );
});

// ---- ColorSet over four versions: chains of past SOs ------------------------

const colour = fc.constantFrom('red', 'green', 'blue');
/** Calls that change the set, by the version whose interface they use. */
const writesOf: Record<number, fc.Arbitrary<Call>> = {
  1: fc.oneof(element.map((x) => ({ version: 1, message: 'insert', request: { x } })), element.map((x) => ({ version: 1, message: 'delete', request: { x } }))),
  2: fc.oneof(
    fc.tuple(element, colour).map(([x, color]) => ({ version: 2, message: 'insertColor', request: { x, color } })),
    element.map((x) => ({ version: 2, message: 'delete', request: { x } })),
  ),
  3: fc.oneof(
    fc.tuple(element, colour).map(([x, color]) => ({ version: 3, message: 'put', request: { x, color } })),
    element.map((x) => ({ version: 3, message: 'delete', request: { x } })),
  ),
  4: fc.oneof(element.map((x) => ({ version: 4, message: 'insert', request: { x } })), element.map((x) => ({ version: 4, message: 'delete', request: { x } }))),
};
const xs = [0, 1, 2, 3, 4, 5];
/** Every read of each version. */
const readsOf: Record<number, Call[]> = {
  1: [...xs.map((x) => ({ version: 1, message: 'contains', request: { x } })), { version: 1, message: 'elements', request: {} }],
  2: [...xs.map((x) => ({ version: 2, message: 'getColor', request: { x } })), { version: 2, message: 'elements', request: {} }],
  3: [...xs.map((x) => ({ version: 3, message: 'colorOf', request: { x } })), { version: 3, message: 'size', request: {} }],
  4: [...xs.map((x) => ({ version: 4, message: 'contains', request: { x } })), { version: 4, message: 'size', request: {} }],
};
const writes = (...versions: number[]) => fc.oneof(...versions.map((v) => writesOf[v]!));
const readsAt = (...versions: number[]) => versions.flatMap((v) => readsOf[v]!);
const atV4: TypeVersions = { name: 'colorset', byVersion: new Map(colorsetChain.versions.map((v) => [v.version, v])), current: 4, retired: new Set() };

identity('ColorSet 3→4 - reads of v1, v2 and v3 (after: through three, two and one past SOs) and of v4 are unchanged', () => {
  assert.equal({ ...routeFor(atV4, 1), so: undefined }, { kind: 'past', so: undefined, target: 2, steps: 3 }, 'a v1 reader on the v4 node passes three past SOs');
  fc.assert(
    fc.property(fc.array(writes(1, 2, 3, 4), { maxLength: 40 }), (calls) =>
      checkIdentity({ versions: colorsetChain.versions, from: 3, calls, readsOld: readsAt(1, 2, 3), readsNew: readsAt(4) }),
    ),
    { numRuns: 300, seed: 20261206 },
  );
});

identity('ColorSet 1→4 in one go (TF chain) - v1 readers: natively before, through three past SOs after', () => {
  fc.assert(
    fc.property(fc.array(writes(1, 2, 3), { maxLength: 40 }), (calls) =>
      checkIdentity({ versions: colorsetChain.versions, from: 1, to: 4, calls, readsOld: readsAt(1), readsNew: readsAt(2, 3) }),
    ),
    { numRuns: 300, seed: 20261206 },
  );
});

identity('ColorSet 1→2→3→4 one upgrade at a time - every reader, with calls through every served interface between the upgrades', () => {
  const stage = (...versions: number[]) => fc.array(writes(...versions), { maxLength: 15 });
  fc.assert(
    fc.property(fc.tuple(stage(1, 2, 3), stage(1, 2, 3, 4), stage(1, 2, 3, 4)), (calls) =>
      checkIdentityPath({ versions: colorsetChain.versions, from: 1, to: 4, calls, reads: readsAt(1, 2, 3, 4) }),
    ),
    { numRuns: 300, seed: 20261206 },
  );
  // Then, on the v4 node, the v1 caller keeps going through the chain.
  const actor = new SimulatedActor(colorsetChain.versions, 1).apply([{ version: 2, message: 'insertColor', request: { x: 1, color: 'red' } }]);
  actor.upgradeTo(2).upgradeTo(3).upgradeTo(4).apply([{ version: 1, message: 'insert', request: { x: 2 } }]);
  assert.equal(actor.read([{ version: 1, message: 'elements' }, { version: 2, message: 'getColor', request: { x: 1 } }]), [[1, 2], 'red']);
});

identity('the check can fail - a v4 TF that drops the colours breaks the identity condition for v2 and v3 readers of a v4 node', () => {
  const forgetful = colorsetV4.from(colorsetV3, {
    ...(colorsetV4.upgrade as object),
    transform: ({ context }: { context: { colors: Record<string, string> } }) => ({ context: { items: Object.keys(context.colors).map(Number).sort((a, b) => a - b) } }),
  } as never);
  const versions = [...colorsetChain.versions.slice(0, 3), forgetful];
  const callArb = fc.tuple(element, fc.constantFrom('red', 'green')).map(([x, color]) => ({ version: 2, message: 'insertColor', request: { x, color } }));
  assert.throws(() =>
    fc.assert(fc.property(fc.array(callArb, { minLength: 1, maxLength: 10 }), (calls) => checkIdentity({ versions, from: 3, calls, readsOld: readsAt(2), readsNew: [] })), { numRuns: 50, seed: 1 }),
  );
  assert.throws(
    () => checkIdentity({ versions, from: 3, calls: [{ version: 2, message: 'insertColor', request: { x: 1, color: 'red' } }], readsOld: readsAt(2), readsNew: [] }),
    /identity condition broken on the old interface: .*"getColor".* answered "red" before the upgrade and "none" after/,
  );
});

identity.run();
