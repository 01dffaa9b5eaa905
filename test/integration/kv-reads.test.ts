/**
 * Listing a bucket's keys (runtime/nats/kv-reads.ts): the keys a listing
 * returns, deleted keys by each way, and the consumers it leaves on the
 * server — none. nats.js's `kv.keys()` leaves its ordered consumer for the
 * server's idle threshold (five minutes); the last test shows that it does,
 * so that these tests keep meaning something if the library changes.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import type { NatsConnection } from '@nats-io/transport-node';
import { Kvm, type KV } from '@nats-io/kv';
import { jetstreamManager } from '@nats-io/jetstream';
import { connectNats } from '../../runtime/index.ts';
import { listLiveKeys, listSubjectKeys } from '../../runtime/nats/kv-reads.ts';
import { startEmbeddedNats, type EmbeddedNats } from '../support/nats.ts';

const test = suite<{ nats: EmbeddedNats; nc: NatsConnection; kv: KV }>('kv keys');

test.before(async (ctx) => {
  ctx.nats = await startEmbeddedNats();
  ctx.nc = await connectNats({ servers: ctx.nats.url });
  ctx.kv = await new Kvm(ctx.nc).create('kvkeys_test', { history: 3 });
  for (let i = 0; i < 30; i++) await ctx.kv.put(`a.k${i}`, String(i));
  await ctx.kv.put('a.k3', 'again');
  await ctx.kv.delete('a.k4');
  await ctx.kv.purge('a.k5');
  await ctx.kv.put('b.other', 'x');
});

test.after(async (ctx) => {
  await ctx.nc?.close();
  await ctx.nats?.stop();
});

/** How many consumers the bucket's stream has now. */
async function consumerCount(nc: NatsConnection): Promise<number> {
  const jsm = await jetstreamManager(nc);
  return (await jsm.streams.info('KV_kvkeys_test')).state.consumer_count;
}

const sorted = (keys: readonly string[]) => [...keys].sort();
const expectedLive = Array.from({ length: 30 }, (_, i) => `a.k${i}`).filter((k) => k !== 'a.k4' && k !== 'a.k5');

test('live keys: every key under the filter once, deleted and purged ones left out', async ({ kv }) => {
  assert.equal(sorted(await listLiveKeys(kv, 'a.>')), sorted(expectedLive));
  assert.equal(await listLiveKeys(kv, 'nothing.>'), []);
});

test('subject keys: every key with a message, deleted and purged ones too', async ({ kv }) => {
  assert.equal(sorted(await listSubjectKeys(kv, 'a.>')), sorted([...expectedLive, 'a.k4', 'a.k5']));
  assert.equal(await listSubjectKeys(kv, 'nothing.>'), []);
});

test('neither listing leaves a consumer on the server', async ({ nc, kv }) => {
  const before = await consumerCount(nc);
  for (let i = 0; i < 3; i++) {
    await listLiveKeys(kv, 'a.>');
    await listSubjectKeys(kv, 'a.>');
  }
  assert.is(await consumerCount(nc), before);
});

test("nats.js's kv.keys() leaves its consumer behind (why these listings exist)", async ({ nc, kv }) => {
  const before = await consumerCount(nc);
  const keys: string[] = [];
  for await (const k of await kv.keys('a.>')) keys.push(k);
  assert.equal(sorted(keys), sorted(expectedLive));
  assert.is(await consumerCount(nc), before + 1, 'the listing consumer is still on the server');
});

test.run();
