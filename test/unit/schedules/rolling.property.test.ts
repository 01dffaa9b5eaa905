/**
 * Property: a rolling rollout never has more than k nodes upgrading at once,
 * whatever the node set, batch size, order of deliveries, staleness of each
 * node's view, node deaths and failed upgrades — and, when no upgrade fails,
 * every live node ends at the target version.
 *
 * A whole cluster of SF actors runs over an in-memory UDB; each node's view is
 * some past snapshot of the UDB, never older than the one it saw before (a KV
 * watch lags, it does not go back in time).
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fc from 'fast-check';
import { rolling } from '../../../actors/schedules/index.ts';
import { batchSize } from '../../../actors/schedules/rolling.ts';
import type { ScheduleNodeView } from '../../../actors/schedules/index.ts';
import { Cluster } from './support.ts';

type Step =
  | { kind: 'deliver'; node: number; lag: number }
  | { kind: 'finish'; node: number }
  | { kind: 'fail'; node: number }
  | { kind: 'kill'; node: number };

const stepArb: fc.Arbitrary<Step> = fc.oneof(
  { weight: 6, arbitrary: fc.record({ kind: fc.constant('deliver' as const), node: fc.nat(), lag: fc.nat({ max: 6 }) }) },
  { weight: 3, arbitrary: fc.record({ kind: fc.constant('finish' as const), node: fc.nat() }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('kill' as const), node: fc.nat() }) },
);
const failArb: fc.Arbitrary<Step> = fc.record({ kind: fc.constant('fail' as const), node: fc.nat() });

const idsArb = fc.uniqueArray(fc.stringMatching(/^[a-z0-9-]{1,6}$/), { minLength: 1, maxLength: 9 });
const sizeArb = fc.oneof(
  fc.integer({ min: 1, max: 4 }).map((batch) => ({ batch })),
  fc.integer({ min: 1, max: 100 }).map((percent) => ({ percent })),
);

function run(ids: string[], params: { batch?: number; percent?: number }, steps: Step[]) {
  const k = batchSize({ batch: params.batch, percent: params.percent }, ids.length);
  const c = new Cluster(rolling, ids, params);
  const history: ScheduleNodeView[][] = [c.view()];
  const seen = new Map<string, number>(ids.map((id) => [id, 0]));
  const record = () => {
    history.push(c.view());
    assert.ok(c.upgrading().length <= k, `more than ${k} upgrading: ${c.upgrading().join(', ')}`);
  };
  let failures = 0;
  for (const step of steps) {
    const id = ids[step.node % ids.length]!;
    switch (step.kind) {
      case 'deliver': {
        // A lagging but monotone view: no older than what this node saw last.
        const at = Math.max(seen.get(id)!, history.length - 1 - step.lag);
        seen.set(id, at);
        c.deliver(id, history[at]);
        break;
      }
      case 'finish':
        c.finish(id);
        break;
      case 'fail':
        if (c.truth.get(id)!.status === 'upgrading') failures++;
        c.fail(id);
        break;
      case 'kill':
        c.kill(id);
        break;
    }
    record();
  }
  // Drain: fresh views for everyone until nothing moves.
  for (let round = 0; round < ids.length * 3 + 5; round++) {
    for (const id of ids) {
      seen.set(id, history.length - 1);
      c.deliver(id);
      record();
    }
    for (const id of c.upgrading()) {
      c.finish(id);
      record();
    }
  }
  return { c, k, failures };
}

test('rolling property - never more than k upgrading; every live node converges when nothing fails', () => {
  fc.assert(
    fc.property(idsArb, sizeArb, fc.array(stepArb, { maxLength: 60 }), (ids, params, steps) => {
      const { c, k } = run(ids, params, steps);
      assert.ok(c.maxUpgrading <= k);
      for (const n of c.truth.values()) {
        if (n.live) assert.is(n.version, 2, `live node ${n.id} did not converge`);
      }
      // Started in the stable order, batch by batch: a node never started before
      // a live, unfinished node of an earlier batch — checked via the order of starts
      // among nodes that never died.
      const survivors = c.started.filter((id) => c.truth.get(id)!.live);
      const sorted = [...ids].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
      for (let i = 1; i < survivors.length; i++) {
        const batchPrev = Math.floor(sorted.indexOf(survivors[i - 1]!) / k);
        const batchCur = Math.floor(sorted.indexOf(survivors[i]!) / k);
        assert.ok(batchPrev <= batchCur, `started ${survivors[i]} (batch ${batchCur}) after ${survivors[i - 1]} (batch ${batchPrev})`);
      }
    }),
    { numRuns: 200 },
  );
});

test('rolling property - with failed upgrades, still never more than k upgrading', () => {
  fc.assert(
    fc.property(idsArb, sizeArb, fc.array(fc.oneof({ weight: 9, arbitrary: stepArb }, { weight: 1, arbitrary: failArb }), { maxLength: 60 }), (ids, params, steps) => {
      const { c, k } = run(ids, params, steps);
      assert.ok(c.maxUpgrading <= k);
    }),
    { numRuns: 200 },
  );
});

test.run();
