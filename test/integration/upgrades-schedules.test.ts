/**
 * Each built-in scheduling function drives a real rollout across three node
 * processes (immediate and rolling: upgrades-rollout.test.ts). One fresh
 * nats-server per schedule, since a chain can be published only once.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import type { ProgressRecord } from '../../runtime/udb/index.ts';
import { startEmbeddedNats, type ChildNode, type EmbeddedNats } from '../support/nats.ts';
import { killAll, openCounters, progressByNode, publish, startUpgradableNode, testPublisher, waitForRollout, waitForVersions } from '../support/upgrades.ts';

const test = suite('upgrades: built-in schedules');
const ids = ['node-a', 'node-b', 'node-c'];

/** Runs one v1 → v2 rollout with `schedule` on three fresh node processes; returns each node's progress. */
async function rollOut(name: string, params: Record<string, unknown>): Promise<Map<string, ProgressRecord>> {
  let nats: EmbeddedNats | undefined;
  let nodes: ChildNode[] = [];
  const { signer, publicKey } = testPublisher();
  try {
    nats = await startEmbeddedNats();
    nodes = await Promise.all(ids.map((id) => startUpgradableNode(nats!.url, id, { trust: [publicKey] })));
    const { nc, udb } = await openCounters(nats.url);
    try {
      const rollout = (await publish(nats.url, signer, 'test/fixtures/counter-v2.ts', { schedule: { name, params } })).upgrades[0]!;
      await waitForVersions(udb, ids, 'counter', 2, 20_000);
      await waitForRollout(udb, rollout.rolloutId, (r) => r.state === 'done', 'done');
      const progress = await progressByNode(udb, rollout.rolloutId);
      for (const id of ids) assert.is(progress.get(id)?.step, 'upgraded', `${name}: ${id}`);
      return progress;
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
  const progress = await rollOut('canary', { canaries: 1, waitMs: 800, batch: 2 });
  const canaryDone = at(progress.get('node-a'), 'upgraded');
  for (const id of ['node-b', 'node-c']) {
    const started = at(progress.get(id), 'upgrading');
    assert.ok(started >= canaryDone + 700, `${id} started ${started - canaryDone} ms after the canary finished`);
  }
});

test('whenIdle - idle nodes upgrade once quiet for the required time', async () => {
  const progress = await rollOut('whenIdle', { maxCallsPerSecond: 5, forMs: 600 });
  for (const id of ids) {
    const p = progress.get(id);
    assert.ok(at(p, 'upgrading') - at(p, 'scheduling') >= 500, `${id} waited to be idle`);
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
