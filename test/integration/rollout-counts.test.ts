/**
 * Who writes a rollout's counts: the manager of the live node with the
 * lowest id hosting the type (its counter) at once; another manager only
 * once nobody has written a record it finds behind for as many ticks as its
 * rank. Every manager writing at once cost N compare-and-set attempts per
 * change (N − 1 refused, each followed by a read): N² per rollout over N nodes.
 *
 * Counted here as the publishes to the rollout's key that a plain NATS
 * subscriber sees: every attempt is one, refused or not.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import type { NatsConnection, Subscription } from '@nats-io/transport-node';
import { createNode, silentLogger, type MoltNode } from '../../runtime/index.ts';
import { startUpgradeManager, type UpgradeManager } from '../../runtime/manager/index.ts';
import { keyFingerprint } from '../../runtime/server/keys.ts';
import type { Udb } from '../../runtime/udb/index.ts';
import service from '../fixtures/counter.ts';
import { startEmbeddedNats, type EmbeddedNats } from '../support/nats.ts';
import { openCounters, publish, testPublisher, TIMINGS, waitForRollout, waitForVersions } from '../support/upgrades.ts';

interface Ctx {
  nats: EmbeddedNats;
  nc: NatsConnection;
  udb: Udb;
  publisher: ReturnType<typeof testPublisher>;
  nodes: Array<{ node: MoltNode; manager?: UpgradeManager }>;
  writes: Subscription | undefined;
}

const test = suite<Ctx>('rollout counts: one writer per change');

test.before.each(async (ctx) => {
  ctx.nats = await startEmbeddedNats();
  ({ nc: ctx.nc, udb: ctx.udb } = await openCounters(ctx.nats.url));
  ctx.publisher = testPublisher();
  ctx.nodes = [];
  ctx.writes = undefined;
});

test.after.each(async (ctx) => {
  ctx.writes?.unsubscribe();
  for (const { node, manager } of ctx.nodes) {
    await manager?.stop();
    await node.stop();
  }
  await ctx.nc.drain().catch(() => undefined);
  await ctx.nats.stop();
});

/** A node, with its upgrade manager unless `manager` is false. */
async function startNode(ctx: Ctx, id: string, { manager = true, reconcileMs = TIMINGS.reconcileMs } = {}): Promise<void> {
  const trustedKeys = [ctx.publisher.publicKey];
  const { leaseMs, heartbeatMs, tickMs } = TIMINGS;
  const node = await createNode({ service, nats: { servers: ctx.nats.url }, nodeId: id, logger: silentLogger, heartbeatMs, leaseMs, trusts: trustedKeys.map(keyFingerprint) });
  ctx.nodes.push({ node, ...(manager ? { manager: await startUpgradeManager(node, { trustedKeys, reconcileMs, tickMs, leaseMs, logger: silentLogger }) } : {}) });
}

/** Counts every publish to a rollout record (the publisher's creation included). */
function countRolloutWrites(ctx: Ctx): { count(): number } {
  let n = 0;
  ctx.writes = ctx.nc.subscribe('$KV.molt_counters_udb.rollouts.>', {
    callback: () => {
      n++;
    },
  });
  return { count: () => n };
}

test('a rollout over five nodes is counted with about one write per change, not one per manager', async (ctx) => {
  const ids = ['a', 'b', 'c', 'd', 'e'];
  for (const id of ids) await startNode(ctx, id);
  for (const { manager } of ctx.nodes) await manager!.reconcile();
  const writes = countRolloutWrites(ctx);
  await ctx.nc.flush();
  const rollout = (await publish(ctx.nats.url, ctx.publisher.signer, 'test/fixtures/counter-v2.ts')).upgrades[0]!;
  await waitForVersions(ctx.udb, ids, 'counter', 2);
  const done = await waitForRollout(ctx.udb, rollout.rolloutId, (r) => r.state === 'done', 'done');
  assert.equal(done.counts, { '2': 5 });
  // Let the other managers' looks (a tick each) and a reconciliation pass.
  await new Promise((r) => setTimeout(r, TIMINGS.reconcileMs + 2 * TIMINGS.tickMs));
  await ctx.nc.flush();
  // The publisher's creation, then at most one write per node's change (its
  // counts, the last one with the end); changes seen together share one.
  // With every manager writing each change it saw, this rollout made 14–18.
  assert.ok(writes.count() <= 1 + ids.length, `${writes.count()} writes to the rollout record`);
});

test('a counter that runs no manager leaves the counting to the others, a tick later', async (ctx) => {
  // `a` has the lowest id, so it is the counter, but nothing runs its manager: it stays at v1.
  await startNode(ctx, 'a', { manager: false });
  await startNode(ctx, 'b');
  await startNode(ctx, 'c');
  for (const { manager } of ctx.nodes) await manager?.reconcile();
  const rollout = (await publish(ctx.nats.url, ctx.publisher.signer, 'test/fixtures/counter-v2.ts')).upgrades[0]!;
  await waitForVersions(ctx.udb, ['b', 'c'], 'counter', 2);
  const counted = await waitForRollout(ctx.udb, rollout.rolloutId, (r) => r.counts['2'] === 2, 'b and c counted at v2', 5_000);
  assert.equal(counted.counts, { '1': 1, '2': 2 });
  assert.is(counted.state, 'running', 'not done while a runs v1');
});

test('a new rollout is counted as soon as a manager sees it, before any node changes', async (ctx) => {
  // Reconciliation far off: only seeing the rollout itself can make a manager count it.
  await startNode(ctx, 'a', { reconcileMs: 60_000 });
  await startNode(ctx, 'b', { reconcileMs: 60_000 });
  for (const { manager } of ctx.nodes) await manager!.reconcile();
  // Published paused: the nodes load v2 but stay at v1, so no node's version changes.
  const rollout = (await publish(ctx.nats.url, ctx.publisher.signer, 'test/fixtures/counter-v2.ts', { paused: true })).upgrades[0]!;
  const counted = await waitForRollout(ctx.udb, rollout.rolloutId, (r) => r.counts['1'] === 2, 'counted at v1', 5_000);
  assert.equal(counted.counts, { '1': 2 });
  assert.is(counted.state, 'paused');
});

test.run();
