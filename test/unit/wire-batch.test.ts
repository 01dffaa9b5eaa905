/**
 * The frames of the batched form (runtime/wire/batch.ts): what is encoded
 * decodes to the same calls and replies, and a malformed or oversized batch
 * is refused with InvalidHeader, never misread.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fc from 'fast-check';
import { decodeAnswer, decodeBatch, encodeAnswer, encodeBatch, MAX_BATCH_CALLS } from '../../runtime/wire/batch.ts';
import { isMoltError } from '../../runtime/errors.ts';

const ascii = fc.string({ unit: fc.constantFrom(...'abcdefghijklmnopqrstuvwxyz0123456789._-=>*'.split('')), minLength: 1, maxLength: 300 });
const bytes = fc.uint8Array({ maxLength: 2000 });

test('batch - calls round-trip', () => {
  fc.assert(
    fc.property(fc.array(fc.record({ subject: ascii, token: ascii, headers: bytes, body: bytes }), { maxLength: 40 }), (calls) => {
      const back = decodeBatch(encodeBatch(calls));
      assert.equal(back.map((c) => ({ ...c, headers: [...c.headers], body: [...c.body] })), calls.map((c) => ({ ...c, headers: [...c.headers], body: [...c.body] })));
    }),
  );
});

test('answer - replies round-trip', () => {
  fc.assert(
    fc.property(fc.array(fc.record({ token: ascii, headers: bytes, body: bytes }), { maxLength: 40 }), (replies) => {
      const back = decodeAnswer(encodeAnswer(replies));
      assert.equal(back.map((r) => ({ ...r, headers: [...r.headers], body: [...r.body] })), replies.map((r) => ({ ...r, headers: [...r.headers], body: [...r.body] })));
    }),
  );
});

test('batch - every truncation and any trailing byte is refused with InvalidHeader', () => {
  const whole = encodeBatch([
    { subject: 'molt.s.t.1.k', token: 'a', headers: new Uint8Array([1, 2, 3]), body: new Uint8Array([4, 5]) },
    { subject: 'molt.s.t.2.j', token: 'b', headers: new Uint8Array(), body: new Uint8Array([6]) },
  ]);
  for (let n = 0; n < whole.length; n++) {
    try {
      decodeBatch(whole.subarray(0, n));
      assert.unreachable(`a batch cut at ${n} bytes was read`);
    } catch (e) {
      assert.ok(isMoltError(e, 'InvalidHeader'), String(e));
    }
  }
  const longer = new Uint8Array(whole.length + 1);
  longer.set(whole);
  assert.throws(() => decodeBatch(longer), (e: unknown) => isMoltError(e, 'InvalidHeader'));
});

test('batch - more calls than the limit is refused before any is read', () => {
  const count = new Uint8Array([(MAX_BATCH_CALLS + 1) >> 8, (MAX_BATCH_CALLS + 1) & 0xff]);
  assert.throws(() => decodeBatch(count), (e: unknown) => isMoltError(e, 'InvalidHeader') && /more than 1024/.test((e as Error).message));
});

test.run();
