/**
 * Properties of the label-aware schedules, over random fleets (ids, zones,
 * groups, ring positions) and random timings (which node sees which past view
 * of the UDB when, when upgrades finish, which nodes die):
 *
 * - `groups` never has two live nodes of one group upgrading at once;
 * - `ring` never has two ring neighbours upgrading at once (neighbours in the
 *   ring of all members), and with current views never starts a node next to
 *   a live node upgrading (neighbours among the live nodes);
 * - `zones` never has nodes of two zones upgrading at once;
 * - and, when nothing fails, every live node ends at the target.
 *
 * One SF actor per node over an in-memory UDB (support.ts); each node's view
 * is a past snapshot no older than the one it saw before.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fc from 'fast-check';
import { groups, ring, zones, type ScheduleMachine, type ScheduleNodeView } from '../../../actors/schedules/index.ts';
import { groupOf } from '../../../actors/schedules/groups.ts';
import { liveNeighbours, ringOrder } from '../../../actors/schedules/ring.ts';
import { Cluster } from './support.ts';

type Step = { kind: 'deliver'; node: number; lag: number } | { kind: 'finish'; node: number } | { kind: 'kill'; node: number };

const stepArb = (lagMax: number): fc.Arbitrary<Step> =>
  fc.oneof(
    { weight: 6, arbitrary: fc.record({ kind: fc.constant('deliver' as const), node: fc.nat(), lag: fc.nat({ max: lagMax }) }) },
    { weight: 3, arbitrary: fc.record({ kind: fc.constant('finish' as const), node: fc.nat() }) },
    { weight: 1, arbitrary: fc.record({ kind: fc.constant('kill' as const), node: fc.nat() }) },
  );

/** A fleet: unique ids, each with a label value drawn from a few (or none). */
const fleetArb = (label: string, values: string[]) =>
  fc
    .uniqueArray(fc.stringMatching(/^[a-z0-9-]{1,6}$/), { minLength: 1, maxLength: 12 })
    .chain((ids) =>
      fc.tuple(fc.constant(ids), fc.array(fc.option(fc.constantFrom(...values), { nil: undefined, freq: 6 }), { minLength: ids.length, maxLength: ids.length })),
    )
    .map(([ids, vals]) => ids.map((id, i) => ({ id, labels: vals[i] === undefined ? undefined : { [label]: vals[i]! } })));

type Fleet = Array<{ id: string; labels: Record<string, string> | undefined }>;

/**
 * Runs the fleet through `steps`, then drains with current views; `check`
 * runs after every step, `onStart` at the moment a node starts upgrading.
 */
function run(machine: ScheduleMachine, fleet: Fleet, params: Record<string, unknown>, steps: Step[], check: (c: Cluster) => void, onStart?: (c: Cluster, id: string) => void) {
  const ids = fleet.map((f) => f.id);
  const c = new Cluster(machine, ids, params);
  for (const f of fleet) if (f.labels) c.truth.set(f.id, { ...c.truth.get(f.id)!, labels: f.labels });
  if (onStart) c.onStart = (id) => onStart(c, id);
  const history: ScheduleNodeView[][] = [c.view()];
  const seen = new Map<string, number>(ids.map((id) => [id, 0]));
  const record = () => {
    history.push(c.view());
    check(c);
  };
  for (const step of steps) {
    const id = ids[step.node % ids.length]!;
    if (step.kind === 'deliver') {
      const at = Math.max(seen.get(id)!, history.length - 1 - step.lag);
      seen.set(id, at);
      c.deliver(id, history[at]);
    } else if (step.kind === 'finish') c.finish(id);
    else c.kill(id);
    record();
  }
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
  for (const n of c.truth.values()) if (n.live) assert.is(n.version, 2, `live node ${n.id} did not converge`);
  return c;
}

const upgradingViews = (c: Cluster) => [...c.truth.values()].filter((n) => n.live && n.status === 'upgrading');

test('groups property - never two nodes of a group upgrading; every live node converges', () => {
  fc.assert(
    fc.property(fleetArb('group', ['g1', 'g2', 'g3']), fc.array(stepArb(6), { maxLength: 80 }), (fleet, steps) => {
      let most = 0;
      run(groups, fleet, {}, steps, (c) => {
        const byGroup = new Map<string, string[]>();
        for (const n of upgradingViews(c)) byGroup.set(groupOf(n, 'group'), [...(byGroup.get(groupOf(n, 'group')) ?? []), n.id]);
        for (const [g, members] of byGroup) assert.ok(members.length <= 1, `group ${g}: ${members.join(', ')} upgrading together`);
        most = Math.max(most, upgradingViews(c).length);
      });
      return most >= 0;
    }),
    { numRuns: 300 },
  );
});

test('groups property - maxUnavailable caps the whole service as well', () => {
  fc.assert(
    fc.property(fleetArb('group', ['g1', 'g2', 'g3', 'g4']), fc.array(stepArb(0), { maxLength: 60 }), (fleet, steps) => {
      run(groups, fleet, { maxUnavailable: 2 }, steps, (c) => assert.ok(upgradingViews(c).length <= 2, `${upgradingViews(c).length} upgrading`));
    }),
    { numRuns: 150 },
  );
});

/** Ring positions: a few numbers (ties broken by id) or none. */
const ringFleetArb = fleetArb('ring', ['1', '5', '9', '20', '33', 'x']);

test('ring property - never two ring neighbours upgrading, whatever the views; every live node converges', () => {
  fc.assert(
    fc.property(ringFleetArb, fc.array(stepArb(6), { maxLength: 80 }), (fleet, steps) => {
      run(ring, fleet, {}, steps, (c) => {
        const order = ringOrder([...c.truth.values()], 'ring');
        if (order.length < 2) return;
        for (let i = 0; i < order.length; i++) {
          const a = order[i]!;
          const b = order[(i + 1) % order.length]!;
          if (a === b) continue;
          const busy = (n: ScheduleNodeView) => n.live && n.status === 'upgrading';
          assert.ok(!(busy(a) && busy(b)), `ring neighbours ${a.id} and ${b.id} upgrading together`);
        }
      });
    }),
    { numRuns: 300 },
  );
});

test('ring property - with current views, a node never starts next to a live node upgrading, even after deaths', () => {
  fc.assert(
    fc.property(ringFleetArb, fc.array(stepArb(0), { maxLength: 80 }), (fleet, steps) => {
      run(
        ring,
        fleet,
        {},
        steps,
        () => undefined,
        (c, id) => {
          const order = ringOrder([...c.truth.values()], 'ring');
          const i = order.findIndex((n) => n.id === id);
          for (const m of liveNeighbours(order, i)) assert.ok(m.status !== 'upgrading', `${id} started next to ${m.id}, upgrading`);
        },
      );
    }),
    { numRuns: 300 },
  );
});

test('zones property - never nodes of two zones upgrading at once; zones go in order', () => {
  fc.assert(
    fc.property(fleetArb('zone', ['a', 'b', 'c']), fc.array(stepArb(6), { maxLength: 80 }), fc.boolean(), (fleet, steps, ordered) => {
      const order = ordered ? ['c', 'a'] : undefined;
      const rank = (z: string) => (order ? (order.indexOf(z) >= 0 ? order.indexOf(z) : z === '' ? 9 : 2) : z === '' ? 9 : ['a', 'b', 'c'].indexOf(z));
      let lastZone = -1;
      run(
        zones,
        fleet,
        order ? { order } : {},
        steps,
        (c) => {
          const zonesNow = new Set(upgradingViews(c).map((n) => n.labels?.zone ?? ''));
          assert.ok(zonesNow.size <= 1, `zones ${[...zonesNow].join(', ')} upgrading together`);
        },
        (c, id) => {
          // Among nodes that never died, starts go zone by zone in the order.
          if (!c.truth.get(id)!.live) return;
          const z = rank(c.truth.get(id)!.labels?.zone ?? '');
          const anyDead = [...c.truth.values()].some((n) => !n.live);
          if (!anyDead) assert.ok(z >= lastZone, `${id} (zone rank ${z}) started after zone rank ${lastZone}`);
          lastZone = Math.max(lastZone, z);
        },
      );
    }),
    { numRuns: 300 },
  );
});

test.run();
