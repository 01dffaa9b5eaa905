/**
 * What an actor remembers of its keyed calls (runtime/host/remembered.ts):
 * the newest within the limit and window, and — for the calls it dropped —
 * a floor that lets it tell a resend it can safely run from one whose first
 * attempt it may have applied and forgotten.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fc from 'fast-check';
import { CLOCK_MARGIN_MS, RememberedCalls, type RememberedRecord } from '../../runtime/host/remembered.ts';

const WINDOW = 600_000;

function remembering(limit: number, calls: Array<[key: string, at: number]>): { calls: RememberedCalls; record: RememberedRecord | undefined } {
  const remembered = new RememberedCalls({ windowMs: WINDOW, limit });
  let record: RememberedRecord | undefined;
  for (const [key, at] of calls) {
    remembered.stage(key, `reply-${key}`, at);
    record = remembered.toRecord(at);
    remembered.commit(record);
  }
  return { calls: remembered, record };
}

test('remembered - keeps the newest within the limit; the floor is the newest dropped', () => {
  const { calls, record } = remembering(2, [['a', 1000], ['b', 2000], ['c', 3000]]);
  assert.equal(record?.ik.map((e) => e.k), ['b', 'c']);
  assert.is(record?.ikf, 1000);
  assert.is(calls.find('a'), undefined);
  assert.equal(calls.find('c'), { reply: 'reply-c' });
});

test('remembered - a resend first sent before the floor (with the clock margin) may have been forgotten', () => {
  const { calls } = remembering(2, [['a', 100_000], ['b', 101_000], ['c', 102_000]]);
  const now = 200_000;
  // The floor is 100 000 (when 'a' was applied). A first attempt sent at
  // 100 000 + margin or earlier may be 'a' itself: unknowable.
  assert.ok(calls.mayHaveForgotten(now - 100_000, now));
  assert.ok(calls.mayHaveForgotten(now - (100_000 + CLOCK_MARGIN_MS), now));
  // Sent later than that: had it been applied, it would still be remembered.
  assert.not.ok(calls.mayHaveForgotten(now - (100_000 + CLOCK_MARGIN_MS + 1), now));
});

test('remembered - older than the window is unknowable; nothing dropped and recent is safe', () => {
  const { calls } = remembering(8, [['a', 1000]]);
  assert.ok(calls.mayHaveForgotten(WINDOW, 5000), 'a first attempt older than the window');
  assert.not.ok(calls.mayHaveForgotten(1000, 5000), 'nothing was dropped: not remembered means not applied');
});

test('remembered - the floor travels in the record and ages out with the window', () => {
  const { record } = remembering(1, [['a', 1000], ['b', 2000]]);
  const reloaded = new RememberedCalls({ windowMs: WINDOW, limit: 1 });
  reloaded.load(record);
  assert.ok(reloaded.mayHaveForgotten(0, 1000 + CLOCK_MARGIN_MS), 'loaded with its floor');
  assert.not.ok(reloaded.mayHaveForgotten(0, 1000 + CLOCK_MARGIN_MS + 1));
  const later = reloaded.toRecord(2000 + WINDOW + 1);
  assert.equal(later, undefined, 'both the call and the floor are older than the window');
});

test('remembered - a volatile actor absorbing its calls in place, or remembering each at once, remembers exactly what writing them would', () => {
  fc.assert(
    fc.property(
      fc.array(fc.tuple(fc.constantFrom('a', 'b', 'c', 'd', 'e', 'f'), fc.integer({ min: 0, max: 400 })), { maxLength: 40 }),
      fc.integer({ min: 1, max: 4 }),
      (calls, limit) => {
        const options = { windowMs: 1000, limit };
        const written = new RememberedCalls(options);
        const absorbed = new RememberedCalls(options);
        const immediate = new RememberedCalls(options);
        let now = 0;
        // The record made before a change, and a copy of it: absorbing in place must not change a record already given out.
        let given: ReturnType<RememberedCalls['toRecord']>;
        let copy: unknown;
        let givenAtOnce: ReturnType<RememberedCalls['toRecord']>;
        let copyAtOnce: unknown;
        for (const [key, step] of calls) {
          now += step;
          for (const r of [written, absorbed]) if (!r.find(key)) r.stage(key, `reply-${key}-${now}`, now);
          if (!immediate.find(key)) immediate.remember(key, `reply-${key}-${now}`, now);
          if (written.hasStaged) written.commit(written.toRecord(now));
          absorbed.absorbStaged(now);
          assert.equal(given, copy, 'a record given out before the change');
          assert.equal(givenAtOnce, copyAtOnce, 'a record given out before the change (remembered at once)');
          given = absorbed.toRecord(now);
          copy = given && structuredClone(given);
          assert.equal(given, written.toRecord(now));
          givenAtOnce = immediate.toRecord(now);
          copyAtOnce = givenAtOnce && structuredClone(givenAtOnce);
          assert.equal(givenAtOnce, given);
          assert.equal(immediate.find(key)?.reply, written.find(key)?.reply);
        }
      },
    ),
    { numRuns: 300 },
  );
});

test('remembered - committing the record toRecord just made (its change known) remembers what committing any copy of it does', () => {
  // The first commits the very record it was given, so the change is applied without comparing the lists; the
  // second commits a copy of the list, compared call by call. Sometimes a later toRecord comes between, and the
  // earlier record is committed: then neither knows the change. Keys come again, as a stored key staged anew would.
  fc.assert(
    fc.property(
      fc.array(fc.tuple(fc.array(fc.constantFrom('a', 'b', 'c', 'd', 'e', 'f', 'g'), { minLength: 1, maxLength: 3 }), fc.integer({ min: 0, max: 400 }), fc.boolean()), { maxLength: 40 }),
      fc.integer({ min: 1, max: 5 }),
      (batches, limit) => {
        const options = { windowMs: 1000, limit };
        const known = new RememberedCalls(options);
        const compared = new RememberedCalls(options);
        let now = 0;
        for (const [keys, step, again] of batches) {
          now += step;
          for (const key of keys) for (const r of [known, compared]) r.stage(key, `reply-${key}-${now}`, now);
          const record = known.toRecord(now);
          if (again) known.toRecord(now + 1);
          const copy = compared.toRecord(now);
          known.commit(record);
          compared.commit(copy && { ...copy, ik: [...copy.ik] });
          assert.equal(known.toRecord(now), compared.toRecord(now));
          for (const key of ['a', 'b', 'c', 'd', 'e', 'f', 'g']) assert.equal(known.find(key), compared.find(key));
        }
      },
    ),
    { numRuns: 400 },
  );
});

test.run();
