/**
 * An actor's record carries its remembered calls (host/remembered.ts) with
 * every write; their JSON is made once per call and spliced into the record
 * (`Codec.encodeWithJsonField`). The bytes must be exactly those of encoding
 * the whole record, and anything that is not plain JSON must take the whole
 * encoding instead.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import fc from 'fast-check';
import { createSuperjsonCodec } from '../../runtime/wire/codec.ts';
import { rememberedJson, type RememberedCall } from '../../runtime/host/remembered.ts';

const test = suite('remembered calls: encoding');
const codec = createSuperjsonCodec();
const text = (bytes: Uint8Array) => Buffer.from(bytes).toString('utf8');

const key = fc.stringMatching(/^[!-~]{1,128}$/);
// JSON values as they come back from JSON (fc.jsonValue may hold -0, which JSON writes as 0).
const json = fc.jsonValue().map((v) => JSON.parse(JSON.stringify(v)) as unknown);
const entry: fc.Arbitrary<RememberedCall> = fc.record({ k: key, at: fc.integer({ min: 0, max: 2 ** 45 }), r: json });
const record = fc.record({ v: fc.integer({ min: 1, max: 9 }), value: json, context: json });

test('spliced remembered calls give exactly the bytes of encoding the whole record', () => {
  fc.assert(
    fc.property(record, fc.array(entry, { maxLength: 70 }), (rec, entries) => {
      const ik = rememberedJson(entries);
      assert.is(ik, JSON.stringify(entries));
      assert.is(text(codec.encodeWithJsonField!(rec, 'ik', ik!)!), text(codec.encode({ ...rec, ik: entries })));
    }),
    { numRuns: 500 },
  );
});

test('a reply or a record holding -0 is not spliced (superjson keeps -0 in meta)', () => {
  assert.is(rememberedJson([{ k: 'a', at: 1, r: -0 }]), undefined);
  assert.is(rememberedJson([{ k: 'a', at: Number.NaN, r: 1 }]), undefined);
  assert.is(codec.encodeWithJsonField!({ v: 1, context: { n: -0 } }, 'ik', '[]'), undefined);
});

test('an empty record and an empty list', () => {
  assert.is(text(codec.encodeWithJsonField!({}, 'ik', '[]')!), '{"json":{"ik":[]}}');
  assert.is(rememberedJson([]), '[]');
});

test('a reply that is not plain JSON (a Date, undefined) takes the whole encoding, which keeps it', () => {
  const at = new Date('2026-12-06T10:00:00.000Z');
  assert.is(rememberedJson([{ k: 'a', at: 1, r: at }]), undefined);
  assert.is(rememberedJson([{ k: 'a', at: 1, r: 5 }, { k: 'b', at: 2, r: undefined }]), undefined);
  const decoded = codec.decode(codec.encode({ v: 1, value: {}, context: {}, ik: [{ k: 'a', at: 1, r: at }] })) as { ik: RememberedCall[] };
  assert.ok(decoded.ik[0]!.r instanceof Date);
});

test('a record that needs superjson meta, or already has the field, is not spliced', () => {
  assert.is(codec.encodeWithJsonField!({ v: 1, context: { at: new Date(0) } }, 'ik', '[]'), undefined);
  assert.is(codec.encodeWithJsonField!({ v: 1, ik: [] }, 'ik', '[]'), undefined);
});

test.run();
