/**
 * `molt simulate` withholds a node list from an SF when the list would change
 * nothing but the SF's copy of it (`nodeListIsQuiet`), and gives it the
 * latest withheld list before any other event. Here two copies of one SF see
 * the same random events — node lists, ticks, pause and resume — one given
 * every event, the other the simulator's way: they must decide the same
 * thing at the same step, and hold the same context whenever nothing is
 * withheld.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fc from 'fast-check';
import { createActor, type Actor } from 'xstate';
import { canary, groups, rolling, zones, type ScheduleEvent, type ScheduleMachine, type ScheduleNodeView } from '../../actors/schedules/index.ts';
import { nodeListIsQuiet } from '../../actors/schedules/machine.ts';
import { stepwise } from '../fixtures/stepwise-schedule.ts';

const IDS = ['n0', 'n1', 'n2', 'n3', 'n4', 'n5', 'n6', 'n7'];

type Step = { kind: 'nodes'; nodes: Array<Omit<ScheduleNodeView, 'id'> & { live: boolean }>; drop: number } | { kind: 'tick'; ms: number } | { kind: 'control'; command: 'pause' | 'resume' };

const stepArb: fc.Arbitrary<Step> = fc.oneof(
  { weight: 8, arbitrary: fc.record({ kind: fc.constant('nodes' as const), nodes: fc.array(fc.record({ version: fc.constantFrom(1, 1, 2), status: fc.constantFrom('running' as const, 'running' as const, 'upgrading' as const, 'failed' as const, 'stopped' as const), live: fc.constantFrom(true, true, true, false) }), { minLength: IDS.length, maxLength: IDS.length }), drop: fc.nat({ max: 12 }) }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('tick' as const), ms: fc.integer({ min: 0, max: 3000 }) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('control' as const), command: fc.constantFrom('pause' as const, 'resume' as const) }) },
);

/** `withholds`: whether lists are withheld at all (never with a health ledger or policy state that changes per list). */
const cases: Array<{ name: string; machine: ScheduleMachine; params: Record<string, unknown>; withholds?: boolean }> = [
  { name: 'rolling batch 2', machine: rolling, params: { batch: 2 }, withholds: true },
  { name: 'rolling percent, maxUnavailable', machine: rolling, params: { percent: 30, maxUnavailable: 1 }, withholds: true },
  { name: 'rolling with pauses', machine: rolling, params: { batch: 2, pauseMs: 1500 } },
  { name: 'rolling with a health gate', machine: rolling, params: { batch: 2, health: true }, withholds: false },
  { name: 'groups', machine: groups, params: {}, withholds: true },
  { name: 'zones', machine: zones, params: { batch: 1 }, withholds: true },
  { name: 'canary', machine: canary, params: { canaries: 2, waitMs: 2000, batch: 2 }, withholds: false },
  { name: 'stepwise (custom)', machine: stepwise, params: { gapMs: 1000 } },
];

function start(machine: ScheduleMachine, nodeId: string, params: Record<string, unknown>): Actor<ScheduleMachine> {
  const actor = createActor(machine, { input: { nodeId, service: 's', type: 't', from: 1, to: 2, params, now: 0, rolloutId: 't-2' } });
  actor.start();
  return actor;
}

const outcome = (a: Actor<ScheduleMachine>) => {
  const s = a.getSnapshot();
  return { status: s.status, value: s.value, output: s.output };
};

for (const c of cases) {
  test(`simulate - withheld node lists change no decision: ${c.name}`, () => {
    let withheldSome = false;
    fc.assert(
      fc.property(fc.constantFrom(...IDS), fc.array(stepArb, { minLength: 1, maxLength: 40 }), (self, steps) => {
        const every = start(c.machine, self, c.params);
        const quiet = start(c.machine, self, c.params);
        let withheld: ScheduleNodeView[] | undefined;
        let now = 0;
        const both = (event: ScheduleEvent) => {
          if (withheld) {
            quiet.send({ type: 'udb.nodes', nodes: withheld });
            withheld = undefined;
          }
          every.send(event);
          quiet.send(event);
        };
        for (const step of steps) {
          if (every.getSnapshot().status !== 'active') break;
          if (step.kind === 'nodes') {
            // Some lists leave a node out (it is not registered yet, or was removed).
            const nodes = step.nodes.map((n, i) => ({ id: IDS[i]!, ...n, labels: { group: `g${i >> 1}`, zone: `z${i % 2}` } })).filter((_, i) => i !== step.drop);
            every.send({ type: 'udb.nodes', nodes });
            if (nodeListIsQuiet(c.machine, quiet.getSnapshot(), nodes)) {
              withheld = nodes;
              withheldSome = true;
            } else {
              withheld = undefined;
              quiet.send({ type: 'udb.nodes', nodes });
            }
          } else if (step.kind === 'tick') {
            now += step.ms;
            both({ type: 'tick', now });
          } else {
            both({ type: 'control', command: step.command, by: 'test' });
          }
          assert.equal(outcome(quiet), outcome(every));
          if (!withheld) assert.equal(quiet.getSnapshot().context, every.getSnapshot().context);
        }
        every.stop();
        quiet.stop();
      }),
      { numRuns: 150, seed: 19 },
    );
    if (c.withholds !== undefined) assert.is(withheldSome, c.withholds, `withheld some lists: ${withheldSome}`);
  });
}

test.run();
