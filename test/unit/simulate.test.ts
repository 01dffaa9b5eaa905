/**
 * `molt simulate`'s engine: the real SF machines on a simulated fleet and
 * clock. Timings are exact where nothing is random (jitter 0, learn 0), so
 * the predicted durations can be checked against arithmetic; failures halt
 * where they should; the same seed gives the same rollout; a bundle's custom
 * SF runs like a built-in.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { simulateRollout } from '../../runtime/simulate/fleet.ts';
import { renderSimulation, simulationFromFlags } from '../../runtime/cli/commands/simulate.ts';
import { stepwise } from '../fixtures/stepwise-schedule.ts';
import { isMoltError } from '../../runtime/errors.ts';

const exact = { upgradeMs: 2000, jitter: 0, learnMs: 0, viewLagMs: 100, tickMs: 1000 };

test('simulate - rolling batch 2 over 10 nodes: five batches, each a view lag plus an upgrade', () => {
  const r = simulateRollout({ nodes: 10, schedule: { name: 'rolling', params: { batch: 2 } }, ...exact });
  assert.ok(r.finished);
  assert.is(r.maxUpgrading, 2);
  assert.is(r.minServing, 8);
  assert.is(r.upgraded, 10);
  // Batch 0 decides at start (its SF has the node list), each later batch a view lag after the one before ends.
  assert.is(r.durationMs, 5 * 2000 + 4 * 100);
  assert.is(renderSimulation(r)[1], 'predicted duration: 10.4 s until every live node runs the new version');
});

test('simulate - groups: one node per group at a time, groups in parallel', () => {
  const r = simulateRollout({ nodes: 30, schedule: { name: 'groups' }, labels: (i) => ({ group: `g${Math.floor(i / 3)}` }), ...exact });
  assert.ok(r.finished);
  assert.is(r.maxUpgrading, 10);
  assert.is(r.durationMs, 3 * 2000 + 2 * 100);
});

test('simulate - slow nodes stretch the waves they are in', () => {
  const fast = simulateRollout({ nodes: 100, schedule: { name: 'rolling', params: { percent: 10 } }, ...exact });
  const slow = simulateRollout({ nodes: 100, schedule: { name: 'rolling', params: { percent: 10 } }, ...exact, failures: { slowFraction: 0.2, slowFactor: 4 } });
  assert.is(fast.durationMs, 10 * 2000 + 9 * 100);
  assert.ok(slow.durationMs > 2 * fast.durationMs, `${slow.durationMs} vs ${fast.durationMs}`);
});

test('simulate - a transform failure halts the rollout where it happens; a resume lets it finish', () => {
  const halted = simulateRollout({ nodes: 200, schedule: { name: 'rolling', params: { percent: 10 } }, ...exact, failures: { transformFailureFraction: 0.02 }, seed: 7 });
  assert.is(halted.finished, false);
  assert.ok(halted.halted && halted.defaultGateHalt);
  assert.match(halted.halted!.reason, /^paused by node n\d+: transform failure on n\d+$/);
  assert.ok(halted.upgraded < 200 && halted.upgraded >= halted.defaultGateHalt!.upgraded);
  const resumed = simulateRollout({ nodes: 200, schedule: { name: 'rolling', params: { percent: 10 } }, ...exact, failures: { transformFailureFraction: 0.02, resumeAfterMs: 5000 }, seed: 7 });
  assert.ok(resumed.finished);
  assert.ok(resumed.durationMs > halted.defaultGateHalt!.at + 5000);
});

test('simulate - deaths and restarts: the rollout still finishes; the same seed gives the same rollout', () => {
  const run = () => simulateRollout({ nodes: 300, schedule: { name: 'rolling', params: { percent: 5 } }, upgradeMs: 1000, failures: { deathsPerMinute: 60, restartAfterMs: 3000 }, seed: 3 });
  const a = run();
  const b = run();
  assert.ok(a.finished);
  assert.ok(a.deaths > 10 && a.restarts > 0, `${a.deaths} deaths, ${a.restarts} restarts`);
  assert.equal({ ...a, wallMs: 0, cpuMs: 0 }, { ...b, wallMs: 0, cpuMs: 0 });
  // Dead nodes count against capacity.
  assert.ok(a.minServing < 300 - 15);
});

test('simulate - a dead node that never comes back does not hold the rollout', () => {
  const r = simulateRollout({ nodes: 10, schedule: { name: 'rolling', params: { batch: 1 } }, ...exact, failures: { kills: [{ at: 10, node: 5 }] } });
  assert.ok(r.finished);
  assert.is(r.upgraded, 9);
  assert.is(r.deaths, 1);
});

test('simulate - a custom SF from a bundle runs on the simulated clock', () => {
  const r = simulateRollout({ nodes: 5, schedule: { name: 'stepwise', params: { gapMs: 3000 } }, customSchedules: { stepwise }, ...exact });
  assert.ok(r.finished);
  assert.is(r.maxUpgrading, 1);
  // Each node after the first waits for its predecessors, then 3 s on its ticks.
  assert.ok(r.durationMs >= 5 * 2000 + 4 * 3000, String(r.durationMs));
});

test('simulate - whenIdle: simulated nodes are idle, so they go once idle for forMs', () => {
  const r = simulateRollout({ nodes: 20, schedule: { name: 'whenIdle', params: { forMs: 3000 } }, ...exact });
  assert.ok(r.finished);
  assert.is(r.maxUpgrading, 20);
  assert.is(r.durationMs, 3000 + 2000);
});

test('simulate - after: a dependency outside the simulated fleet counts as reached', () => {
  const r = simulateRollout({ nodes: 20, schedule: { name: 'after', params: { service: 'billing', type: 'invoice', version: 3 } }, ...exact });
  assert.ok(r.finished);
  assert.is(r.durationMs, 2000);
});

test('simulate - flags: labels, params and failures; bad values are named', () => {
  const o = simulationFromFlags({ nodes: '6', schedule: 'zones', params: '{"order":["z1"]}', zones: '2', groupSize: '3', ring: true, upgradeMs: '1000', jitter: '0', learnMs: '0', viewLagMs: '50', tickMs: '1000', seed: '1', tfFailures: '0.1' });
  assert.equal(o.labels!(4), { zone: 'z0', group: 'g1', ring: '4' });
  assert.equal(o.failures, { transformFailureFraction: 0.1 });
  const r = simulateRollout(o);
  assert.is(r.schedule, 'zones');
  for (const [flags, message] of [
    [{ nodes: '0' }, /--nodes must be an integer from 1 to 100000, got '0'/],
    [{ params: '[1]' }, /--params must be a JSON object/],
    [{ tfFailures: '2' }, /--tf-failures must be a number from 0 to 1/],
  ] as const) {
    try {
      simulationFromFlags({ nodes: '10', schedule: 'rolling', upgradeMs: '1', jitter: '0', learnMs: '0', viewLagMs: '0', tickMs: '1', seed: '1', ...flags });
      assert.unreachable('refused');
    } catch (e) {
      assert.ok(isMoltError(e, 'InvalidDefinition'), String(e));
      assert.match((e as Error).message, message);
    }
  }
});

test.run();
