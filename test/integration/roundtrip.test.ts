import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { createClient, createNode, isMoltError, silentLogger, type MoltClient, type MoltNode } from '../../runtime/index.ts';
import service, { counterV1, v1Volatile } from '../fixtures/counter.ts';
import { startEmbeddedNats, type EmbeddedNats } from '../support/nats.ts';

const test = suite<{ nats: EmbeddedNats; node: MoltNode; client: MoltClient }>('roundtrip');

test.before(async (ctx) => {
  ctx.nats = await startEmbeddedNats();
  ctx.node = await createNode({ service, nats: { servers: ctx.nats.url }, logger: silentLogger });
  ctx.client = await createClient({ service: 'counters', nats: { servers: ctx.nats.url } });
});

test.after(async (ctx) => {
  await ctx.client.close();
  await ctx.node.stop();
  await ctx.nats.stop();
});

test('ask - increments and replies with the new count', async ({ client }) => {
  const c = client.actor(counterV1, 'ask-1');
  assert.is(await c.increment({ by: 2 }), 2);
  assert.is(await c.increment({ by: 3 }), 5);
  assert.is(await c.get(), 5);
});

test('tell - is acknowledged and its effect is visible to the next ask', async ({ client }) => {
  const c = client.actor(counterV1, 'tell-1');
  await c.increment({ by: 7 });
  assert.is(await c.reset(), undefined);
  assert.is(await c.get(), 0);
});

test('actors - keys are independent, including keys that need encoding', async ({ client }) => {
  const a = client.actor(counterV1, 'user:42/ä b.c');
  const b = client.actor(counterV1, 'user-42');
  await a.increment({ by: 1 });
  await b.increment({ by: 10 });
  assert.is(await a.get(), 1);
  assert.is(await b.get(), 10);
});

test('concurrency - 200 concurrent increments on one actor all count', async ({ client }) => {
  const c = client.actor(counterV1, 'concurrent');
  const replies = await Promise.all(Array.from({ length: 200 }, () => c.increment({ by: 1 })));
  assert.is(await c.get(), 200);
  // Every reply is a distinct intermediate count: no two calls saw the same state.
  assert.is(new Set(replies).size, 200);
});

test('machine error - the message fails with ActorFailed and the state is unchanged', async ({ client }) => {
  const c = client.actor(counterV1, 'boom');
  await c.increment({ by: 4 });
  try {
    await c.boom();
    assert.unreachable('boom should fail');
  } catch (e) {
    assert.ok(isMoltError(e, 'ActorFailed'), String(e));
    assert.match((e as Error).message, /exploded on purpose/);
  }
  assert.is(await c.get(), 4);
  assert.is(await c.increment({ by: 1 }), 5);
});

test('volatile - a volatile type answers without touching KV', async ({ client, node }) => {
  const c = client.actor(v1Volatile, 'v');
  assert.is(await c.increment({ by: 3 }), 3);
  assert.is(node.status().types.cache?.current, 1);
});

test.run();
