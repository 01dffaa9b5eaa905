/**
 * Publishing an upgrade rolls it out across node processes: each node loads
 * the future SO at once, then upgrades when its scheduling function says so
 * (`immediate`, then `rolling`), and the upgrade database records every step.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import type { NatsConnection } from '@nats-io/transport-node';
import { createClient, type MoltClient } from '../../runtime/index.ts';
import type { Udb } from '../../runtime/udb/index.ts';
import { counterV1 } from '../fixtures/counter.ts';
import { counterV2 } from '../fixtures/counter-v2.ts';
import { counterV3 } from '../fixtures/counter-v3.ts';
import { startEmbeddedNats, type ChildNode, type EmbeddedNats } from '../support/nats.ts';
import { eventually, publish, waitForProgress, waitForRollout, waitForVersions, startThreeNodeService, stopThreeNodeService, THREE_NODE_IDS, type ThreeNodeService } from '../support/upgrades.ts';

type Ctx = ThreeNodeService;
const test = suite<Ctx>('upgrades: rollout');
const ids = THREE_NODE_IDS;

test.before(async (ctx) => {
  Object.assign(ctx, await startThreeNodeService());
});

test.after(async (ctx) => {
  await stopThreeNodeService(ctx);
});

test('immediate - every node loads v2, upgrades, and the TF carries state', async ({ nats, udb, client, publisher }) => {
  for (let i = 0; i < 10; i++) await client.actor(counterV1, `k${i}`).increment({ by: i + 1 });
  const result = await publish(nats.url, publisher.signer, 'test/fixtures/counter-v2.ts');
  assert.is(result.upgrades.length, 1, 'one upgrade: counter 1→2 (cache is unchanged)');
  const rollout = result.upgrades[0]!;
  assert.equal([rollout.type, rollout.from, rollout.to], ['counter', 1, 2]);

  await waitForVersions(udb, ids, 'counter', 2);
  const done = await waitForRollout(udb, rollout.rolloutId, (r) => r.state === 'done', 'done');
  assert.equal(done.counts, { '2': 3 });
  assert.ok(done.endedAt! >= done.startedAt);

  const progress = await waitForProgress(udb, rollout.rolloutId, ids);
  for (const id of ids) {
    const steps = progress.get(id)?.steps.map((s) => s.step) ?? [];
    assert.equal(steps, ['verified', 'loaded', 'scheduling', 'upgrading', 'upgraded'], `${id}: ${steps}`);
  }
  for (let i = 0; i < 10; i++) {
    const v2 = client.actor(counterV2, `k${i}`);
    assert.is(await v2.get(), i + 1);
    assert.equal(await v2.via(), ['tf2']);
    // v1 callers are still served (v2 is compatible).
    assert.is(await client.actor(counterV1, `k${i}`).increment({ by: 1 }), i + 2);
  }
});

test('rolling - v3 rolls out one node at a time and v2 callers keep working', async ({ nats, udb, client, publisher }) => {
  const result = await publish(nats.url, publisher.signer, 'test/fixtures/counter-v3.ts', { schedule: { name: 'rolling', params: { batch: 1 } } });
  const rollout = result.upgrades[0]!;
  assert.equal([rollout.from, rollout.to, rollout.schedule.name], [2, 3, 'rolling']);
  // Every node learns of v3 within a moment; from then on, v2 and v3 callers are
  // both served everywhere (past and future SOs) while it rolls.
  await eventually(async () => (await udb.nodes()).every((n) => n.known?.counter?.includes(3)), 'every node knows counter@3', 5000);
  const calls: Promise<unknown>[] = [];
  for (let i = 0; i < 10; i++) calls.push(client.actor(counterV2, `k${i}`).get(), client.actor(counterV3, `k${i}`).total());
  await Promise.all(calls);
  await waitForVersions(udb, ids, 'counter', 3);
  await waitForRollout(udb, rollout.rolloutId, (r) => r.state === 'done', 'done');
  // At most one node upgraded at a time: their upgrade intervals do not overlap.
  const intervals = [...(await waitForProgress(udb, rollout.rolloutId, ids)).values()].map((p) => {
    const start = p.steps.find((s) => s.step === 'upgrading')!.at;
    const end = p.steps.find((s) => s.step === 'upgraded')!.at;
    return [start, end] as const;
  });
  intervals.sort((a, b) => a[0] - b[0]);
  for (let i = 1; i < intervals.length; i++) assert.ok(intervals[i]![0] >= intervals[i - 1]![1], `overlapping upgrades: ${JSON.stringify(intervals)}`);
  for (let i = 0; i < 10; i++) {
    assert.is(await client.actor(counterV3, `k${i}`).total(), i + 2);
    assert.equal(await client.actor(counterV3, `k${i}`).via(), ['tf2', 'tf3']);
    assert.is(await client.actor(counterV2, `k${i}`).get(), i + 2, 'v2 callers through the past SO');
  }
});

test('chain - publishing a version that does not extend the chain is refused', async ({ nats, publisher }) => {
  try {
    await publish(nats.url, publisher.signer, 'test/fixtures/counter-v3.ts');
    assert.unreachable('publishing v3 again must be refused');
  } catch (e) {
    assert.match((e as Error).message, /nothing to publish: the chain is already at counter@3/);
  }
  try {
    await publish(nats.url, publisher.signer, 'test/fixtures/counter-v2.ts');
    assert.unreachable('publishing an older module must be refused');
  } catch (e) {
    assert.match((e as Error).message, /newest counter is version 2, but the chain is already at 3/);
  }
  try {
    await publish(nats.url, publisher.signer, 'test/fixtures/counter-v3.ts', { versions: { counter: 5 } });
    assert.unreachable('skipping a version must be refused');
  } catch (e) {
    assert.match((e as Error).message, /counter@5 does not extend the chain: the last published version is 3, so publish counter@4 first/);
  }
});

test.run();
