/**
 * Idempotent calls (docs/protocol.md, `Molt-Idempotency-Key`): a
 * state-changing call sent again with the same key — one after the other, ten
 * at once, from the bare NATS client or the typed client, after the actor was
 * passivated, after the type was upgraded in place — changes the state once
 * and answers the first reply every time. Calls that change nothing are not
 * remembered; a malformed key is refused; the remembered keys live in the
 * actor's record, within the node's window and limit.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { connect, headers as natsHeaders, type NatsConnection } from '@nats-io/transport-node';
import { Kvm } from '@nats-io/kv';
import { createClient, createNode, isMoltError, silentLogger, type MoltClient, type MoltNode } from '../../runtime/index.ts';
import { bucketNames, callSubject, DEFAULT_SHARDS, encodeKey, stateKey } from '../../runtime/internal.ts';
import { createSuperjsonCodec } from '../../runtime/wire/codec.ts';
import { readCompact } from '../../runtime/host/remembered.ts';
import { counterV1 } from '../fixtures/counter.ts';
import upgradable, { counterV2 } from '../fixtures/counter-v2.ts';
import { startEmbeddedNats, type EmbeddedNats } from '../support/nats.ts';

interface Ctx {
  nats: EmbeddedNats;
  node: MoltNode;
  client: MoltClient;
  nc: NatsConnection;
}

const test = suite<Ctx>('idempotency');

async function startNode(url: string, passivateAfterMs = 60_000): Promise<MoltNode> {
  return createNode({ service: upgradable, nats: { servers: url }, versions: { counter: 1 }, passivateAfterMs, logger: silentLogger, idempotency: { windowMs: 60_000, limit: 8 } });
}

test.before(async (ctx) => {
  ctx.nats = await startEmbeddedNats();
  ctx.node = await startNode(ctx.nats.url);
  ctx.client = await createClient({ service: 'counters', nats: { servers: ctx.nats.url } });
  ctx.nc = await connect({ servers: ctx.nats.url });
});

test.after(async (ctx) => {
  await ctx.nc?.close();
  await ctx.client?.close();
  await ctx.node?.stop();
  await ctx.nats?.stop();
});

/** One increment with the bare NATS client, as a client in another language sends it. */
async function rawIncrement(nc: NatsConnection, key: string, idempotencyKey: string | undefined, resendAgeMs?: number): Promise<{ status: string | undefined; value: unknown }> {
  const h = natsHeaders();
  h.set('Molt-Version', '1');
  h.set('Molt-Message', 'increment');
  if (idempotencyKey !== undefined) h.set('Molt-Idempotency-Key', idempotencyKey);
  if (resendAgeMs !== undefined) h.set('Molt-Resend-Age', String(resendAgeMs));
  const reply = await nc.request(callSubject('counters', 'counter', encodeKey(key), DEFAULT_SHARDS), new TextEncoder().encode('{"json":{"by":1}}'), { headers: h, timeout: 5000 });
  return { status: reply.headers?.get('Molt-Status'), value: (JSON.parse(new TextDecoder().decode(reply.data)) as { json: unknown }).json };
}

test('idempotency - the same call sent again, and ten times at once, is applied once and answers the first reply', async ({ nc, client }) => {
  const c = client.actor(counterV1, 'idem-raw');
  await c.reset();
  assert.equal(await rawIncrement(nc, 'idem-raw', 'order-1'), { status: 'ok', value: 1 });
  assert.equal(await rawIncrement(nc, 'idem-raw', 'order-1'), { status: 'ok', value: 1 }, 'sent again: the same reply');
  assert.is(await c.get(), 1, 'applied once');
  const ten = await Promise.all(Array.from({ length: 10 }, () => rawIncrement(nc, 'idem-raw', 'order-2')));
  assert.equal(new Set(ten.map((r) => r.value)), new Set([2]), 'ten at once: one reply for all');
  assert.is(await c.get(), 2, 'ten at once: applied once');
  assert.equal(await rawIncrement(nc, 'idem-raw', undefined), { status: 'ok', value: 3 }, 'no key: applied');
  assert.equal(await rawIncrement(nc, 'idem-raw', undefined), { status: 'ok', value: 4 }, 'no key: applied again');
});

test('idempotency - the typed client takes a key per call; by default every call has its own', async ({ client }) => {
  const c = client.actor(counterV1, 'idem-typed');
  await c.reset();
  assert.is(await c.increment({ by: 5 }, { idempotencyKey: 'pay-7' }), 5);
  assert.is(await c.increment({ by: 5 }, { idempotencyKey: 'pay-7' }), 5);
  assert.is(await c.increment({ by: 1 }), 6, 'automatic keys are distinct');
  assert.is(await c.increment({ by: 1 }), 7);
  assert.is(await client.call('counter', 1, 'idem-typed', 'increment', { by: 5 }, { idempotencyKey: 'pay-7' }), 5, 'the untyped call too');
  try {
    await c.increment({ by: 1 }, { idempotencyKey: 'has spaces' });
    assert.unreachable('a malformed key is refused');
  } catch (e) {
    assert.ok(isMoltError(e, 'InvalidHeader'), String(e));
  }
  assert.is(await c.get(), 7);
  // A message name cannot carry a line break into the header block the client builds.
  await client.call('counter', 1, 'idem-typed', 'increment\r\nMolt-Version: 9', { by: 1 }).then(
    () => assert.unreachable('a message name with a line break is not sent'),
    (e) => assert.ok(e instanceof Error),
  );
  assert.is(await c.get(), 7);
});

test('idempotency - a node refuses a malformed key, changing nothing', async ({ nc, client }) => {
  const c = client.actor(counterV1, 'idem-bad');
  await c.reset();
  const h = natsHeaders();
  h.set('Molt-Version', '1');
  h.set('Molt-Message', 'increment');
  h.set('Molt-Idempotency-Key', 'x'.repeat(129));
  const reply = await nc.request(callSubject('counters', 'counter', encodeKey('idem-bad'), DEFAULT_SHARDS), new TextEncoder().encode('{"json":{"by":1}}'), { headers: h, timeout: 5000 });
  assert.is(reply.headers?.get('Molt-Status'), 'error');
  assert.is((JSON.parse(new TextDecoder().decode(reply.data)) as { json: { code: string } }).json.code, 'InvalidHeader');
  assert.is(await c.get(), 0);
});

test('idempotency - remembered keys live in the record: they survive passivation and an in-place upgrade', async (ctx) => {
  await ctx.node.stop();
  ctx.node = await startNode(ctx.nats.url, 100);
  const c = ctx.client.actor(counterV1, 'idem-moved');
  await c.reset();
  assert.is(await c.increment({ by: 3 }, { idempotencyKey: 'move-1' }), 3);
  // The record holds the key and the reply beside the state.
  const kv = await new Kvm(ctx.nc).open(bucketNames('counters').state);
  const record = createSuperjsonCodec().decode((await kv.get(stateKey('counter', encodeKey('idem-moved'))))!.value) as { ikc?: unknown[] };
  assert.equal(
    readCompact(record.ikc ?? []).entries.filter((e) => e.k === 'move-1').map((e) => e.r),
    [3],
  );
  // Passivated (idle > 100 ms) and loaded again from the record.
  await new Promise((r) => setTimeout(r, 400));
  assert.is(ctx.node.status().types.counter!.resident, 0, 'passivated');
  assert.is(await c.increment({ by: 3 }, { idempotencyKey: 'move-1' }), 3);
  // Upgraded in place to version 2: the transform carries the state, the keys travel beside it.
  await ctx.node.upgrade('counter', 2, counterV2);
  assert.is(await c.increment({ by: 3 }, { idempotencyKey: 'move-1' }), 3, 'a v1 caller retrying after the upgrade');
  assert.is(await ctx.client.actor(counterV2, 'idem-moved').increment({ by: 3 }, { idempotencyKey: 'move-1' }), 3, 'the same key from a v2 caller');
  assert.is(await ctx.client.actor(counterV2, 'idem-moved').get(), 3, 'applied once');
});

test('idempotency - a record written before the compact form (ik) is read: its calls answer, its floor holds, and it is rewritten compact', async ({ nc, client }) => {
  // The record as Molt wrote it before `ikc`: remembered calls as `{ k, at, r }` and the floor as `ikf`.
  const codec = createSuperjsonCodec();
  const kv = await new Kvm(nc).open(bucketNames('counters').state);
  const storeKey = stateKey('counter', encodeKey('idem-old-form'));
  const now = Date.now();
  await kv.put(storeKey, codec.encode({ v: 1, value: {}, context: { count: 7 }, ik: [{ k: 'old-6', at: now - 2000, r: 6 }, { k: 'old-7', at: now - 1000, r: 7 }], ikf: now - 3000 }));
  assert.equal(await rawIncrement(nc, 'idem-old-form', 'old-7', 1500), { status: 'ok', value: 7 }, 'remembered: its first reply');
  const forgotten = await rawIncrement(nc, 'idem-old-form', 'old-5', 3500);
  assert.is((forgotten.value as { code: string }).code, 'OutcomeUnknown', 'first sent before the floor: may have been forgotten');
  assert.is(await client.actor(counterV1, 'idem-old-form').get(), 7, 'neither was applied again');
  assert.equal(await rawIncrement(nc, 'idem-old-form', 'new-8'), { status: 'ok', value: 8 });
  const record = codec.decode((await kv.get(storeKey))!.value) as { ik?: unknown; ikc?: unknown[] };
  assert.is(record.ik, undefined, 'rewritten in the compact form');
  assert.equal(
    readCompact(record.ikc ?? []).entries.map((e) => [e.k, e.r]),
    [
      ['old-6', 6],
      ['old-7', 7],
      ['new-8', 8],
    ],
  );
  assert.equal(await rawIncrement(nc, 'idem-old-form', 'old-6', 2500), { status: 'ok', value: 6 }, 'still remembered after the rewrite');
  assert.is(await client.actor(counterV1, 'idem-old-form').get(), 8);
});

test('idempotency - an actor remembers at most its limit of keys, the newest', async ({ client }) => {
  const c = client.actor(counterV1, 'idem-limit');
  await c.reset();
  for (let i = 1; i <= 10; i++) assert.is(await c.increment({ by: 1 }, { idempotencyKey: `k${i}` }), i);
  assert.is(await c.increment({ by: 1 }, { idempotencyKey: 'k10' }), 10, 'recent: remembered');
  assert.is(await c.increment({ by: 1 }, { idempotencyKey: 'k3' }), 3, 'k3 is among the newest 8: its own first reply');
  assert.is(await c.increment({ by: 1 }, { idempotencyKey: 'k1' }), 11, 'k1 fell out of the limit of 8: a new call with that key is applied');
});

test('idempotency - a resend of a key the actor may have forgotten is answered OutcomeUnknown and not run again', async ({ nc, client }) => {
  const c = client.actor(counterV1, 'idem-forgot');
  await c.reset();
  assert.equal(await rawIncrement(nc, 'idem-forgot', 'first'), { status: 'ok', value: 1 });
  // Nine newer keyed changes: 'first' falls out of the limit of 8.
  for (let i = 0; i < 9; i++) await c.increment({ by: 1 });
  assert.is(await c.get(), 10);
  // The caller never saw the first reply and sends the call again, first sent 3 s ago.
  const resent = await rawIncrement(nc, 'idem-forgot', 'first', 3000);
  assert.is(resent.status, 'error');
  assert.equal((resent.value as { code: string; data: unknown }).code, 'OutcomeUnknown');
  assert.equal((resent.value as { data: unknown }).data, { forgotten: true, key: 'first' });
  assert.is(await c.get(), 10, 'not applied a second time');
  // A resend older than the window: unknown as well, whatever the actor holds.
  assert.equal((await rawIncrement(nc, 'idem-forgot', 'other', 60_000)).status, 'error');
  assert.is(await c.get(), 10);
  const h = natsHeaders();
  h.set('Molt-Version', '1');
  h.set('Molt-Message', 'increment');
  h.set('Molt-Idempotency-Key', 'bad-age');
  h.set('Molt-Resend-Age', 'soon');
  const refused = await nc.request(callSubject('counters', 'counter', encodeKey('idem-forgot'), DEFAULT_SHARDS), new TextEncoder().encode('{"json":{"by":1}}'), { headers: h, timeout: 5000 });
  assert.is(refused.headers?.get('Molt-Status'), 'error', 'a malformed resend age is refused');
  assert.is((JSON.parse(new TextDecoder().decode(refused.data)) as { json: { code: string } }).json.code, 'InvalidHeader');
  assert.is(await c.get(), 10);
});

test('idempotency - a resend to an actor that has forgotten nothing runs once, and again is remembered', async ({ nc, client }) => {
  const c = client.actor(counterV1, 'idem-resend');
  await c.reset();
  assert.equal(await rawIncrement(nc, 'idem-resend', 'lost-on-the-way', 2000), { status: 'ok', value: 1 }, 'the first attempt never arrived: the resend is applied');
  assert.equal(await rawIncrement(nc, 'idem-resend', 'lost-on-the-way', 4000), { status: 'ok', value: 1 }, 'and remembered');
  assert.is(await c.get(), 1);
});

test.run();
