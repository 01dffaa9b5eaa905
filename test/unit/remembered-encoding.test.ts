/**
 * An actor's record carries its remembered calls (host/remembered.ts) with
 * every write, in the compact form `ikc` where it can hold them: keys written
 * as what they share with the previous call's key plus the rest, times as
 * differences. Its text is reused from one write to the next and spliced into
 * the record (`Codec.encodeWithJsonFields`). What a record holds must read back
 * exactly — the calls, their order, their replies and the floor — whatever the
 * keys, times and replies; records in the `ik` form (written before `ikc`)
 * must still load; and a reader that knows only `ik` must never run a
 * remembered call a second time.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import fc from 'fast-check';
import { createSuperjsonCodec } from '../../runtime/wire/codec.ts';
import { CLOCK_MARGIN_MS, CompactCache, compactRememberedJson, readCompact, RememberedCalls, type RememberedCall, type RememberedRecord } from '../../runtime/host/remembered.ts';

const test = suite('remembered calls: encoding');
const codec = createSuperjsonCodec();
const text = (bytes: Uint8Array) => Buffer.from(bytes).toString('utf8');
const WINDOW = 600_000;

// Keys as callers send them (visible ASCII), often sharing a prefix as the client's default keys do.
const key = fc.oneof(
  fc.stringMatching(/^[!-~]{1,128}$/),
  fc.tuple(fc.constantFrom('AbCdEfGhIjKl', 'AbCdEfGhIjKm', 'x"\\'), fc.integer({ min: 0, max: 5000 })).map(([p, n]) => `${p}${n.toString(36)}`),
);
// JSON values as they come back from JSON (fc.jsonValue may hold -0, which JSON writes as 0).
// Without the keys superjson refuses (`__proto__`, `constructor`, `prototype`):
// a record whose calls need its meta (a tell's reply is `undefined`) cannot be
// encoded with them at all, so no stored record holds them.
const REFUSED_KEY = /"(__proto__|constructor|prototype)":/;
const json = fc
  .jsonValue()
  .map((v) => JSON.stringify(v))
  .filter((text) => !REFUSED_KEY.test(text))
  .map((text) => JSON.parse(text) as unknown);
const at = fc.oneof(fc.integer({ min: 1_700_000_000_000, max: 1_800_000_000_000 }), fc.integer({ min: Number.MIN_SAFE_INTEGER, max: Number.MAX_SAFE_INTEGER }));
// A reply, or none (a tell's).
const reply = fc.option(json, { nil: undefined, freq: 4 });
const entry: fc.Arbitrary<RememberedCall> = fc.record({ k: key, at, r: reply }).map(({ k, at, r }) => ({ k, at, r }));
const state = fc.record({ v: fc.integer({ min: 1, max: 9 }), value: json, context: json });

function decoded(bytes: Uint8Array): Record<string, unknown> {
  return codec.decode(bytes) as Record<string, unknown>;
}

test('the compact form reads back exactly the calls, in order, and the floor', () => {
  fc.assert(
    fc.property(fc.array(entry, { maxLength: 70 }), fc.option(at, { nil: undefined }), (ik, ikf) => {
      const record: RememberedRecord = ikf === undefined ? { ik } : { ik, ikf };
      const compact = compactRememberedJson(record);
      if (compact === undefined) {
        // Only times too far apart for an exact difference keep a record out of the compact form.
        assert.ok(ik.some((e, i) => i > 0 && !Number.isSafeInteger(e.at - ik[i - 1]!.at)));
        return;
      }
      const back = readCompact(JSON.parse(compact!) as unknown[]);
      assert.equal(back.entries, ik);
      assert.is(back.floor, ikf);
    }),
    { numRuns: 500 },
  );
});

test('spliced into the record, the compact form gives exactly the bytes of encoding the whole record', () => {
  fc.assert(
    fc.property(state, fc.array(entry, { maxLength: 70 }), (rec, ik) => {
      const bytes = new RememberedCalls({ windowMs: WINDOW, limit: 64 }).encodeRecord(codec, rec, { ik });
      const json = compactRememberedJson({ ik });
      if (json === undefined) {
        // Times too far apart for an exact difference: the ik form.
        assert.is(text(bytes), text(codec.encode({ ...rec, ik })));
        return;
      }
      const compact = JSON.parse(json) as unknown;
      const floor = ik.length === 0 ? undefined : Math.max(...ik.map((e) => e.at));
      assert.is(text(bytes), text(codec.encode(floor === undefined ? { ...rec, ikc: compact } : { ...rec, ikf: floor, ikc: compact })));
    }),
    { numRuns: 300 },
  );
});

test('what a node remembers after its writes is what a node loading the last of them remembers', () => {
  // Calls staged, written and committed one batch at a time (trimmed by the
  // window and the limit), each record encoded with the text reused from the
  // previous write: a fresh load of that record remembers the same calls and floor.
  fc.assert(
    fc.property(
      fc.array(fc.tuple(fc.array(fc.tuple(key, reply), { minLength: 1, maxLength: 3 }), fc.integer({ min: 0, max: 400 })), { minLength: 1, maxLength: 50 }),
      fc.integer({ min: 1, max: 6 }),
      (batches, limit) => {
        const options = { windowMs: 1000, limit };
        const writer = new RememberedCalls(options);
        let now = 1_800_000_000_000;
        for (const [calls, step] of batches) {
          now += step;
          for (const [k, r] of calls) if (!writer.find(k)) writer.stage(k, r, now);
          const written = writer.toRecord(now);
          const bytes = writer.encodeRecord(codec, { v: 1, value: {}, context: { n: now } }, written);
          writer.commit(written);
          const reader = new RememberedCalls(options);
          reader.load(decoded(bytes));
          assert.equal(reader.toRecord(now), writer.toRecord(now));
          assert.equal(written === undefined ? undefined : readCompact(decoded(bytes).ikc as unknown[]).entries, written?.ik);
          // The text reused from the previous write is the text made from scratch.
          if (written) assert.equal(decoded(bytes).ikc, JSON.parse(compactRememberedJson(written)!));
        }
      },
    ),
    { numRuns: 300 },
  );
});

test('a record in the ik form (written before ikc) loads: its calls answer, its floor holds', () => {
  const record = codec.decode(
    codec.encode({ v: 1, value: {}, context: { count: 2 }, ik: [{ k: 'order-1', at: 1_000_000, r: 1 }, { k: 'order-2', at: 1_000_500, r: { total: 2 } }], ikf: 999_000 }),
  ) as Record<string, unknown>;
  const calls = new RememberedCalls({ windowMs: 10 * WINDOW, limit: 64 });
  calls.load(record);
  assert.equal(calls.find('order-1'), { reply: 1 });
  assert.equal(calls.find('order-2'), { reply: { total: 2 } });
  assert.ok(calls.mayHaveForgotten(2_000_000 - 999_000, 2_000_000), 'first sent when the floor call was applied');
  assert.not.ok(calls.mayHaveForgotten(2_000_000 - (999_000 + CLOCK_MARGIN_MS + 1), 2_000_000));
  // Written again, it takes the compact form and loses nothing.
  const again = new RememberedCalls({ windowMs: 10 * WINDOW, limit: 64 });
  again.load(decoded(calls.encodeRecord(codec, { v: 1, value: {}, context: { count: 2 } }, calls.toRecord(1_001_000))));
  assert.equal(again.toRecord(1_001_000), calls.toRecord(1_001_000));
});

test('a reader that knows only the ik form finds no call, and answers every resend of one OutcomeUnknown', () => {
  fc.assert(
    fc.property(fc.array(fc.tuple(key, fc.integer({ min: 0, max: 50 })), { minLength: 1, maxLength: 20 }), fc.integer({ min: 1, max: 8 }), (calls, limit) => {
      const writer = new RememberedCalls({ windowMs: WINDOW, limit });
      let now = 1_800_000_000_000;
      for (const [k, step] of calls) {
        now += step;
        if (!writer.find(k)) writer.stage(k, 'reply', now);
        writer.commit(writer.toRecord(now));
      }
      const record = decoded(writer.encodeRecord(codec, { v: 1, value: {}, context: {} }, writer.toRecord(now)));
      // What Molt before `ikc` read of a record: `ik` and `ikf` only.
      const older = new RememberedCalls({ windowMs: WINDOW, limit });
      older.load({ ik: record.ik, ikf: record.ikf });
      for (const e of writer.toRecord(now)!.ik) {
        assert.is(older.find(e.k), undefined);
        // Its first attempt was sent no later than it was applied.
        assert.ok(older.mayHaveForgotten(now - e.at, now), `a resend of ${e.k} is not run again`);
      }
    }),
    { numRuns: 200 },
  );
});

test('a reply that is not plain JSON (a Date) takes the ik form, which keeps it; a call without a reply stays compact', () => {
  const when = new Date('2026-12-06T10:00:00.000Z');
  const calls = new RememberedCalls({ windowMs: WINDOW, limit: 64 });
  calls.stage('a', 5, 1000);
  calls.stage('b', when, 1001);
  calls.stage('c', undefined, 1002);
  const record = decoded(calls.encodeRecord(codec, { v: 1, value: {}, context: {} }, calls.toRecord(1002)));
  assert.is(record.ikc, undefined);
  const back = new RememberedCalls({ windowMs: WINDOW, limit: 64 });
  back.load(record);
  assert.ok(back.find('b')?.reply instanceof Date);
  assert.equal(back.find('c'), { reply: undefined });
  assert.equal(back.find('a'), { reply: 5 });
  const tells = new RememberedCalls({ windowMs: WINDOW, limit: 64 });
  tells.stage('t-1', undefined, 1000);
  tells.stage('t-2', 2, 1001);
  assert.equal(decoded(tells.encodeRecord(codec, { v: 1, value: {}, context: {} }, tells.toRecord(1001))).ikc, [null, [0, 't-1', 1000], [2, '2', 1, 2]]);
});

test('a time that is not a safe integer takes the ik form; a state that needs superjson keeps the compact form', () => {
  assert.is(compactRememberedJson({ ik: [{ k: 'a', at: 1.5, r: 1 }] }), undefined);
  assert.is(compactRememberedJson({ ik: [{ k: 'a', at: 1, r: -0 }] }), undefined);
  assert.is(compactRememberedJson({ ik: [{ k: 'a', at: Number.MIN_SAFE_INTEGER, r: 1 }, { k: 'b', at: Number.MAX_SAFE_INTEGER, r: 1 }] }), undefined, 'a difference beyond a safe integer');
  const calls = new RememberedCalls({ windowMs: WINDOW, limit: 64 });
  calls.stage('a', 1, 1000);
  const record = decoded(calls.encodeRecord(codec, { v: 1, value: {}, context: { since: new Date(0) } }, calls.toRecord(1000)));
  assert.ok((record.context as { since: unknown }).since instanceof Date);
  assert.equal(record.ikc, [null, [0, 'a', 1000, 1]]);
});

test('a malformed call in the compact form ends the list; those before it are read', () => {
  assert.equal(readCompact([5, [0, 'order-1', 100, 1], [6, '2', 3, 2], ['x'], [0, 'later', 1, 3]]), {
    entries: [
      { k: 'order-1', at: 100, r: 1 },
      { k: 'order-2', at: 103, r: 2 },
    ],
    floor: 5,
  });
  assert.equal(readCompact([null, [9, 'a', 1, 1]]).entries, [], 'a shared prefix longer than the previous key');
});

test('the compact text kept in one buffer, extended and trimmed write after write, is the text made from scratch', () => {
  // A range of the calls moves forward (a write adds calls at its end; a trim or a checkpoint drops some at its
  // start), given as a list and the index it starts at, as a state record or a checkpoint gives it.
  fc.assert(
    fc.property(
      // Replies and keys beyond ASCII too: the text is kept as UTF-8 bytes.
      fc.array(fc.oneof(entry, fc.record({ k: fc.oneof(key, fc.string({ unit: 'binary', minLength: 1, maxLength: 8 })), at, r: fc.string({ unit: 'binary', maxLength: 12 }) })), { minLength: 1, maxLength: 80 }),
      fc.array(fc.tuple(fc.integer({ min: 0, max: 20 }), fc.integer({ min: 0, max: 6 }), fc.integer({ min: 0, max: 3 })), { minLength: 1, maxLength: 40 }),
      fc.option(fc.integer({ min: 0, max: 1_800_000_000_000 }), { nil: undefined }),
      (calls, steps, floor) => {
        // Times in order, a step of at most a day, so every difference is exact.
        let t = 1_700_000_000_000;
        const ik = calls.map((e) => ({ ...e, at: (t += Math.abs(e.at) % 86_400_000) }));
        const cache = new CompactCache();
        let lo = 0;
        let hi = 0;
        for (const [grow, drop, before] of steps) {
          hi = Math.min(ik.length, hi + grow);
          lo = Math.min(hi, lo + drop);
          // The same calls, in a list that holds `before` others ahead of them.
          const from = Math.min(before, lo);
          const list = ik.slice(lo - from, hi);
          const text = cache.json(list, from, floor);
          const fresh = compactRememberedJson(floor === undefined ? { ik: ik.slice(lo, hi) } : { ik: ik.slice(lo, hi), ikf: floor });
          assert.is(text, fresh);
          if (text !== undefined) assert.equal(readCompact(JSON.parse(text) as unknown[]).entries, ik.slice(lo, hi));
        }
      },
    ),
    { numRuns: 500 },
  );
});

test('a state with fields named as the calls are written (ik, ikc, ikf, ikx) does not change what the record remembers', () => {
  const calls = new RememberedCalls({ windowMs: WINDOW, limit: 64 });
  calls.stage('order-1', 1, 1000);
  calls.stage('order-2', 2, 1001);
  const state = { v: 1, value: {}, context: {}, ik: [{ k: 'stale', at: 5, r: 0 }], ikc: [null, [0, 'stale', 5]], ikf: 2000, ikx: [7, null] };
  const record = decoded(calls.encodeRecord(codec, state, calls.toRecord(1001)));
  const back = new RememberedCalls({ windowMs: WINDOW, limit: 64 });
  assert.is(back.load(record), undefined, 'no checkpoint named');
  assert.equal(back.toRecord(1001), calls.toRecord(1001));
  assert.is(back.find('stale'), undefined);
  assert.is(back.mayHaveForgotten(0, 1001), false, 'no floor beyond the calls');
});

test.run();
