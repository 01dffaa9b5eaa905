/**
 * Labels end to end: four `molt node --label …` processes carry their labels
 * in their UDB records, `molt status` shows them, and a `groups` rollout
 * upgrades every node while never two nodes of one replica group at once
 * (that groups go in parallel is timing on real processes; the unit tests
 * show it on the simulated timeline).
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { renderStatus, statusView } from '../../runtime/operate/status.ts';
import { startEmbeddedNats, type ChildNode, type EmbeddedNats } from '../support/nats.ts';
import { killAll, openCounters, publish, startUpgradableNode, testPublisher, TIMINGS, waitForProgress, waitForRollout, waitForVersions } from '../support/upgrades.ts';

const test = suite('upgrades: node labels');

const fleet: Record<string, string[]> = {
  'node-a': ['--label', 'group=g1', '--label', 'zone=a'],
  'node-b': ['--label', 'group=g1', '--label', 'zone=b'],
  'node-c': ['--label', 'group=g2', '--label', 'zone=a'],
  'node-d': ['--label', 'group=g2', '--label', 'zone=b'],
};
const ids = Object.keys(fleet);

test('groups - labelled node processes roll out one node per group at a time', async () => {
  let nats: EmbeddedNats | undefined;
  let nodes: ChildNode[] = [];
  const { signer, publicKey } = testPublisher();
  try {
    nats = await startEmbeddedNats();
    nodes = await Promise.all(ids.map((id) => startUpgradableNode(nats!.url, id, { trust: [publicKey], args: fleet[id] })));
    const { nc, udb } = await openCounters(nats.url);
    try {
      // The records carry the labels, and molt status shows them.
      const records = await udb.nodes();
      assert.equal(Object.fromEntries(records.map((r) => [r.id, r.labels])), {
        'node-a': { group: 'g1', zone: 'a' },
        'node-b': { group: 'g1', zone: 'b' },
        'node-c': { group: 'g2', zone: 'a' },
        'node-d': { group: 'g2', zone: 'b' },
      });
      const lines = renderStatus(statusView('counters', await udb.snapshot(), Date.now(), TIMINGS.leaseMs), { unicode: false });
      assert.ok(lines.some((l) => /^node-c\s.*group=g2,zone=a/.test(l)), lines.join('\n'));

      const rollout = (await publish(nats.url, signer, 'test/fixtures/counter-v2.ts', { schedule: { name: 'groups', params: {} } })).upgrades[0]!;
      await waitForVersions(udb, ids, 'counter', 2, 30_000);
      await waitForRollout(udb, rollout.rolloutId, (r) => r.state === 'done', 'done');
      const progress = await waitForProgress(udb, rollout.rolloutId, ids);
      const span = (id: string) => {
        const steps = progress.get(id)!.steps;
        return { from: steps.find((s) => s.step === 'upgrading')!.at, to: steps.find((s) => s.step === 'upgraded')!.at };
      };
      for (const [x, y] of [['node-a', 'node-b'], ['node-c', 'node-d']] as const) {
        const [a, b] = [span(x), span(y)];
        // One of the group after the other: the later one starts after the earlier one is done.
        assert.ok(a.to <= b.from || b.to <= a.from, `${x} upgraded ${a.from}–${a.to} and ${y} ${b.from}–${b.to}: together`);
      }
      // Within a group, in the stable order.
      assert.ok(span('node-a').to <= span('node-b').from && span('node-c').to <= span('node-d').from, 'a group went out of order');
    } finally {
      await nc.drain().catch(() => undefined);
    }
  } finally {
    await killAll(nodes);
    await nats?.stop();
  }
});

test.run();
