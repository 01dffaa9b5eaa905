/**
 * SIGKILL a node in the middle of a rollout and restart it with the same id:
 * the rollout converges — every node at the new version, the rollout done —
 * and no acknowledged update is lost.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import type { NatsConnection } from '@nats-io/transport-node';
import { createClient, type MoltClient } from '../../runtime/index.ts';
import type { Udb } from '../../runtime/udb/index.ts';
import { counterV1 } from '../fixtures/counter.ts';
import { counterV2 } from '../fixtures/counter-v2.ts';
import { startEmbeddedNats, type ChildNode, type EmbeddedNats } from '../support/nats.ts';
import { eventually, killAll, openCounters, publish, startUpgradableNode, testPublisher, waitForRollout, waitForVersions } from '../support/upgrades.ts';

interface Ctx {
  nats: EmbeddedNats;
  nodes: Array<ChildNode | undefined>;
  nc: NatsConnection;
  udb: Udb;
  client: MoltClient;
}
const test = suite<Ctx>('rollout fault: SIGKILL');
const ids = ['node-a', 'node-b', 'node-c'];

test.before(async (ctx) => {
  ctx.nats = await startEmbeddedNats();
  ({ nc: ctx.nc, udb: ctx.udb } = await openCounters(ctx.nats.url));
  ctx.client = await createClient({ service: 'counters', nats: ctx.nc, timeoutMs: 5000, retryUnavailableMs: 5000 });
  ctx.nodes = [];
});

test.after(async (ctx) => {
  await ctx.client?.close();
  await killAll(ctx.nodes, 'SIGKILL');
  await ctx.nc?.drain().catch(() => undefined);
  await ctx.nats?.stop();
});

test('sigkill - a node killed mid-rollout and restarted with its id lets the rollout converge', async (ctx) => {
  const publisher = testPublisher();
  const trust = [publisher.publicKey];
  const nodes = await Promise.all(ids.map((id) => startUpgradableNode(ctx.nats.url, id, { trust })));
  ctx.nodes.push(...nodes);
  for (let i = 0; i < 12; i++) await ctx.client.actor(counterV1, `k${i}`).increment({ by: 1 });

  const rollout = (await publish(ctx.nats.url, publisher.signer, 'test/fixtures/counter-v2.ts', { schedule: { name: 'stepwise', params: { gapMs: 800 } } })).upgrades[0]!;
  // node-a goes first; kill node-b while it is next in line (mid-rollout).
  await waitForVersions(ctx.udb, ['node-a'], 'counter', 2);
  await nodes[1]!.kill('SIGKILL');
  const before = Object.fromEntries((await ctx.udb.nodes()).map((n) => [n.id, n.versions.counter]));
  assert.is(before['node-b'], 1, 'node-b died before upgrading');

  // Meanwhile callers keep going (v1 and v2); node-b's shards move to the others.
  const acked = new Map<string, number>();
  for (let i = 0; i < 12; i++) {
    const v = await ctx.client.actor(i % 2 ? counterV1 : counterV2, `k${i}`).increment({ by: 1 });
    acked.set(`k${i}`, v);
  }

  const restarted = await startUpgradableNode(ctx.nats.url, 'node-b', { trust });
  ctx.nodes.push(restarted);
  await waitForVersions(ctx.udb, ids, 'counter', 2, 20_000);
  await waitForRollout(ctx.udb, rollout.rolloutId, (r) => r.state === 'done', 'done');
  await eventually(async () => (await ctx.udb.nodes()).every((n) => n.status === 'running'), 'all nodes running', 5000);
  for (let i = 0; i < 12; i++) assert.is(await ctx.client.actor(counterV2, `k${i}`).get(), acked.get(`k${i}`), `k${i}: no lost update`);
});

test.run();
