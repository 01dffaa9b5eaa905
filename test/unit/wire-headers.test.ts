import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { headers } from '@nats-io/transport-node';
import { createSuperjsonCodec } from '../../runtime/index.ts';
import { fixedHeaders, utf8 } from '../../runtime/wire/codec.ts';

const test = suite('wire');

const entries: Array<[string, string]> = [
  ['Molt-Version', '2'],
  ['Molt-Message', 'inc'],
  ['Molt-Protocol', '1'],
];

test('fixedHeaders - encodes to exactly the bytes of a fresh header block', () => {
  const fresh = headers();
  for (const [k, v] of entries) fresh.set(k, v);
  const fixed = fixedHeaders(entries);
  const encode = (h: unknown) => (h as { encode(): Uint8Array }).encode();
  assert.equal(encode(fixed), encode(fresh));
  assert.equal(encode(fixed), encode(fixed));
  assert.is(fixed.get('Molt-Message'), 'inc');
  assert.equal(fixed.keys(), fresh.keys());
});

test('fixedHeaders - a shared block refuses changes', () => {
  const fixed = fixedHeaders(entries);
  assert.throws(() => fixed.set('Molt-Version', '3'), /shared/);
  assert.throws(() => fixed.append('X', 'y'), /shared/);
  assert.throws(() => fixed.delete('Molt-Version'), /shared/);
  assert.is(fixed.get('Molt-Version'), '2');
});

test('codec - encodes to plain Uint8Arrays with the UTF-8 bytes', () => {
  const codec = createSuperjsonCodec();
  const bytes = codec.encode({ text: 'ä€😀', n: 1 });
  assert.is(Object.getPrototypeOf(bytes), Uint8Array.prototype);
  assert.equal(bytes, new TextEncoder().encode('{"json":{"text":"ä€😀","n":1}}'));
  assert.equal(codec.decode(bytes), { text: 'ä€😀', n: 1 });
  assert.equal(utf8('ab'), new Uint8Array([97, 98]));
});

test.run();
