/**
 * The upgrade manager follows the node records (`nodes.>` in the UDB) through
 * its node's placement watch, not a watch of its own: one consumer of them per
 * node, not two (with N nodes in a process, a second watch doubled the N²
 * deliveries of their records during a publish). What it learns is the same:
 * a rollout over two nodes is counted done once both run the new version.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import type { NatsConnection } from '@nats-io/transport-node';
import { jetstreamManager } from '@nats-io/jetstream';
import { createNode, silentLogger, type MoltNode } from '../../runtime/index.ts';
import { startUpgradeManager, type UpgradeManager } from '../../runtime/manager/index.ts';
import { keyFingerprint } from '../../runtime/server/keys.ts';
import type { Udb } from '../../runtime/udb/index.ts';
import service from '../fixtures/counter.ts';
import { startEmbeddedNats, type EmbeddedNats } from '../support/nats.ts';
import { openCounters, publish, testPublisher, waitForRollout, waitForVersions } from '../support/upgrades.ts';

interface Ctx {
  nats: EmbeddedNats;
  nc: NatsConnection;
  udb: Udb;
  publisher: ReturnType<typeof testPublisher>;
  nodes: Array<{ node: MoltNode; manager: UpgradeManager }>;
}

const test = suite<Ctx>('manager: node records through placement');

test.before.each(async (ctx) => {
  ctx.nats = await startEmbeddedNats();
  ({ nc: ctx.nc, udb: ctx.udb } = await openCounters(ctx.nats.url));
  ctx.publisher = testPublisher();
  ctx.nodes = [];
});

test.after.each(async (ctx) => {
  for (const { node, manager } of ctx.nodes) {
    await manager.stop();
    await node.stop();
  }
  await ctx.nc.drain().catch(() => undefined);
  await ctx.nats.stop();
});

async function startNode(ctx: Ctx, id: string): Promise<void> {
  const trustedKeys = [ctx.publisher.publicKey];
  const node = await createNode({ service, nats: { servers: ctx.nats.url }, nodeId: id, logger: silentLogger, heartbeatMs: 300, leaseMs: 1500, trusts: trustedKeys.map(keyFingerprint) });
  const manager = await startUpgradeManager(node, { trustedKeys, reconcileMs: 500, tickMs: 200, leaseMs: 1500, logger: silentLogger });
  ctx.nodes.push({ node, manager });
}

/** Consumers of the UDB stream that deliver node records (watches: key listings, headers only, are left out — they end once read). */
async function nodeRecordConsumers(nc: NatsConnection): Promise<number> {
  const jsm = await jetstreamManager(nc);
  let n = 0;
  for await (const c of jsm.consumers.list('KV_molt_counters_udb')) {
    const filters = [c.config.filter_subject, ...(c.config.filter_subjects ?? [])].filter((f): f is string => typeof f === 'string');
    if (c.config.headers_only !== true && filters.some((f) => f === '$KV.molt_counters_udb.nodes.>')) n++;
  }
  return n;
}

test('a node with its manager keeps one watch of the node records, and the manager still counts the rollout', async (ctx) => {
  await startNode(ctx, 'a');
  await startNode(ctx, 'b');
  for (const { manager } of ctx.nodes) await manager.reconcile(); // every watch started
  assert.is(await nodeRecordConsumers(ctx.nc), 2, 'one per node: its placement');
  const rollout = (await publish(ctx.nats.url, ctx.publisher.signer, 'test/fixtures/counter-v2.ts')).upgrades[0]!;
  await waitForVersions(ctx.udb, ['a', 'b'], 'counter', 2);
  // Done is recorded only once a manager has seen every live node at v2: through the records placement handed it.
  await waitForRollout(ctx.udb, rollout.rolloutId, (r) => r.state === 'done', 'done');
});

test.run();
