/**
 * docs/conformance/vectors.json, run the way a client in another language
 * runs it: its calls sent in order from the bare NATS client to a live node of
 * test/fixtures/counter.ts, every reply compared with the file. And the file
 * is current: its keys, tokens and shards are the runtime's, and its calls are
 * those test/conformance/vectors.ts declares (regenerate with
 * `node --import tsx test/conformance/generate.ts`).
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { readFileSync } from 'node:fs';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { createNode, isMoltError, silentLogger, type MoltNode } from '../../runtime/index.ts';
import { encodeKey } from '../../runtime/internal.ts';
import service from '../fixtures/counter.ts';
import { startEmbeddedNats, type EmbeddedNats } from '../support/nats.ts';
import { callSpecs, comparable, invalidKeys, keyVectors, runVector, SETUP, VECTORS_FORMAT, type Vectors } from '../conformance/vectors.ts';

const vectors = JSON.parse(readFileSync(new URL('../../docs/conformance/vectors.json', import.meta.url), 'utf8')) as Vectors;
const test = suite<{ nats: EmbeddedNats; node: MoltNode; nc: NatsConnection }>('conformance vectors');

test.before(async (ctx) => {
  ctx.nats = await startEmbeddedNats();
  ctx.node = await createNode({ service, nats: { servers: ctx.nats.url }, logger: silentLogger, shards: vectors.setup.shards });
  ctx.nc = await connect({ servers: ctx.nats.url });
});

test.after(async (ctx) => {
  await ctx.nc.close();
  await ctx.node.stop();
  await ctx.nats.stop();
});

test('the file is current: format, setup, keys, tokens, hashes and shards are the runtime\'s', () => {
  assert.is(vectors.format, VECTORS_FORMAT);
  assert.equal(vectors.setup, SETUP);
  assert.equal(vectors.keys, keyVectors());
  assert.equal(vectors.invalidKeys, invalidKeys());
});

test('the file is current: its calls are the declared ones', () => {
  const declared = callSpecs();
  assert.equal(vectors.calls.map((c) => [c.name, c.request, c.unchecked]), declared.map((s) => [s.name, s.request, s.unchecked]));
  for (const [i, spec] of declared.entries()) {
    const expect = vectors.calls[i]!.expect;
    assert.is(expect.headers['Molt-Status'], spec.expectStatus, spec.name);
    if (spec.expectCode) assert.is(expect.error?.code, spec.expectCode, spec.name);
  }
});

test('the invalid keys are refused by the client before anything is sent', () => {
  for (const { key, why } of vectors.invalidKeys) {
    try {
      encodeKey(key);
      assert.unreachable(why);
    } catch (e) {
      assert.ok(isMoltError(e, 'InvalidKey'), `${why}: ${String(e)}`);
    }
  }
});

for (const run of ['first', 'second']) {
  const title = run === 'first' ? 'every call vector against a live node' : 'every call vector again, on the node that already served them once';
  test(title, async ({ nc }) => {
    const id = `${run}-${Date.now().toString(36)}`;
    for (const vector of vectors.calls) {
      const reply = await runVector(nc, vector.request, id);
      assert.equal(comparable(reply, vector.unchecked), vector.expect, `${vector.name}: ${vector.about}`);
    }
  });
}

test.run();
