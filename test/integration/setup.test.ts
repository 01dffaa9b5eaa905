/**
 * `molt setup`'s work (runtime/udb/buckets.ts) on one server: the four
 * buckets with their settings, idempotent, the state bucket's size limit set
 * and changed; and a server that asks for no credentials set up by the first
 * node by itself.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { jetstreamManager } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import { connectNats, createNode, silentLogger } from '../../runtime/index.ts';
import { setupServiceBuckets } from '../../runtime/udb/buckets.ts';
import service from '../fixtures/counter.ts';
import { startEmbeddedNats, type EmbeddedNats } from '../support/nats.ts';

const test = suite<{ nats: EmbeddedNats; nc: NatsConnection }>('setup');

test.before(async (ctx) => {
  ctx.nats = await startEmbeddedNats();
  ctx.nc = await connectNats({ servers: ctx.nats.url });
});

test.after(async (ctx) => {
  await ctx.nc?.close();
  await ctx.nats?.stop();
});

test('setup - creates the four buckets with their settings, then leaves them be', async ({ nc }) => {
  const first = await setupServiceBuckets(nc, 'shop', { stateMaxBytes: 1 << 20 });
  assert.equal(first.map((o) => [o.bucket.name, o.action, o.replicas, o.maxBytes]), [
    ['molt_shop_state', 'created', 1, 1 << 20],
    ['molt_shop_udb', 'created', 1, undefined],
    ['molt_shop_upgrades', 'created', 1, undefined],
    ['molt_shop_bundles', 'created', 1, undefined],
  ]);
  const jsm = await jetstreamManager(nc);
  const config = async (stream: string) => (await jsm.streams.info(stream)).config;
  assert.equal([(await config('KV_molt_shop_state')).max_msgs_per_subject, (await config('KV_molt_shop_udb')).max_msgs_per_subject, (await config('KV_molt_shop_upgrades')).max_msgs_per_subject], [1, 5, 10]);
  assert.equal((await setupServiceBuckets(nc, 'shop')).map((o) => o.action), ['existed', 'existed', 'existed', 'existed']);
  const changed = await setupServiceBuckets(nc, 'shop', { stateMaxBytes: 2 << 20 });
  assert.equal(changed.map((o) => o.action), ['updated', 'existed', 'existed', 'existed']);
  assert.is((await config('KV_molt_shop_state')).max_bytes, 2 << 20);
});

test('setup - on a server that asks for no credentials, the first node sets the service up itself', async ({ nats, nc }) => {
  const logged: string[] = [];
  const logger = { ...silentLogger, info: (msg: string) => logged.push(msg), child: () => logger };
  const node = await createNode({ service, nats: { servers: nats.url }, nodeId: 'first', stateMaxBytes: 1 << 20, logger });
  await node.stop();
  assert.ok(logged.includes('set up the service buckets (this NATS asks for no credentials)'), logged.join('\n'));
  const jsm = await jetstreamManager(nc);
  assert.is((await jsm.streams.info('KV_molt_counters_state')).config.max_bytes, 1 << 20);
  assert.ok(await jsm.streams.info('OBJ_molt_counters_bundles'), 'the upgrade buckets too');
});

test.run();
