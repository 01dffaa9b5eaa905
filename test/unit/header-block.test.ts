import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import fc from 'fast-check';
import { headers } from '@nats-io/transport-node';
import { MsgHdrsImpl } from '@nats-io/nats-core/internal';
import { HeaderBlock } from '../../runtime/wire/header-block.ts';

const test = suite('header block');

const encoder = new TextEncoder();
const tokenChar = fc.constantFrom(...'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_'.split(''));
const key = fc.oneof(fc.constantFrom('Molt-Version', 'Molt-Message', 'Molt-Status', 'Molt-Correlation', 'molt-version'), fc.string({ unit: tokenChar, minLength: 1, maxLength: 12 }));
// Values as a client could send them: no CR or LF, any other character, spaces around.
const value = fc.string({ maxLength: 20 }).map((v) => v.replace(/[\r\n]/g, ''));
const status = fc.constantFrom('', ' 503', ' 408 Request Timeout', ' 100 Idle Heartbeat');

/** A header block as raw text, as it arrives on the wire. */
const block = fc.record({ status, entries: fc.array(fc.tuple(key, value, fc.constantFrom('', ' ', '  ')), { maxLength: 8 }) }).map(({ status, entries }) => {
  let text = `NATS/1.0${status}\r\n`;
  for (const [k, v, space] of entries) text += `${k}:${space}${v}\r\n`;
  return { text: `${text}\r\n`, keys: entries.map(([k]) => k) };
});

test('header block - reads every entry and the status code exactly as nats.js decodes them', () => {
  fc.assert(
    fc.property(block, ({ text, keys }) => {
      const bytes = encoder.encode(text);
      let reference: InstanceType<typeof MsgHdrsImpl>;
      try {
        reference = MsgHdrsImpl.decode(bytes);
      } catch {
        return; // nats.js refuses the block; Molt reads it leniently (checked below)
      }
      const ours = HeaderBlock.fromBytes(bytes);
      for (const name of [...keys, 'Molt-Version', 'Molt-Message', 'Absent']) {
        assert.is(ours.get(name) ?? '', reference.get(name), `entry ${name} of ${JSON.stringify(text)}`);
      }
      assert.is(ours.code, reference.code, `status of ${JSON.stringify(text)}`);
    }),
    { numRuns: 2000 },
  );
});

test('header block - a block nats.js encodes reads back the same values', () => {
  const h = headers(503, 'No Responders');
  h.set('Molt-Version', '12');
  h.append('Molt-Version', '13');
  h.set('Molt-Message', 'añadir');
  const ours = HeaderBlock.fromBytes((h as unknown as { encode(): Uint8Array }).encode());
  assert.is(ours.get('Molt-Version'), '12');
  assert.is(ours.get('Molt-Message'), 'añadir');
  assert.is(ours.get('molt-message'), undefined, 'keys are exact, as with nats.js get()');
  assert.is(ours.code, 503);
});

test('header block - hostile blocks are read without throwing', () => {
  for (const text of ['', 'NATS/1.0', 'garbage\r\nMolt-Version: 1\r\n', 'NATS/1.0\r\nMolt-Version: 1', 'NATS/1.0\r\n\u0000Molt-Version\u0001: x\r\n\r\n', 'NATS/1.0\r\nMolt-Version\r\n\r\n']) {
    const ours = HeaderBlock.fromBytes(encoder.encode(text));
    ours.get('Molt-Version');
    assert.type(ours.code, 'number');
  }
  assert.is(HeaderBlock.fromBytes(encoder.encode('NATS/1.0\r\nMolt-Version: 1')).get('Molt-Version'), '1', 'a block cut before its end still yields its last entry');
  assert.is(HeaderBlock.fromBytes(new Uint8Array([0xff, 0xfe, 0x0d, 0x0a])).code, 0);
});

test.run();
