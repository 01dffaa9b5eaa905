/**
 * Operator control across three node processes, with the stepwise custom SF
 * shipped in the bundle (one node at a time, a pause between nodes):
 * pause holds, resume completes; retire; abort leaves every node consistent;
 * rollback is refused with the reason (rollback itself: upgrades-rollback.test.ts).
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import type { NatsConnection } from '@nats-io/transport-node';
import { createClient, isMoltError, type MoltClient } from '../../runtime/index.ts';
import type { Udb } from '../../runtime/udb/index.ts';
import { controlRollout, retireVersion, rollbackRefusal, rollbackRollout } from '../../runtime/operate/rollouts.ts';
import { counterV1 } from '../fixtures/counter.ts';
import { counterV2 } from '../fixtures/counter-v2.ts';
import { counterV3 } from '../fixtures/counter-v3.ts';
import { startEmbeddedNats, type ChildNode, type EmbeddedNats } from '../support/nats.ts';
import { eventually, publish, waitForProgress, waitForRollout, waitForVersions, startThreeNodeService, stopThreeNodeService, THREE_NODE_IDS, type ThreeNodeService } from '../support/upgrades.ts';

type Ctx = ThreeNodeService;
const test = suite<Ctx>('upgrades: control');
const ids = THREE_NODE_IDS;
// Long enough that, even on a loaded machine, the next node is still waiting when the test pauses or aborts.
const stepwise = { name: 'stepwise', params: { gapMs: 2500 } };

test.before(async (ctx) => {
  Object.assign(ctx, await startThreeNodeService());
  for (let i = 0; i < 12; i++) await ctx.client.actor(counterV1, `k${i}`).increment({ by: i });
});

test.after(async (ctx) => {
  await stopThreeNodeService(ctx);
});

async function versions(udb: Udb): Promise<Record<string, number>> {
  return Object.fromEntries((await udb.nodes()).map((n) => [n.id, n.versions.counter!]));
}

test('pause - holds the nodes that have not upgraded; resume completes the rollout', async ({ nats, udb, publisher }) => {
  const rollout = (await publish(nats.url, publisher.signer, 'test/fixtures/counter-v2.ts', { schedule: stepwise })).upgrades[0]!;
  await waitForVersions(udb, ['node-a'], 'counter', 2);
  const { message } = await controlRollout(udb, 'counter@2', 'pause', 'checking the first node');
  assert.match(message, /paused/);
  // Hold for a while: longer than the SF's gap between nodes.
  await new Promise((r) => setTimeout(r, 3000));
  const held = await versions(udb);
  assert.is(held['node-a'], 2);
  assert.ok(held['node-b'] === 1 || held['node-c'] === 1, `someone must still be waiting: ${JSON.stringify(held)}`);
  const r = (await udb.rollout(rollout.rolloutId))!.record;
  assert.is(r.state, 'paused');
  assert.is(r.reason, 'checking the first node');

  await controlRollout(udb, rollout.rolloutId, 'resume');
  await waitForVersions(udb, ids, 'counter', 2);
  await waitForRollout(udb, rollout.rolloutId, (x) => x.state === 'done', 'done');
});

test('retire - an old version is retired everywhere, never the one a node runs', async ({ udb, client }) => {
  try {
    await retireVersion(udb, 'counter', 2);
    assert.unreachable('retiring the running version must be refused');
  } catch (e) {
    assert.match((e as Error).message, /cannot retire counter@2: .*node-a runs counter@2/, (e as Error).message);
  }
  assert.match(await retireVersion(udb, 'counter', 1), /retired counter@1/);
  await eventually(async () => {
    try {
      await client.actor(counterV1, 'k1').get();
      return false;
    } catch (e) {
      return isMoltError(e, 'VersionRetired');
    }
  }, 'v1 callers get VersionRetired', 5000);
  for (let i = 0; i < 12; i++) {
    try {
      await client.actor(counterV1, `k${i}`).get();
      assert.unreachable('v1 is retired on every node');
    } catch (e) {
      assert.ok(isMoltError(e, 'VersionRetired'), String(e));
    }
    assert.is(await client.actor(counterV2, `k${i}`).get(), i);
  }
});

test('abort - stops the rollout where it is and every node stays consistent', async ({ nats, udb, client, publisher }) => {
  const rollout = (await publish(nats.url, publisher.signer, 'test/fixtures/counter-v3.ts', { schedule: stepwise })).upgrades[0]!;
  await waitForVersions(udb, ['node-a'], 'counter', 3);
  await controlRollout(udb, rollout.rolloutId, 'abort', 'v3 looks wrong');
  await new Promise((r) => setTimeout(r, 3000));
  const after = await versions(udb);
  assert.is(after['node-a'], 3);
  const behind = ids.filter((id) => after[id] === 2);
  assert.ok(behind.length >= 1, `at least one node stays at 2: ${JSON.stringify(after)}`);
  for (const id of ids) assert.ok(after[id] === 2 || after[id] === 3, `${id} is at 2 or 3`);
  const nodes = await udb.nodes();
  for (const n of nodes) assert.is(n.status, 'running', `${n.id} is not mid-upgrade`);
  await waitForProgress(udb, rollout.rolloutId, behind, ['aborted']);
  const record = (await udb.rollout(rollout.rolloutId))!.record;
  assert.is(record.state, 'aborted');
  assert.is(record.reason, 'v3 looks wrong');
  // Both versions are served on every node: v2 natively or by the past SO, v3 natively or by the future SO.
  for (let i = 0; i < 12; i++) {
    assert.is(await client.actor(counterV2, `k${i}`).get(), i);
    assert.is(await client.actor(counterV3, `k${i}`).total(), i);
  }
  // An abort is final.
  try {
    await controlRollout(udb, rollout.rolloutId, 'resume');
    assert.unreachable('resume after abort');
  } catch (e) {
    assert.match((e as Error).message, /was aborted \(v3 looks wrong\); an abort is final/);
  }
});

test('rollback - refused, saying the upgrade declares no down transform', async ({ nc, udb }) => {
  const refusal = (await rollbackRefusal(udb, nc, 'counter@3'))!;
  assert.is(refusal.code, 'OperationRefused');
  assert.is(refusal.data.reason, 'no-down-transform');
  assert.match(refusal.message, /counter@3 declares no down transform/);
  try {
    await rollbackRollout(udb, nc, 'counter@3');
    assert.unreachable('molt rollback must refuse');
  } catch (e) {
    assert.match((e as Error).message, /declares no down transform/);
  }
  // v2 declares one, but v3 is published on top of it: the chain runs down from the top.
  const notNewest = (await rollbackRefusal(udb, nc, 'counter@2'))!;
  assert.is(notNewest.data.reason, 'not-newest');
  assert.match(notNewest.message, /counter@3 .* is published on top of it; roll back from the top of the chain down/);
  const record = (await udb.rollout((await udb.rollouts()).find((r) => r.to === 3)!.rolloutId))!.record;
  assert.is(record.state, 'aborted', 'a refused rollback changes nothing');
});

test.run();
