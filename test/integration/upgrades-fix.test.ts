/**
 * A transform function that throws halts the rollout rather than lose data:
 * the failing actor keeps its old state, the node reports it, the rollout is
 * paused so no other node upgrades; a fix published with `--fix` replaces the
 * TF on every node, and after `resume` the rollout completes and the actor is
 * carried with the fixed TF.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import type { NatsConnection } from '@nats-io/transport-node';
import { createClient, isMoltError, type MoltClient } from '../../runtime/index.ts';
import { assignShards, encodeKey, shardOf } from '../../runtime/internal.ts';
import type { Udb } from '../../runtime/udb/index.ts';
import { controlRollout } from '../../runtime/operate/rollouts.ts';
import { counterV1 } from '../fixtures/counter.ts';
import { counterV2 } from '../fixtures/counter-v2.ts';
import { startEmbeddedNats, type ChildNode, type EmbeddedNats } from '../support/nats.ts';
import { eventually, killAll, openCounters, publish, startUpgradableNode, testPublisher, waitForRollout, waitForVersions } from '../support/upgrades.ts';

interface Ctx {
  nats: EmbeddedNats;
  nodes: ChildNode[];
  nc: NatsConnection;
  udb: Udb;
  client: MoltClient;
}
const test = suite<Ctx>('upgrades: failing transform and fix');
const ids = ['node-a', 'node-b', 'node-c'];

test.before(async (ctx) => {
  ctx.nats = await startEmbeddedNats();
  ({ nc: ctx.nc, udb: ctx.udb } = await openCounters(ctx.nats.url));
  ctx.client = await createClient({ service: 'counters', nats: ctx.nc });
  ctx.nodes = [];
});

test.after(async (ctx) => {
  await ctx.client?.close();
  await killAll(ctx.nodes);
  await ctx.nc?.drain().catch(() => undefined);
  await ctx.nats?.stop();
});

test('transform failure - halts the rollout; a fix and resume complete it', async (ctx) => {
  const publisher = testPublisher();
  ctx.nodes.push(...(await Promise.all(ids.map((id) => startUpgradableNode(ctx.nats.url, id, { trust: [publisher.publicKey] })))));
  // An actor served by node-a (the first to upgrade under `stepwise`), whose count makes the buggy TF throw.
  const owners = assignShards(ids, 64);
  let i = 0;
  while (owners[shardOf(encodeKey(`unlucky-${i}`), 64)] !== 'node-a') i++;
  const unlucky = `unlucky-${i}`;
  await ctx.client.actor(counterV1, unlucky).increment({ by: 13 });
  await ctx.client.actor(counterV1, 'fine').increment({ by: 2 });

  const rollout = (await publish(ctx.nats.url, publisher.signer, 'test/fixtures/counter-v2-buggy.ts', { schedule: { name: 'stepwise', params: { gapMs: 1000 } } })).upgrades[0]!;
  await waitForVersions(ctx.udb, ['node-a'], 'counter', 2);
  // The actor fails its transform: its caller is told, its state stays at v1.
  await eventually(async () => {
    try {
      await ctx.client.actor(counterV1, unlucky).get();
      return false;
    } catch (e) {
      return isMoltError(e, 'TransformFailed') && /unlucky thirteen/.test((e as Error).message);
    }
  }, 'the unlucky actor fails its transform', 5000);

  const halted = await waitForRollout(ctx.udb, rollout.rolloutId, (r) => r.state === 'paused', 'halted by node-a', 5000);
  assert.match(halted.reason ?? '', /transform failure\(s\) of counter 1→2 on node node-a/);
  const report = (await ctx.udb.reports()).find((r) => r.nodeId === 'node-a' && r.code === 'TransformFailed');
  assert.ok(report, 'node-a reported the transform failure');
  await new Promise((r) => setTimeout(r, 2000));
  const held = Object.fromEntries((await ctx.udb.nodes()).map((n) => [n.id, n.versions.counter]));
  assert.equal(held, { 'node-a': 2, 'node-b': 1, 'node-c': 1 }, 'no other node upgraded while halted');

  // The fix: same version, same messages, a TF that handles 13.
  const fix = await publish(ctx.nats.url, publisher.signer, 'test/fixtures/counter-v2.ts', { fix: true, versions: { counter: 2 } });
  assert.is(fix.upgrades[0]!.rolloutId, rollout.rolloutId, 'a fix keeps its rollout');
  assert.ok(fix.upgrades[0]!.replaces, 'the descriptor says what it replaces');
  await eventually(async () => {
    try {
      return (await ctx.client.actor(counterV2, unlucky).via()).join() === 'tf2';
    } catch {
      return false;
    }
  }, 'node-a carries the unlucky actor with the fixed TF', 5000);
  assert.is(await ctx.client.actor(counterV2, unlucky).get(), 13, 'nothing was lost');

  await controlRollout(ctx.udb, rollout.rolloutId, 'resume');
  await waitForVersions(ctx.udb, ids, 'counter', 2);
  await waitForRollout(ctx.udb, rollout.rolloutId, (r) => r.state === 'done', 'done');
  // Actors the buggy TF carried successfully stay as they are: a fix does not re-run a TF.
  assert.is(await ctx.client.actor(counterV2, 'fine').get(), 2);
});

test.run();
