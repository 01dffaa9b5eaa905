/**
 * Crash safety of the in-place upgrade (issue 3): SIGKILL a node process
 * while it carries 10,000 resident actors through the TF; restart it with the
 * same id. Every actor must be at exactly one version with its acknowledged
 * state, the TF must have run exactly once for each, and the upgrade completes.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { connect } from '@nats-io/transport-node';
import { Kvm } from '@nats-io/kv';
import { createClient, createSuperjsonCodec } from '../../runtime/index.ts';
import { counterV1 } from '../fixtures/counter.ts';
import { counterV2 } from '../fixtures/counter-v2.ts';
import { spawnScript, startEmbeddedNats, eventually } from '../support/nats.ts';

const test = suite('upgrade crash');
const ACTORS = 10_000;

test('SIGKILL mid-upgrade of 10,000 actors - every actor at one version, nothing lost, TF run once', async () => {
  const nats = await startEmbeddedNats();
  const client = await createClient({ service: 'counters', nats: { servers: nats.url }, timeoutMs: 20_000 });
  const nc = await connect({ servers: nats.url });
  try {
    let node = spawnScript('test/fixtures/upgrading-node.ts', [nats.url, 'crash-node', '1']);
    await node.waitFor(/ready crash-node at 1/);

    // Acknowledged state: 10,000 counters, each incremented to a known value.
    const expected = (i: number) => (i % 7) + 1;
    for (let i = 0; i < ACTORS; i += 500) {
      await Promise.all(
        Array.from({ length: Math.min(500, ACTORS - i) }, (_, j) => client.actor(counterV1, `a${i + j}`).increment({ by: expected(i + j) })),
      );
    }

    node.process.kill('SIGUSR2');
    await node.waitFor(/upgrade started with 10000 resident actors/);
    // Let the TF pass get under way, then kill the process without warning.
    const kv = await new Kvm(nc).open('molt_counters_state');
    const codec = createSuperjsonCodec();
    const versionsInKv = async () => {
      const counts = new Map<number, number>();
      for await (const key of await kv.keys('counter.>')) {
        const entry = await kv.get(key);
        const v = (codec.decode(entry!.value) as { v: number }).v;
        counts.set(v, (counts.get(v) ?? 0) + 1);
      }
      return counts;
    };
    await eventually(async () => {
      const entry = await kv.get('counter.a0');
      return entry ? (codec.decode(entry.value) as { v: number }).v === 2 : false;
    }, 'the first actors reach version 2');
    await node.kill('SIGKILL');
    const atCrash = await versionsInKv();
    assert.is((atCrash.get(1) ?? 0) + (atCrash.get(2) ?? 0), ACTORS, `every actor stored once: ${JSON.stringify([...atCrash])}`);
    assert.ok((atCrash.get(1) ?? 0) > 0, `killed mid-way: some actors still at v1 (${JSON.stringify([...atCrash])})`);
    assert.ok((atCrash.get(2) ?? 0) > 0, 'killed mid-way: some actors already at v2');

    // Restart with the same id: the node resumes at version 2 (its UDB record says so).
    node = spawnScript('test/fixtures/upgrading-node.ts', [nats.url, 'crash-node', '1']);
    await node.waitFor(/ready crash-node at 2/);
    for (let i = 0; i < ACTORS; i += 500) {
      const values = await Promise.all(Array.from({ length: Math.min(500, ACTORS - i) }, (_, j) => client.actor(counterV2, `a${i + j}`).get()));
      values.forEach((value, j) => assert.is(value, expected(i + j), `actor a${i + j}`));
    }
    // TF exactly once: an actor carried lazily or eagerly records the one TF it went through.
    const sample = await Promise.all([0, 1, 4999, 9999].map((i) => client.actor(counterV2, `a${i}`).via()));
    for (const via of sample) assert.equal(via, ['tf2']);
    // v1 callers are still served, through version 2 which is compatible with them.
    assert.is(await client.actor(counterV1, 'a3').get(), expected(3));
    await node.kill('SIGTERM');
  } finally {
    await client.close();
    await nc.close();
    await nats.stop();
  }
});

test.run();
