/**
 * Restart the nats-server in the middle of a rollout (JetStream on disk, same
 * port): node connections come back, upgrade managers reconcile, and the
 * rollout converges.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { rmSync } from 'node:fs';
import { createClient } from '../../runtime/index.ts';
import { counterV1 } from '../fixtures/counter.ts';
import { counterV2 } from '../fixtures/counter-v2.ts';
import { startEmbeddedNats, type ChildNode, type EmbeddedNats } from '../support/nats.ts';
import { killAll, openCounters, publish, startUpgradableNode, testPublisher, waitForRollout, waitForVersions } from '../support/upgrades.ts';

const test = suite<{ servers: EmbeddedNats[]; nodes: ChildNode[] }>('rollout fault: nats restart');
const ids = ['node-a', 'node-b', 'node-c'];

test.before((ctx) => {
  ctx.servers = [];
  ctx.nodes = [];
});

test.after(async (ctx) => {
  await killAll(ctx.nodes, 'SIGKILL');
  for (const s of [...ctx.servers].reverse()) await s.stop();
  // The restarted server was given the first one's store, so it does not own (remove) it.
  if (ctx.servers[0]) rmSync(ctx.servers[0].storeDir, { recursive: true, force: true });
});

test('nats restart - the rollout converges after the server comes back with its store', async (ctx) => {
  const first = await startEmbeddedNats();
  ctx.servers.push(first);
  const publisher = testPublisher();
  const nodes = await Promise.all(ids.map((id) => startUpgradableNode(first.url, id, { trust: [publisher.publicKey] })));
  ctx.nodes.push(...nodes);
  {
    const { nc } = await openCounters(first.url);
    const client = await createClient({ service: 'counters', nats: nc });
    for (let i = 0; i < 12; i++) await client.actor(counterV1, `k${i}`).increment({ by: i });
    await client.close();
    await nc.drain();
  }
  const rollout = (await publish(first.url, publisher.signer, 'test/fixtures/counter-v2.ts', { schedule: { name: 'stepwise', params: { gapMs: 800 } } })).upgrades[0]!;
  {
    const { nc, udb } = await openCounters(first.url);
    await waitForVersions(udb, ['node-a'], 'counter', 2);
    await nc.drain();
  }
  // Down for a second, mid-rollout; back on the same port with the same JetStream store.
  await first.stop({ keepStore: true });
  await new Promise((r) => setTimeout(r, 1000));
  const second = await startEmbeddedNats({ port: first.port, storeDir: first.storeDir });
  ctx.servers.push(second);

  const { nc, udb } = await openCounters(second.url);
  try {
    await waitForVersions(udb, ids, 'counter', 2, 30_000);
    await waitForRollout(udb, rollout.rolloutId, (r) => r.state === 'done', 'done', 15_000);
    const client = await createClient({ service: 'counters', nats: nc, retryUnavailableMs: 5000 });
    try {
      for (let i = 0; i < 12; i++) assert.is(await client.actor(counterV2, `k${i}`).get(), i);
    } catch (e) {
      const logs = ctx.nodes.map((n, i) => `--- ${ids[i]}:\n${n.output().slice(-2500)}`).join('\n');
      throw new Error(`${(e as Error).message} at ${new Date().toISOString()}\n${logs}`);
    }
    await client.close();
  } finally {
    await nc.drain().catch(() => undefined);
  }
});

test.run();
