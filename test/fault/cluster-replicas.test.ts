/**
 * Bucket replicas on a real cluster (issue 13 item 6): a service set up
 * without `--replicas` gets min(3, servers in the cluster) replicas, as the
 * server reports its cluster; a node or publish asked for other replicas than
 * the buckets have refuses with the fix; `molt setup --replicas` changes them.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { jetstreamManager } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import { connectNats, createNode, silentLogger } from '../../runtime/index.ts';
import { setupServiceBuckets } from '../../runtime/udb/buckets.ts';
import { publishUpgrade } from '../../runtime/server/publish.ts';
import service from '../fixtures/counter.ts';
import { startNatsCluster, type NatsCluster } from '../support/cluster.ts';
import { testPublisher } from '../support/upgrades.ts';

const test = suite<{ clusters: NatsCluster[]; connections: NatsConnection[] }>('cluster: bucket replicas');

test.before((ctx) => {
  ctx.clusters = [];
  ctx.connections = [];
});

test.after(async (ctx) => {
  for (const c of ctx.connections) await c.close().catch(() => undefined);
  for (const c of ctx.clusters) await c.stop();
});

async function replicasOf(nc: NatsConnection, service: string): Promise<Record<string, number>> {
  const jsm = await jetstreamManager(nc);
  const out: Record<string, number> = {};
  for (const stream of [`KV_molt_${service}_state`, `KV_molt_${service}_udb`, `KV_molt_${service}_upgrades`, `OBJ_molt_${service}_bundles`]) {
    out[stream] = (await jsm.streams.info(stream)).config.num_replicas;
  }
  return out;
}

test('replicas - a 3-server cluster: a first node sets up 3 replicas; --replicas 1 refuses; setup changes them', async (ctx) => {
  const cluster = await startNatsCluster({ size: 3 });
  ctx.clusters.push(cluster);
  const nc = await connectNats({ servers: cluster.urls });
  ctx.connections.push(nc);

  // No credentials on this cluster: the first node sets the service up itself, with the cluster's size.
  const node = await createNode({ service, nats: { servers: cluster.urls }, nodeId: 'r1', logger: silentLogger });
  await node.stop();
  assert.equal(await replicasOf(nc, 'counters'), { KV_molt_counters_state: 3, KV_molt_counters_udb: 3, KV_molt_counters_upgrades: 3, OBJ_molt_counters_bundles: 3 });
  assert.is((await (await jetstreamManager(nc)).streams.info('KV_molt_counters_state')).config.allow_direct, false, 'replicated state is read from the leader');

  try {
    await createNode({ service, nats: { servers: cluster.urls }, nodeId: 'r2', replicas: 1, logger: silentLogger });
    assert.unreachable('a node asked for 1 replica must not run on 3-replica buckets');
  } catch (e) {
    assert.match(String((e as Error).message), /node r2 was asked for 1 bucket replica\(s\) \(--replicas\), but molt_counters_state has 3, .*molt setup counters --replicas 1/);
  }
  try {
    await publishUpgrade({ nats: nc, module: 'test/fixtures/counter-v2.ts', signer: testPublisher().signer, replicas: 1 });
    assert.unreachable('a publish asked for 1 replica must refuse');
  } catch (e) {
    assert.match(String((e as Error).message), /molt publish was asked for 1 bucket replica\(s\)/);
  }

  // The operator's setup changes them (here: another service, set up at 1 first).
  assert.equal((await setupServiceBuckets(nc, 'other', { replicas: 1 })).map((o) => [o.action, o.replicas]), [['created', 1], ['created', 1], ['created', 1], ['created', 1]]);
  const changed = await setupServiceBuckets(nc, 'other', { replicas: 3 });
  assert.equal(changed.map((o) => [o.bucket.name, o.action, o.from, o.replicas]), [
    ['molt_other_state', 'updated', 1, 3],
    ['molt_other_udb', 'updated', 1, 3],
    ['molt_other_upgrades', 'updated', 1, 3],
    ['molt_other_bundles', 'updated', 1, 3],
  ]);
  assert.equal(await replicasOf(nc, 'other'), { KV_molt_other_state: 3, KV_molt_other_udb: 3, KV_molt_other_upgrades: 3, OBJ_molt_other_bundles: 3 });
  const node3 = await createNode({ service, nats: { servers: cluster.urls }, nodeId: 'r3', replicas: 3, logger: silentLogger });
  await node3.stop();
});

test('replicas - a 2-server cluster: setup makes 2 replicas', async (ctx) => {
  for (const c of ctx.clusters.splice(0)) await c.stop();
  const cluster = await startNatsCluster({ size: 2 });
  ctx.clusters.push(cluster);
  const nc = await connectNats({ servers: cluster.urls });
  ctx.connections.push(nc);
  const outcomes = await setupServiceBuckets(nc, 'pair');
  assert.equal(outcomes.map((o) => o.replicas), [2, 2, 2, 2]);
});

test.run();
