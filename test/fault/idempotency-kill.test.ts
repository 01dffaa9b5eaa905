/**
 * Idempotent calls across node deaths: the remembered keys travel with the
 * actor's record, so a retry reaches the node that owns the actor after a
 * failover and is still answered with the first reply, never applied twice.
 *
 * 1. A call sent again after its actor's node was SIGKILLed (and the shard
 *    moved) answers the first reply; the state changed once.
 * 2. The same for a call whose reply only the actor's checkpoint holds (many
 *    keyed changes since: the state record holds only the newest).
 * 3. Counters under random SIGKILLs, with the typed client retrying every
 *    uncertain call under its idempotency key: each counter ends equal to the
 *    number of increments made, exactly — none lost, none doubled.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { createClient, type MoltClient } from '../../runtime/index.ts';
import { Kvm } from '@nats-io/kv';
import { connect } from '@nats-io/transport-node';
import { assignShards, bucketNames, DEFAULT_SHARDS, encodeKey, shardOf, stateKey } from '../../runtime/internal.ts';
import { createSuperjsonCodec } from '../../runtime/wire/codec.ts';
import { readCompact } from '../../runtime/host/remembered.ts';
import { counterV1 } from '../fixtures/counter.ts';
import { startEmbeddedNats, type ChildNode, type EmbeddedNats } from '../support/nats.ts';
import { startNodeProcess } from '../support/nodes.ts';
import { pacer } from '../support/load.ts';

const IDS = ['ik-a', 'ik-b', 'ik-c'];
const test = suite<{ nats: EmbeddedNats; nodes: Map<string, ChildNode>; client: MoltClient }>('idempotency under kills');

test.before(async (ctx) => {
  ctx.nats = await startEmbeddedNats();
  ctx.nodes = new Map(await Promise.all(IDS.map(async (id) => [id, await startNodeProcess(ctx.nats.url, id)] as const)));
  // Generous retries: every call must end with a reply, so the count is exact.
  ctx.client = await createClient({ service: 'counters', nats: { servers: ctx.nats.url }, timeoutMs: 2500, retryUnavailableMs: 10_000, uncertainRetries: 8 });
});

test.after(async (ctx) => {
  await ctx.client?.close().catch(() => undefined);
  await Promise.all([...(ctx.nodes?.values() ?? [])].map((n) => n.kill('SIGKILL')));
  await ctx.nats?.stop();
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
/** The shortest time between one counter's increments (see the last test). */
const MIN_CALL_GAP_MS = 2;

async function restart(ctx: { nats: EmbeddedNats; nodes: Map<string, ChildNode> }, id: string): Promise<void> {
  await ctx.nodes.get(id)!.kill('SIGKILL');
  ctx.nodes.set(id, await startNodeProcess(ctx.nats.url, id));
}

test('idempotency - a call sent again after its node was killed and the shard moved answers the first reply', async (ctx) => {
  const key = 'ik-moved';
  const c = ctx.client.actor(counterV1, key);
  await c.reset();
  assert.is(await c.increment({ by: 10 }, { idempotencyKey: 'transfer-1' }), 10);
  const owner = assignShards(IDS, DEFAULT_SHARDS)[shardOf(encodeKey(key), DEFAULT_SHARDS)]!;
  await ctx.nodes.get(owner)!.kill('SIGKILL');
  // Answered by the survivor that took the shard, from the record.
  assert.is(await c.increment({ by: 10 }, { idempotencyKey: 'transfer-1' }), 10);
  assert.is(await c.get(), 10, 'applied once');
  ctx.nodes.set(owner, await startNodeProcess(ctx.nats.url, owner));
});

test('idempotency - a call whose reply only the checkpoint holds, sent again after its node was killed, answers the first reply', async (ctx) => {
  const key = 'ik-deep';
  const c = ctx.client.actor(counterV1, key);
  await c.reset();
  assert.is(await c.increment({ by: 5 }, { idempotencyKey: 'deep-1' }), 5);
  for (let i = 0; i < 40; i++) await c.increment({ by: 1 });
  // The state record holds only the newest calls and names the checkpoint.
  const nc = await connect({ servers: ctx.nats.url });
  const kv = await new Kvm(nc).open(bucketNames('counters').state);
  const record = createSuperjsonCodec().decode((await kv.get(stateKey('counter', encodeKey(key))))!.value) as { ikc?: unknown[]; ikx?: unknown };
  await nc.close();
  assert.ok(Array.isArray(record.ikx), 'the state record names a checkpoint');
  assert.not.ok(readCompact(record.ikc ?? []).entries.some((e) => e.k === 'deep-1'), 'deep-1 is in the checkpoint only');
  const owner = assignShards(IDS, DEFAULT_SHARDS)[shardOf(encodeKey(key), DEFAULT_SHARDS)]!;
  await ctx.nodes.get(owner)!.kill('SIGKILL');
  assert.is(await c.increment({ by: 5 }, { idempotencyKey: 'deep-1' }), 5, 'answered from the checkpoint by the survivor');
  assert.is(await c.get(), 45, 'applied once');
  ctx.nodes.set(owner, await startNodeProcess(ctx.nats.url, owner));
});

test('idempotency - counters under random kills, retried by the client, end exactly at the number of increments', async (ctx) => {
  const keys = Array.from({ length: 8 }, (_, i) => `ik-count-${i}`);
  for (const key of keys) await ctx.client.actor(counterV1, key).reset();
  let running = true;
  const made = new Map<string, number>(keys.map((k) => [k, 0]));
  const failures: string[] = [];
  // Each counter takes at most about 500 keyed changes a second: an actor
  // taking more than its limit per 100 ms (640 a second at the default 64)
  // may answer a resend "forgotten" rather than risk running it twice
  // (docs/protocol.md, Idempotent calls), which this test does not measure.
  const workers = keys.map(async (key) => {
    const c = ctx.client.actor(counterV1, key);
    const pace = pacer(MIN_CALL_GAP_MS);
    while (running) {
      await pace();
      try {
        await c.increment({ by: 1 });
        made.set(key, made.get(key)! + 1);
      } catch (e) {
        failures.push(`${key}: ${String(e).slice(0, 160)}`);
      }
    }
  });
  for (let round = 0; round < 3; round++) {
    await sleep(1500);
    await restart(ctx, IDS[Math.floor(Math.random() * IDS.length)]!);
  }
  await sleep(1500);
  running = false;
  await Promise.all(workers);

  const finals = new Map<string, number>();
  for (const key of keys) finals.set(key, await ctx.client.actor(counterV1, key).get());
  const summary = keys.map((k) => `${k}: made ${made.get(k)}, final ${finals.get(k)}`).join('; ');
  console.log(`idempotency under kills: ${summary}; failures ${failures.length}`);
  assert.equal(failures, [], 'every increment got a reply in the end');
  for (const key of keys) assert.is(finals.get(key), made.get(key), `${key}: final equals the increments made (${summary})`);
  assert.ok([...made.values()].every((n) => n > 0));
});

test.run();
