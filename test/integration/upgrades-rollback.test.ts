/**
 * `molt rollback` across three node processes: v2 (which declares `down`) is
 * rolled out, state is written through v2 — some actors stay in memory, some
 * are passivated — then the rollout is rolled back. Every node returns to v1
 * with every acknowledged change (as far as v1 can represent it: the count),
 * resident actors carried down at once and the others when next loaded;
 * callers of v2 keep being served, through v2's future SO, during and after
 * the rollback. Then v2 is published again, as a new rollout.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { Kvm } from '@nats-io/kv';
import type { NatsConnection } from '@nats-io/transport-node';
import { createClient, createSuperjsonCodec, isMoltError, type MoltClient } from '../../runtime/index.ts';
import { encodeKey, stateKey } from '../../runtime/internal.ts';
import type { Udb } from '../../runtime/udb/index.ts';
import { controlRollout, rollbackRollout } from '../../runtime/operate/rollouts.ts';
import { counterV1 } from '../fixtures/counter.ts';
import { counterV2 } from '../fixtures/counter-v2.ts';
import { startEmbeddedNats, type ChildNode, type EmbeddedNats } from '../support/nats.ts';
import { publish, waitForProgress, waitForRollout, waitForVersions, startThreeNodeService, stopThreeNodeService, THREE_NODE_IDS, type ThreeNodeService } from '../support/upgrades.ts';

type Ctx = ThreeNodeService;
const test = suite<Ctx>('upgrades: rollback');
const ids = THREE_NODE_IDS;
// Actors idle this long leave memory: the "cold" ones below are in KV only when the rollback comes.
const passivateMs = 1200;

test.before(async (ctx) => {
  Object.assign(ctx, await startThreeNodeService({ args: ['--passivate-after', String(passivateMs)] }));
});

test.after(async (ctx) => {
  await stopThreeNodeService(ctx);
});

/** Version stamp of an actor's stored state. */
async function storedVersion(nc: NatsConnection, key: string): Promise<number> {
  const kv = await new Kvm(nc).open('molt_counters_state');
  const entry = await kv.get(stateKey('counter', encodeKey(key)));
  return (createSuperjsonCodec().decode(entry!.value) as { v: number }).v;
}

test('rollback - every node returns to v1 with every acknowledged change; v2 callers are still served', async ({ nats, nc, udb, client, publisher }) => {
  const expected = new Map<string, number>();
  const cold = Array.from({ length: 12 }, (_, i) => `cold-${i}`);
  const hot = Array.from({ length: 12 }, (_, i) => `hot-${i}`);
  for (const [i, k] of cold.entries()) expected.set(k, await client.actor(counterV1, k).increment({ by: i }));

  const rollout = (await publish(nats.url, publisher.signer, 'test/fixtures/counter-v2.ts')).upgrades[0]!;
  await waitForVersions(udb, ids, 'counter', 2);
  await waitForRollout(udb, rollout.rolloutId, (r) => r.state === 'done', 'done');

  // Changes through v2 (decrement exists only there), acknowledged before the rollback.
  for (const k of cold) expected.set(k, await client.actor(counterV2, k).decrement({ by: 1 }));
  await new Promise((r) => setTimeout(r, passivateMs * 2)); // the cold actors leave memory
  for (const [i, k] of hot.entries()) {
    await client.actor(counterV2, k).increment({ by: 10 + i });
    expected.set(k, await client.actor(counterV2, k).decrement({ by: 2 }));
  }
  assert.is(await storedVersion(nc, 'cold-3'), 2);

  // v2 callers keep calling while the nodes roll back.
  let loading = true;
  const failures: string[] = [];
  const load = (async () => {
    for (let n = 0; loading; n++) {
      const k = hot[n % hot.length]!;
      try {
        expected.set(k, await client.actor(counterV2, k).increment({ by: 1 }));
      } catch (e) {
        failures.push(String(e));
      }
    }
  })();

  const { message } = await rollbackRollout(udb, nc, 'counter@2', 'v2 misbehaves');
  assert.match(message, /rolling back: every node returns to counter@1/);
  await waitForVersions(udb, ids, 'counter', 1);
  const done = await waitForRollout(udb, rollout.rolloutId, (r) => r.state === 'rolled-back', 'rolled-back');
  assert.is(done.reason, 'v2 misbehaves');
  assert.ok(done.endedAt !== undefined);
  const progress = await waitForProgress(udb, rollout.rolloutId, ids, ['rolled-back']);
  const carried = [...progress.values()].reduce((sum, p) => sum + Number(/carried (\d+) resident/.exec(p.note ?? '')?.[1] ?? 0), 0);
  assert.ok(carried >= hot.length, `resident actors were carried down at once: ${JSON.stringify([...progress.values()].map((p) => p.note))}`);
  await new Promise((r) => setTimeout(r, 300));
  loading = false;
  await load;
  assert.equal(failures, [], 'no v2 call failed during the rollback');

  // Resident actors were written at v1 by the rollback; cold ones are still at v2 until loaded.
  assert.is(await storedVersion(nc, 'hot-0'), 1);
  assert.is(await storedVersion(nc, 'cold-3'), 2);
  for (const [k, count] of expected) {
    assert.is(await client.actor(counterV1, k).get(), count, `${k} through v1`);
    assert.is(await client.actor(counterV2, k).get(), count, `${k} through v2's future SO`);
  }
  // A change through the future SO, on a cold actor carried down when loaded: written at v1.
  assert.is(await client.actor(counterV2, 'cold-3').decrement({ by: 3 }), expected.get('cold-3')! - 3);
  assert.is(await storedVersion(nc, 'cold-3'), 1);
  expected.set('cold-3', expected.get('cold-3')! - 3);
  // What v1 cannot represent is disallowed, never made up.
  try {
    await client.actor(counterV2, 'hot-1').steps();
    assert.unreachable('steps is disallowed on a v1 node');
  } catch (e) {
    assert.ok(isMoltError(e, 'Disallowed'), String(e));
  }

  for (const n of await udb.nodes()) {
    assert.is(n.status, 'running', n.id);
    assert.ok(n.known?.counter?.includes(2), `${n.id} keeps v2 loaded (its future SO)`);
  }
  // A rollback is final.
  assert.match((await rollbackRollout(udb, nc, rollout.rolloutId)).message, /already rolled back/);
  try {
    await controlRollout(udb, rollout.rolloutId, 'resume');
    assert.unreachable('resume after a rollback');
  } catch (e) {
    assert.match((e as Error).message, /was rolled back: nodes return to counter@1; a rollback is final/);
  }
  try {
    await publish(nats.url, publisher.signer, 'test/fixtures/counter-v2.ts', { fix: true, versions: { counter: 2 } });
    assert.unreachable('a fix of a rolled-back version');
  } catch (e) {
    assert.match((e as Error).message, /was rolled back; publish counter@2 again without --fix/);
  }

  // Published again: a new rollout of v2 on top of v1; the counts carry up again.
  const again = (await publish(nats.url, publisher.signer, 'test/fixtures/counter-v2.ts')).upgrades[0]!;
  assert.is(again.to, 2);
  assert.not.equal(again.rolloutId, rollout.rolloutId);
  await waitForVersions(udb, ids, 'counter', 2);
  await waitForRollout(udb, again.rolloutId, (r) => r.state === 'done', 'done');
  for (const [k, count] of expected) assert.is(await client.actor(counterV2, k).get(), count, `${k} at v2 again`);
  assert.equal(await client.actor(counterV2, 'hot-0').via(), ['tf2'], 'carried up by the TF again');
  assert.is((await udb.rollout(rollout.rolloutId))!.record.state, 'rolled-back', 'the old rollout stays rolled back');
});

test.run();
