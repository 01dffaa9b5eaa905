/**
 * Reading every record under a prefix of the upgrade database: each node's
 * upgrade manager does it every minute for the rollouts and their controls,
 * so it must not cost one request per record ever written (a key listing and
 * a get per key did: O(rollouts) requests per manager per minute, growing
 * with the service's history). Counted here as the per-key get requests a
 * plain NATS subscriber sees on the JetStream API.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import type { NatsConnection } from '@nats-io/transport-node';
import type { Udb } from '../../runtime/udb/index.ts';
import { startEmbeddedNats, type EmbeddedNats } from '../support/nats.ts';
import { openCounters } from '../support/upgrades.ts';

interface Ctx {
  nats: EmbeddedNats;
  nc: NatsConnection;
  udb: Udb;
}

const test = suite<Ctx>('udb: reading a prefix');

test.before.each(async (ctx) => {
  ctx.nats = await startEmbeddedNats();
  ({ nc: ctx.nc, udb: ctx.udb } = await openCounters(ctx.nats.url));
});

test.after.each(async (ctx) => {
  await ctx.nc.drain().catch(() => undefined);
  await ctx.nats.stop();
});

/** Counts the requests that get one message of a stream (direct or through the stream's API). */
async function countGets(nc: NatsConnection): Promise<{ count(): number; stop(): void }> {
  let count = 0;
  const subs = ['$JS.API.DIRECT.GET.>', '$JS.API.STREAM.MSG.GET.>'].map((subject) => nc.subscribe(subject, { callback: () => void count++ }));
  await nc.flush();
  return { count: () => count, stop: () => subs.forEach((s) => s.unsubscribe()) };
}

test('the latest value of every key under the prefix, deleted keys left out, without a get per key', async (ctx) => {
  const { kv } = ctx.udb;
  for (let i = 0; i < 40; i++) await kv.put(`rollouts.r${i}`, JSON.stringify({ i, written: 1 }));
  for (const i of [3, 7]) await kv.put(`rollouts.r${i}`, JSON.stringify({ i, written: 2 }));
  for (const i of [10, 11, 12]) await kv.delete(`rollouts.r${i}`);
  await kv.put('nodes.n1', JSON.stringify({ other: true }));

  const gets = await countGets(ctx.nc);
  const entries = await ctx.udb.readAll('rollouts.');
  await ctx.nc.flush();
  gets.stop();

  const read = new Map(entries.map((e) => [e.key, JSON.parse(e.value.length ? new TextDecoder().decode(e.value) : 'null')]));
  assert.is(read.size, 37, 'every key written and not deleted, once');
  for (let i = 0; i < 40; i++) {
    if ([10, 11, 12].includes(i)) assert.not.ok(read.has(`rollouts.r${i}`), `deleted key r${i} left out`);
    else assert.equal(read.get(`rollouts.r${i}`), { i, written: [3, 7].includes(i) ? 2 : 1 }, `r${i} at its latest value`);
  }
  assert.ok(entries.every((e) => e.revision > 0 && e.operation === 'PUT'));
  assert.is(gets.count(), 0, `no per-key get (${gets.count()} made for ${entries.length} records)`);
});

test('an empty prefix reads as empty at once', async (ctx) => {
  await ctx.udb.kv.put('nodes.n1', JSON.stringify({ other: true }));
  const started = Date.now();
  assert.equal(await ctx.udb.readAll('retired.'), []);
  assert.ok(Date.now() - started < 2000, 'answered without waiting for a message that will not come');
  await ctx.udb.kv.put('retired.x', JSON.stringify({ x: 1 }));
  await ctx.udb.kv.delete('retired.x');
  assert.equal(await ctx.udb.readAll('retired.'), [], 'a prefix whose only key is deleted');
});

test.run();
