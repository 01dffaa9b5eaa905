/**
 * Property: in a canary rollout, no other node starts before every canary has
 * reached the target version and the soak time has passed, the rest never
 * have more than `batch` upgrading at once, and everyone converges — over
 * random node sets, canary counts, batch sizes, soak times and lagging views.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fc from 'fast-check';
import { canary } from '../../../actors/schedules/index.ts';
import type { ScheduleNodeView } from '../../../actors/schedules/index.ts';
import { Cluster } from './support.ts';

type Step = { kind: 'deliver'; node: number; lag: number } | { kind: 'finish'; node: number } | { kind: 'tick' };

const stepArb: fc.Arbitrary<Step> = fc.oneof(
  { weight: 6, arbitrary: fc.record({ kind: fc.constant('deliver' as const), node: fc.nat(), lag: fc.nat({ max: 5 }) }) },
  { weight: 3, arbitrary: fc.record({ kind: fc.constant('finish' as const), node: fc.nat() }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('tick' as const) }) },
);

test('canary property - rest waits for canaries and soak; never more than batch of the rest at once; converges', () => {
  fc.assert(
    fc.property(
      fc.uniqueArray(fc.stringMatching(/^[a-z0-9]{1,4}$/), { minLength: 1, maxLength: 8 }),
      fc.integer({ min: 1, max: 3 }),
      fc.option(fc.integer({ min: 1, max: 3 }), { nil: undefined }),
      fc.integer({ min: 0, max: 5 }).map((s) => s * 1000),
      fc.array(stepArb, { maxLength: 50 }),
      (ids, canaries, batch, waitMs, steps) => {
        const params = batch === undefined ? { canaries, waitMs } : { canaries, waitMs, batch };
        const c = new Cluster(canary, ids, params);
        const sorted = [...ids].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
        const canaryIds = new Set(sorted.slice(0, canaries));
        let canariesDoneAt: number | undefined;
        const history: ScheduleNodeView[][] = [c.view()];
        const seen = new Map<string, number>(ids.map((id) => [id, 0]));
        const check = () => {
          history.push(c.view());
          if (canariesDoneAt === undefined && [...canaryIds].every((id) => c.versionOf(id) === 2)) canariesDoneAt = c.now;
          for (const id of c.started) {
            if (canaryIds.has(id)) continue;
            assert.ok(canariesDoneAt !== undefined, `${id} started before the canaries were done`);
          }
          const rest = c.upgrading().filter((id) => !canaryIds.has(id));
          if (batch !== undefined) assert.ok(rest.length <= batch, `${rest.length} of the rest upgrading, batch ${batch}`);
        };
        const startedAt = new Map<string, number>();
        c.onStart = () => {
          const rest = c.upgrading().filter((id) => !canaryIds.has(id));
          if (batch !== undefined) assert.ok(rest.length <= batch, `${rest.length} of the rest upgrading, batch ${batch}`);
        };
        const note = () => {
          for (const id of c.started) if (!startedAt.has(id)) startedAt.set(id, c.now);
        };
        for (const step of steps) {
          if (step.kind === 'tick') c.tick(1000);
          else {
            const id = ids[step.node % ids.length]!;
            if (step.kind === 'finish') c.finish(id);
            else {
              const at = Math.max(seen.get(id)!, history.length - 1 - step.lag);
              seen.set(id, at);
              c.deliver(id, history[at]);
            }
          }
          note();
          check();
        }
        for (let round = 0; round < ids.length * 2 + 10; round++) {
          c.tick(1000);
          c.settle();
          note();
          check();
        }
        for (const id of ids) assert.is(c.versionOf(id), 2, `${id} did not converge`);
        // Soak: every non-canary started at least waitMs after the canaries were seen done.
        for (const [id, at] of startedAt) {
          if (!canaryIds.has(id)) assert.ok(at - canariesDoneAt! >= waitMs, `${id} started ${at - canariesDoneAt!}ms after canaries, soak ${waitMs}`);
        }
      },
    ),
    { numRuns: 150 },
  );
});

test.run();
