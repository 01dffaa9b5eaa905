/**
 * Catching up: a node that was down for two upgrades, and a node started
 * after both, go through every missed version in order (v1 → v2 → v3), and
 * actors whose state was written at v1 run both transform functions.
 *
 * Choice documented in docs/upgrade-database.md: an upgrade whose rollout is
 * already `done` is applied without its scheduling function.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import type { NatsConnection } from '@nats-io/transport-node';
import { createClient, type MoltClient } from '../../runtime/index.ts';
import type { Udb } from '../../runtime/udb/index.ts';
import { counterV1 } from '../fixtures/counter.ts';
import { counterV3 } from '../fixtures/counter-v3.ts';
import { startEmbeddedNats, type ChildNode, type EmbeddedNats } from '../support/nats.ts';
import { killAll, openCounters, publish, waitForProgress, startUpgradableNode, testPublisher, waitForRollout, waitForVersions, TIMINGS } from '../support/upgrades.ts';

interface Ctx {
  nats: EmbeddedNats;
  nodes: Array<ChildNode | undefined>;
  nc: NatsConnection;
  udb: Udb;
  client: MoltClient;
}
const test = suite<Ctx>('upgrades: catch-up');

test.before(async (ctx) => {
  ctx.nats = await startEmbeddedNats();
  ({ nc: ctx.nc, udb: ctx.udb } = await openCounters(ctx.nats.url));
  ctx.client = await createClient({ service: 'counters', nats: ctx.nc, timeoutMs: 5000 });
  ctx.nodes = [];
});

test.after(async (ctx) => {
  await ctx.client?.close();
  await killAll(ctx.nodes);
  await ctx.nc?.drain().catch(() => undefined);
  await ctx.nats?.stop();
});

test('catch-up - a node down for two upgrades, and a late node, go through both in order', async (ctx) => {
  const publisher = testPublisher();
  const trust = [publisher.publicKey];
  const a = await startUpgradableNode(ctx.nats.url, 'node-a', { trust });
  let b: ChildNode | undefined = await startUpgradableNode(ctx.nats.url, 'node-b', { trust });
  ctx.nodes.push(a, b);
  for (let i = 0; i < 8; i++) await ctx.client.actor(counterV1, `k${i}`).increment({ by: 10 + i });

  // node-b dies; v2 and then v3 roll out on node-a alone.
  await b.kill('SIGKILL');
  const v2 = (await publish(ctx.nats.url, publisher.signer, 'test/fixtures/counter-v2.ts')).upgrades[0]!;
  await waitForVersions(ctx.udb, ['node-a'], 'counter', 2);
  // Done once node-b's lease has run out (it no longer counts as live).
  await waitForRollout(ctx.udb, v2.rolloutId, (r) => r.state === 'done', 'done without node-b', TIMINGS.leaseMs + 8000);
  const v3 = (await publish(ctx.nats.url, publisher.signer, 'test/fixtures/counter-v3.ts')).upgrades[0]!;
  await waitForVersions(ctx.udb, ['node-a'], 'counter', 3);
  await waitForRollout(ctx.udb, v3.rolloutId, (r) => r.state === 'done', 'done');

  // node-b comes back with the same id and the v1 code; node-c is new.
  b = await startUpgradableNode(ctx.nats.url, 'node-b', { trust });
  const c = await startUpgradableNode(ctx.nats.url, 'node-c', { trust });
  ctx.nodes.push(b, c);
  await waitForVersions(ctx.udb, ['node-a', 'node-b', 'node-c'], 'counter', 3);

  const p2 = await waitForProgress(ctx.udb, v2.rolloutId, ['node-b', 'node-c']);
  const p3 = await waitForProgress(ctx.udb, v3.rolloutId, ['node-b', 'node-c']);
  for (const id of ['node-b', 'node-c']) {
    const s2 = p2.get(id)!;
    const s3 = p3.get(id)!;
    assert.is(s2.step, 'upgraded', `${id} upgraded to 2`);
    assert.is(s3.step, 'upgraded', `${id} upgraded to 3`);
    // In order: 2 was applied before 3 started upgrading, and neither waited for an SF.
    const done2 = s2.steps.find((s) => s.step === 'upgraded')!.at;
    const start3 = s3.steps.find((s) => s.step === 'upgrading')!.at;
    assert.ok(done2 <= start3, `${id}: v2 done at ${done2}, v3 started at ${start3}`);
    assert.not.ok(s2.steps.some((s) => s.step === 'scheduling'), `${id}: a finished rollout needs no SF`);
  }
  // Every actor was written at v1: reading it at v3 runs TF 1→2 then TF 2→3.
  for (let i = 0; i < 8; i++) {
    const c3 = ctx.client.actor(counterV3, `k${i}`);
    assert.equal(await c3.via(), ['tf2', 'tf3']);
    assert.is(await c3.total(), 10 + i);
  }
});

test.run();
