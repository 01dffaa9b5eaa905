/**
 * `molt simulate` against a real rollout: ten nodes (each with its upgrade
 * manager, on one nats-server) roll counter 1 → 2 out with `rolling`
 * `{ batch: 2, pauseMs: 1500 }`, and one of them is killed 1 s in. The
 * simulator, given the same schedule, parameters and kill, predicts the
 * rollout's duration within 25 %.
 *
 * What the simulator is told about the nodes themselves, it is told from the
 * real run: how long one node's upgrade takes (median of upgrading →
 * upgraded) and how long nodes take to learn of the upgrade (latest
 * verification after publishing). What it predicts is the rest — who waits
 * for whom, the pauses between batches, the kill's effect — and so the
 * duration.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createNode, silentLogger, type MoltNode } from '../../runtime/index.ts';
import { startUpgradeManager, type UpgradeManager } from '../../runtime/manager/index.ts';
import { simulateRollout } from '../../runtime/simulate/fleet.ts';
import service from '../fixtures/counter.ts';
import { startEmbeddedNats } from '../support/nats.ts';
import { openCounters, publish, testPublisher, waitForProgress, waitForRollout } from '../support/upgrades.ts';

const TICK_MS = 200;
const PARAMS = { batch: 2, pauseMs: 1500 };
const KILL = { at: 1000, node: 7 };

test('simulate - predicts a real 10-node rolling rollout with a kill within 25 %', async () => {
  const nats = await startEmbeddedNats();
  const { signer, publicKey } = testPublisher();
  const nodes: MoltNode[] = [];
  const managers: UpgradeManager[] = [];
  const { nc, udb } = await openCounters(nats.url);
  try {
    for (let i = 0; i < 10; i++) {
      const node = await createNode({ service, nats: { servers: nats.url }, nodeId: `n${i}`, heartbeatMs: 300, leaseMs: 1500, logger: silentLogger });
      nodes.push(node);
      managers.push(await startUpgradeManager(node, { trustedKeys: [publicKey], reconcileMs: 500, tickMs: TICK_MS, leaseMs: 1500, logger: silentLogger }));
    }
    const rollout = (await publish(nats.url, signer, 'test/fixtures/counter-v2.ts', { schedule: { name: 'rolling', params: PARAMS } })).upgrades[0]!;
    const startedAt = (await udb.rollout(rollout.rolloutId))!.record.startedAt;
    // The kill: its manager and node stop (the node leaves the service; its SF ends), 1 s in.
    setTimeout(() => {
      void managers[KILL.node]!.stop().then(() => nodes[KILL.node]!.stop());
    }, Math.max(0, startedAt + KILL.at - Date.now()));
    const survivors = nodes.map((n) => n.id).filter((_, i) => i !== KILL.node);
    await waitForRollout(udb, rollout.rolloutId, (r) => r.state === 'done', 'done', 60_000);
    const progress = await waitForProgress(udb, rollout.rolloutId, survivors);
    const at = (id: string, step: string) => progress.get(id)!.steps.find((s) => s.step === step)?.at;
    const real = Math.max(...survivors.map((id) => at(id, 'upgraded')!)) - startedAt;
    const upgradeTimes = survivors.map((id) => at(id, 'upgraded')! - at(id, 'upgrading')!).sort((a, b) => a - b);
    const upgradeMs = upgradeTimes[Math.floor(upgradeTimes.length / 2)]!;
    const learnMs = Math.max(...survivors.map((id) => (at(id, 'verified') ?? at(id, 'scheduling')!) - startedAt));

    const predicted = simulateRollout({
      nodes: 10,
      schedule: { name: 'rolling', params: PARAMS },
      upgradeMs,
      jitter: 0,
      learnMs,
      viewLagMs: 50,
      tickMs: TICK_MS,
      failures: { kills: [KILL] },
    });
    assert.ok(predicted.finished);
    const error = Math.abs(predicted.durationMs - real) / real;
    process.stdout.write(`  real ${real} ms, predicted ${Math.round(predicted.durationMs)} ms (${(100 * error).toFixed(1)} %); upgrade ${upgradeMs} ms, learn ${learnMs} ms\n`);
    assert.ok(error <= 0.25, `predicted ${Math.round(predicted.durationMs)} ms, real ${real} ms`);
  } finally {
    await Promise.allSettled(managers.map((m) => m.stop()));
    await Promise.allSettled(nodes.map((n) => n.stop()));
    await nc.drain().catch(() => undefined);
    await nats.stop();
  }
});

test.run();
