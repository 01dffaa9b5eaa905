/**
 * The paper's identity condition for transform functions, as a property:
 * for any sequence of calls through both versions' interfaces on a node at
 * version i, the upgrade to i+1 is invisible to readers —
 *   what the past SO answers after  = what the old object answered before,
 *   what the new object answers after = what the future SO answered before.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import fc from 'fast-check';
import type { AnyActorVersion } from '../../runtime/index.ts';
import { checkIdentity, type SimulatedCall as Call } from 'molt/testing';
import { colorset } from '../fixtures/colorset.ts';
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

identity.run();
