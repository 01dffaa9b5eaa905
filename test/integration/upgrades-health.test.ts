/**
 * A built-in schedule's health gate halts a rollout across three node
 * processes: `canary` with `health: { maxTransformFailures: 0 }`. The canary
 * (node-a) upgrades; an actor it then loads fails its transform; the other
 * nodes' scheduling functions see the failure in node-a's record and halt —
 * they do not upgrade, and the rollout is paused with the gate's reason.
 *
 * The node that sees a transform failure also pauses the rollout itself
 * (upgrades-fix.test.ts). To show the SF's own gate at work, the operator
 * pauses while the failure happens and resumes after that node's pause: a
 * resume accepts the node's report, but the SFs, which saw the failure while
 * paused, halt on it.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { Kvm } from '@nats-io/kv';
import { createClient, createSuperjsonCodec, isMoltError } from '../../runtime/index.ts';
import { assignShards, encodeKey, shardOf, stateKey } from '../../runtime/internal.ts';
import { controlRollout } from '../../runtime/operate/rollouts.ts';
import { counterV2 } from '../fixtures/counter-v2-buggy.ts';
import { startEmbeddedNats, type ChildNode, type EmbeddedNats } from '../support/nats.ts';
import { eventually, killAll, openCounters, publish, startUpgradableNode, testPublisher, waitForProgress, waitForRollout, waitForVersions } from '../support/upgrades.ts';

const test = suite('upgrades: health gate');
const ids = ['node-a', 'node-b', 'node-c'];

test('canary health gate - a transform failure on the upgraded canary halts the rollout; the next nodes do not upgrade', async () => {
  let nats: EmbeddedNats | undefined;
  let nodes: ChildNode[] = [];
  const publisher = testPublisher();
  try {
    nats = await startEmbeddedNats();
    nodes = await Promise.all(ids.map((id) => startUpgradableNode(nats!.url, id, { trust: [publisher.publicKey] })));
    const { nc, udb } = await openCounters(nats.url);
    const client = await createClient({ service: 'counters', nats: nc, timeoutMs: 5000 });
    try {
      const rollout = (
        await publish(nats.url, publisher.signer, 'test/fixtures/counter-v2-buggy.ts', {
          schedule: { name: 'canary', params: { canaries: 1, waitMs: 60_000, health: { maxTransformFailures: 0 } } },
        })
      ).upgrades[0]!;
      await waitForVersions(udb, ['node-a'], 'counter', 2);
      await waitForProgress(udb, rollout.rolloutId, ['node-a']);
      await controlRollout(udb, rollout.rolloutId, 'pause', 'looking at the canary');

      // An actor of node-a's shards, stored at v1 with the count the buggy TF refuses:
      // node-a carries it when it first loads it, and fails.
      const owners = assignShards(ids, 64);
      let i = 0;
      while (owners[shardOf(encodeKey(`unlucky-${i}`), 64)] !== 'node-a') i++;
      const unlucky = `unlucky-${i}`;
      const state = await new Kvm(nc).open('molt_counters_state');
      await state.put(stateKey('counter', encodeKey(unlucky)), createSuperjsonCodec().encode({ v: 1, value: {}, context: { count: 13 } }));
      try {
        await client.actor(counterV2, unlucky).get();
        assert.unreachable('the transform fails');
      } catch (e) {
        assert.ok(isMoltError(e, 'TransformFailed'), String(e));
      }
      // node-a reports it (and pauses the rollout itself); the others' SFs see it in node-a's record.
      await eventually(async () => (await udb.nodes()).find((n) => n.id === 'node-a')?.typeStats?.counter?.transformFailures === 1, 'node-a reports the failure', 5000);
      await eventually(async () => (await udb.control(rollout.rolloutId))?.by === 'node node-a', 'node-a paused the rollout', 5000);
      await new Promise((r) => setTimeout(r, 600)); // a few SF ticks

      // The operator accepts node-a's report and resumes; the SFs' health gate halts the rollout.
      await controlRollout(udb, rollout.rolloutId, 'resume');
      const halted = await waitForRollout(udb, rollout.rolloutId, (r) => r.state === 'paused' && /health gate/.test(r.reason ?? ''), 'halted by the health gate', 5000);
      assert.match(halted.reason!, /^health gate: 1 transform failure\(s\) reported \(node-a: 1\); at most 0 allowed$/);
      assert.match(halted.by ?? '', /^health gate on node-[bc]$/, 'the rollout says who halted it');
      const progress = await waitForProgress(udb, rollout.rolloutId, ['node-b', 'node-c'], ['scheduling']);
      for (const id of ['node-b', 'node-c']) assert.match(progress.get(id)!.note ?? '', /health gate: 1 transform failure\(s\) reported \(node-a: 1\)/, id);

      await new Promise((r) => setTimeout(r, 1500));
      const versions = Object.fromEntries((await udb.nodes()).map((n) => [n.id, n.versions.counter]));
      assert.equal(versions, { 'node-a': 2, 'node-b': 1, 'node-c': 1 }, 'the next nodes did not upgrade');
      assert.is((await udb.rollout(rollout.rolloutId))!.record.state, 'paused');
    } finally {
      await client.close();
      await nc.drain().catch(() => undefined);
    }
  } finally {
    await killAll(nodes);
    await nats?.stop();
  }
});

test.run();
