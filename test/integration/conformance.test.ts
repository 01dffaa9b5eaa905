/**
 * docs/conformance/vectors.json, run the way a client in another language
 * runs it: each group's calls sent in order from the bare NATS client to a
 * live node set up as the group says, every reply compared with the file.
 * And the file is current: its keys, tokens and shards are the runtime's, and
 * its calls are those test/conformance/vectors.ts declares (regenerate with
 * `node --import tsx test/conformance/generate.ts`).
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { readFileSync } from 'node:fs';
import { connect } from '@nats-io/transport-node';
import { isMoltError } from '../../runtime/index.ts';
import { encodeKey } from '../../runtime/internal.ts';
import { startEmbeddedNats } from '../support/nats.ts';
import { comparable, groupSpecs, invalidKeys, keyVectors, NOTES, runVector, VECTORS_FORMAT, type Vectors } from '../conformance/vectors.ts';
import { startSetupNode } from '../conformance/generate.ts';

const vectors = JSON.parse(readFileSync(new URL('../../docs/conformance/vectors.json', import.meta.url), 'utf8')) as Vectors;
const test = suite('conformance vectors');

test('the file is current: format, notes, keys, tokens, hashes and shards are the runtime\'s', () => {
  assert.is(vectors.format, VECTORS_FORMAT);
  assert.equal(vectors.notes, NOTES);
  assert.equal(vectors.keys, keyVectors());
  assert.equal(vectors.invalidKeys, invalidKeys());
});

test('the file is current: its groups and calls are the declared ones', () => {
  const declared = groupSpecs();
  assert.equal(vectors.groups.map((g) => [g.name, g.about, g.setup]), declared.map((g) => [g.name, g.about, g.setup]));
  declared.forEach((group, gi) => {
    const calls = vectors.groups[gi]!.calls;
    assert.equal(calls.map((c) => [c.name, c.about, c.request, c.unchecked]), group.calls.map((s) => [s.name, s.about, s.request, s.unchecked]));
    group.calls.forEach((spec, i) => {
      assert.is(calls[i]!.expect.headers['Molt-Status'], spec.expectStatus, spec.name);
      if (spec.expectCode) assert.is(calls[i]!.expect.error?.code, spec.expectCode, spec.name);
    });
  });
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

for (const group of vectors.groups) {
  test(`group '${group.name}': every call against a live node, twice (the second time on a node that already served them)`, async () => {
    const nats = await startEmbeddedNats();
    const node = await startSetupNode(group.setup, nats.url);
    const nc = await connect({ servers: nats.url });
    try {
      for (const run of ['first', 'second']) {
        const id = `${run}-${Date.now().toString(36)}`;
        for (const vector of group.calls) {
          const reply = await runVector(nc, vector.request, id);
          assert.equal(comparable(reply, vector.unchecked), vector.expect, `${run} run, ${group.name}/${vector.name}: ${vector.about}`);
        }
      }
    } finally {
      await nc.close();
      await node.stop();
      await nats.stop();
    }
  });
}

test.run();
