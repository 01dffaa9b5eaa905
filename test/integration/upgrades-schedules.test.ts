/**
 * Each built-in scheduling function drives a real rollout across three node
 * processes (immediate and rolling: upgrades-rollout.test.ts). One fresh
 * nats-server per schedule, since a chain can be published only once.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { createClient, type MoltClient } from '../../runtime/index.ts';
import type { ProgressRecord, Udb } from '../../runtime/udb/index.ts';
import { counterV1 } from '../fixtures/counter.ts';
import { startEmbeddedNats, type ChildNode, type EmbeddedNats } from '../support/nats.ts';
import { killAll, openCounters, publish, waitForProgress, startUpgradableNode, testPublisher, waitForRollout, waitForVersions } from '../support/upgrades.ts';

const test = suite('upgrades: built-in schedules');
const ids = ['node-a', 'node-b', 'node-c'];

/**
 * Runs one v1 → v2 rollout with `schedule` on three fresh node processes;
 * `before` runs once the nodes serve, just before publishing, and `during`
 * right after. Returns each node's progress.
 */
async function rollOut(
  name: string,
  params: Record<string, unknown>,
  during?: (url: string, udb: Udb) => Promise<void>,
  before?: (url: string) => Promise<void>,
): Promise<Map<string, ProgressRecord>> {
  let nats: EmbeddedNats | undefined;
  let nodes: ChildNode[] = [];
  const { signer, publicKey } = testPublisher();
  try {
    nats = await startEmbeddedNats();
    nodes = await Promise.all(ids.map((id) => startUpgradableNode(nats!.url, id, { trust: [publicKey] })));
    const { nc, udb } = await openCounters(nats.url);
    try {
      await before?.(nats.url);
      const rollout = (await publish(nats.url, signer, 'test/fixtures/counter-v2.ts', { schedule: { name, params } })).upgrades[0]!;
      await during?.(nats.url, udb);
      await waitForVersions(udb, ids, 'counter', 2, 20_000);
      await waitForRollout(udb, rollout.rolloutId, (r) => r.state === 'done', 'done');
      return await waitForProgress(udb, rollout.rolloutId, ids);
    } finally {
      await nc.drain().catch(() => undefined);
    }
  } finally {
    await killAll(nodes);
    await nats?.stop();
  }
}

const at = (p: ProgressRecord | undefined, step: string) => p!.steps.find((s) => s.step === step)!.at;

test('canary - the first node goes first, the rest after the soak time', async () => {
  const progress = await rollOut('canary', { canaries: 1, waitMs: 1000, batch: 2 });
  const canaryDone = at(progress.get('node-a'), 'upgraded');
  for (const id of ['node-b', 'node-c']) {
    const started = at(progress.get(id), 'upgrading');
    // The soak clock is the SF's (ticks, every 200 ms here): it may start up to a tick early.
    assert.ok(started >= canaryDone + 700, `${id} started ${started - canaryDone} ms after the canary finished`);
  }
});

test('whenIdle - busy nodes wait; they upgrade once quiet for the required time', async () => {
  let loadEnded = 0;
  let client: MoltClient | undefined;
  let stopLoad = false;
  let load: Promise<void> | undefined;
  try {
    const progress = await rollOut(
      'whenIdle',
      { maxCallsPerSecond: 2, forMs: 600 },
      async (_url, udb) => {
        // Every node busy (far above 2 calls/s) for two seconds after the publish: nobody may upgrade.
        await new Promise((r) => setTimeout(r, 2000));
        const during = await Promise.all(ids.map(async (id) => (await udb.node(id))?.versions.counter));
        stopLoad = true;
        await load;
        loadEnded = Date.now();
        await client!.close();
        assert.equal(during, [1, 1, 1], 'no node upgraded while busy');
      },
      async (url) => {
        // Busy before the publish: a node's scheduling function may read its first load a tick after the publish.
        client = await createClient({ service: 'counters', nats: { servers: url } });
        const c = client;
        let k = 0;
        load = (async () => {
          while (!stopLoad) {
            // On a loaded machine a node may briefly hand over its shards: a failed call is still load.
            await Promise.all(Array.from({ length: 12 }, () => c.actor(counterV1, `busy-${k++ % 48}`).get().catch(() => undefined)));
            await new Promise((r) => setTimeout(r, 20));
          }
        })();
        await new Promise((r) => setTimeout(r, 500));
      },
    );
    for (const id of ids) assert.ok(at(progress.get(id), 'upgrading') >= loadEnded + 300, `${id} upgraded once idle`);
  } finally {
    // On a failure before the load stopped (the server is gone by now).
    stopLoad = true;
    await load;
    await client?.close().catch(() => undefined);
  }
});

test('window - nodes upgrade inside the time window', async () => {
  const hhmm = (ms: number) => new Date(ms).toISOString().slice(11, 16);
  await rollOut('window', { start: hhmm(Date.now() - 120_000), end: hhmm(Date.now() + 600_000), timeZone: 'UTC' });
});

test('after - nodes upgrade once the dependency (another type) has reached its version', async () => {
  await rollOut('after', { type: 'cache', version: 1 });
});

test.run();
