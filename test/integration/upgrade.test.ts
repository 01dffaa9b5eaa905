/**
 * In-place upgrade of a type on a live node, through NATS: callers of both
 * versions keep working across the switch, lazy migration through a TF chain,
 * TF failures contained to their actor, retirement.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { Kvm } from '@nats-io/kv';
import { createClient, createNode, createSuperjsonCodec, defineService, isMoltError, silentLogger, type MoltClient } from '../../runtime/index.ts';
import { counterChain, counterUpToV2, counterV2, counterV3 } from '../fixtures/counter-chain.ts';
import { counterV1 } from '../fixtures/counter.ts';
import { defineActorType } from '../../runtime/index.ts';
import { startEmbeddedNats, type EmbeddedNats } from '../support/nats.ts';

const onlyV1 = defineService('counters', [defineActorType('counter', [counterV1])]);
const upToV2 = defineService('counters', [counterUpToV2]);
const upToV3 = defineService('counters', [counterChain]);

const test = suite<{ nats: EmbeddedNats; client: MoltClient }>('upgrade');

test.before.each(async (ctx) => {
  ctx.nats = await startEmbeddedNats();
  ctx.client = await createClient({ service: 'counters', nats: { servers: ctx.nats.url } });
});
test.after.each(async (ctx) => {
  await ctx.client.close();
  await ctx.nats.stop();
});

async function readRecord(url: string, key: string): Promise<{ v: number; context: Record<string, unknown> } | undefined> {
  const { connect } = await import('@nats-io/transport-node');
  const nc = await connect({ servers: url });
  try {
    const kv = await new Kvm(nc).open('molt_counters_state');
    const entry = await kv.get(`counter.${key}`);
    return entry?.value.length ? (createSuperjsonCodec().decode(entry.value) as { v: number; context: Record<string, unknown> }) : undefined;
  } finally {
    await nc.close();
  }
}

test('live upgrade - callers of v1 and v2 keep working across the switch, nothing lost', async ({ nats, client }) => {
  const node = await createNode({ service: onlyV1, nats: { servers: nats.url }, logger: silentLogger });
  try {
    node.loadVersion(counterV2); // the future SO serves v2 callers from now on
    const keys = Array.from({ length: 20 }, (_, i) => `live-${i}`);
    const acked = new Map<string, number>(keys.map((k) => [k, 0]));
    const failures: string[] = [];
    let disallowed = 0;
    let running = true;
    const loop = async (worker: number) => {
      for (let i = 0; running; i++) {
        const key = keys[(worker * 7 + i) % keys.length]!;
        const useV2 = (worker + i) % 2 === 0;
        try {
          if (useV2) {
            await client.actor(counterV2, key).increment({ by: 1 });
            if (i % 5 === 0) await client.actor(counterV2, key).stats().catch((e) => (isMoltError(e, 'Disallowed') ? disallowed++ : failures.push(String(e))));
          } else await client.actor(counterV1, key).increment({ by: 1 });
          acked.set(key, acked.get(key)! + 1);
        } catch (e) {
          failures.push(String(e));
        }
      }
    };
    const workers = Array.from({ length: 16 }, (_, w) => loop(w));
    await new Promise((r) => setTimeout(r, 300));
    const result = await node.upgrade('counter', 2);
    assert.ok(result.transformed > 0, 'resident actors were carried forward eagerly');
    await new Promise((r) => setTimeout(r, 300));
    running = false;
    await Promise.all(workers);
    assert.equal(failures, [], 'no call failed except by design');
    assert.ok(disallowed > 0, 'stats through the v1 node was disallowed by design');
    for (const key of keys) {
      assert.is(await client.actor(counterV2, key).get(), acked.get(key), `counter ${key}`);
      assert.is(await client.actor(counterV1, key).get(), acked.get(key), `counter ${key} through the past SO`);
    }
    const record = await readRecord(nats.url, keys[0]!);
    assert.is(record?.v, 2, 'state is stamped with the new version');
    assert.is(node.status().types.counter?.current, 2);
  } finally {
    await node.stop();
  }
});

test('lazy migration - state written at v1 is carried through TF 1→2→3 when a v3 node loads it', async ({ nats, client }) => {
  const old = await createNode({ service: onlyV1, nats: { servers: nats.url }, logger: silentLogger });
  await client.actor(counterV1, 'lazy').increment({ by: 41 });
  await old.stop();
  assert.is((await readRecord(nats.url, 'lazy'))?.v, 1);
  const next = await createNode({ service: upToV3, nats: { servers: nats.url }, logger: silentLogger });
  try {
    assert.is(await client.actor(counterV3, 'lazy').total(), 41);
    assert.is(await client.actor(counterV3, 'lazy').add({ amount: 1 }), 42);
    const record = await readRecord(nats.url, 'lazy');
    assert.is(record?.v, 3);
    assert.equal(record?.context, { total: 42, ops: 1, label: '' });
    assert.is(await client.actor(counterV2, 'lazy').get(), 42, 'v2 callers through the past SO');
    assert.is(await client.actor(counterV1, 'lazy').get(), 42, 'v1 callers through the past SOs of v2 and v3');
  } finally {
    await next.stop();
  }
});

test('TF failure - only the failing actor is affected; its state stays at the old version', async ({ nats, client }) => {
  const node = await createNode({ service: upToV2, versions: { counter: 1 }, nats: { servers: nats.url }, logger: silentLogger });
  try {
    await client.actor(counterV1, 'negative').increment({ by: -5 });
    await client.actor(counterV1, 'fine').increment({ by: 5 });
    const result = await node.upgrade('counter', 2);
    assert.is(result.failed, 1);
    const err = await client.actor(counterV2, 'negative').get().then(
      () => undefined,
      (e) => e,
    );
    assert.ok(isMoltError(err, 'TransformFailed'), String(err));
    assert.is(err.retryable, false);
    assert.is(await client.actor(counterV2, 'fine').get(), 5);
    assert.is((await readRecord(nats.url, 'negative'))?.v, 1, 'untouched at v1');
    assert.equal((await readRecord(nats.url, 'negative'))?.context, { count: -5 });
    const failures = node.status().types.counter?.transformFailures ?? [];
    assert.is(failures.length, 1);
    assert.is(failures[0]?.key, 'negative');
  } finally {
    await node.stop();
  }
});

test('retire - callers of a retired version get VersionRetired', async ({ nats, client }) => {
  const node = await createNode({ service: upToV2, nats: { servers: nats.url }, logger: silentLogger });
  try {
    assert.is(await client.actor(counterV1, 'r').increment({ by: 1 }), 1);
    node.retire('counter', 1);
    const err = await client.actor(counterV1, 'r').get().then(() => undefined, (e) => e);
    assert.ok(isMoltError(err, 'VersionRetired'), String(err));
    assert.is(await client.actor(counterV2, 'r').get(), 1);
  } finally {
    await node.stop();
  }
});

test.run();
