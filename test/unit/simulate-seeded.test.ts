/**
 * The same seed gives the same rollout, and the simulator's summaries stay
 * what they were: each case below (every built-in schedule, a custom one,
 * deaths and restarts, kills, transform failures with and without a resume,
 * slow nodes, a health gate) was run once and its summary written down here.
 * A change to the simulator that is meant to make it faster, not different,
 * must leave every field equal (wall-clock and CPU time aside).
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { simulateRollout, type SimulationOptions, type SimulationResult } from '../../runtime/simulate/fleet.ts';
import { stepwise } from '../fixtures/stepwise-schedule.ts';

const group3 = (i: number) => ({ group: `g${Math.floor(i / 3)}` });
const cases: Record<string, SimulationOptions> = {
  'rolling 5%, 400 nodes': { nodes: 400, schedule: { name: 'rolling', params: { percent: 5 } } },
  'rolling batch 7 with deaths and restarts': { nodes: 300, schedule: { name: 'rolling', params: { batch: 7 } }, failures: { deathsPerMinute: 40, restartAfterMs: 2500 }, seed: 11 },
  'rolling 10% with transform failures and a resume': { nodes: 250, schedule: { name: 'rolling', params: { percent: 10 } }, failures: { transformFailureFraction: 0.01, resumeAfterMs: 4000, slowFraction: 0.1 }, seed: 5 },
  'rolling pauseMs, maxUnavailable, slow nodes': { nodes: 120, schedule: { name: 'rolling', params: { batch: 10, pauseMs: 1500, maxUnavailable: 4 } }, failures: { slowFraction: 0.2, slowFactor: 3 }, seed: 2 },
  'rolling with a health gate and failures': { nodes: 150, schedule: { name: 'rolling', params: { batch: 5, health: true } }, failures: { transformFailureFraction: 0.03, deathsPerMinute: 20, restartAfterMs: 1000 }, seed: 9 },
  'groups of three with deaths': { nodes: 600, schedule: { name: 'groups' }, labels: group3, failures: { deathsPerMinute: 30, restartAfterMs: 3000 }, seed: 4 },
  'zones, 3 zones': { nodes: 210, schedule: { name: 'zones', params: { batch: 5 } }, labels: (i) => ({ zone: `z${i % 3}` }), seed: 6 },
  'ring': { nodes: 90, schedule: { name: 'ring', params: {} }, labels: (i) => ({ ring: String(i) }), seed: 8 },
  'canary then batches, soak': { nodes: 80, schedule: { name: 'canary', params: { canaries: 3, waitMs: 5000, batch: 10 } }, failures: { deathsPerMinute: 10, restartAfterMs: 2000 }, seed: 12 },
  'whenIdle': { nodes: 100, schedule: { name: 'whenIdle', params: { forMs: 2500 } }, seed: 13 },
  'window': { nodes: 60, schedule: { name: 'window', params: { start: '00:00', end: '00:01' } }, seed: 14 },
  'after': { nodes: 50, schedule: { name: 'after', params: { service: 'billing', type: 'invoice', version: 3 } }, seed: 15 },
  'immediate with kills': { nodes: 80, schedule: { name: 'immediate' }, failures: { kills: [{ at: 100, node: 3 }, { at: 1500, node: 40 }], restartAfterMs: 700 }, seed: 16 },
  'custom stepwise': { nodes: 12, schedule: { name: 'stepwise', params: { gapMs: 1200 } }, customSchedules: { stepwise }, failures: { deathsPerMinute: 2, restartAfterMs: 4000 }, seed: 17 },
  'rolling paused for good': { nodes: 100, schedule: { name: 'rolling', params: { percent: 20 } }, failures: { transformFailureFraction: 0.05 }, seed: 18 },
};

const expected: Record<string, Omit<SimulationResult, 'wallMs' | 'cpuMs'>> = {
  'rolling 5%, 400 nodes': {
    nodes: 400,
    schedule: 'rolling',
    finished: true,
    durationMs: 50541.47528237663,
    maxUpgrading: 20,
    minServing: 380,
    minServingAt: 488.015778711997,
    upgraded: 400,
    deaths: 0,
    restarts: 0,
    behind: [],
    events: 29556
  },
  'rolling batch 7 with deaths and restarts': {
    nodes: 300,
    schedule: 'rolling',
    finished: true,
    durationMs: 109320.48003177652,
    maxUpgrading: 7,
    minServing: 288,
    minServingAt: 90034.64677913966,
    upgraded: 300,
    deaths: 68,
    restarts: 68,
    behind: [],
    events: 45969
  },
  'rolling 10% with transform failures and a resume': {
    nodes: 250,
    schedule: 'rolling',
    finished: true,
    durationMs: 104629.54444412608,
    maxUpgrading: 25,
    minServing: 225,
    minServingAt: 485.70875998120755,
    halted: {
      at: 2121.243077935651,
      upgraded: 11,
      reason: 'paused by node n024: transform failure on n024'
    },
    defaultGateHalt: {
      at: 2121.243077935651,
      upgraded: 8,
      reason: 'transform failure on n024'
    },
    upgraded: 250,
    deaths: 0,
    restarts: 0,
    behind: [],
    events: 13027
  },
  'rolling pauseMs, maxUnavailable, slow nodes': {
    nodes: 120,
    schedule: 'rolling',
    finished: true,
    durationMs: 95771.92935324274,
    maxUpgrading: 10,
    minServing: 110,
    minServingAt: 6000,
    upgraded: 120,
    deaths: 0,
    restarts: 0,
    behind: [],
    events: 15420
  },
  'rolling with a health gate and failures': {
    nodes: 150,
    schedule: 'rolling',
    finished: false,
    durationMs: 17023.65342148114,
    maxUpgrading: 5,
    minServing: 143,
    minServingAt: 12198.387581040151,
    halted: {
      at: 16649.40820883494,
      upgraded: 34,
      reason: 'n035: health gate: 1 transform failure(s) reported (n030: 1); at most 0 allowed'
    },
    defaultGateHalt: {
      at: 16649.40820883494,
      upgraded: 34,
      reason: 'transform failure on n030'
    },
    upgraded: 35,
    deaths: 6,
    restarts: 6,
    behind: [
      'n035',
      'n036',
      'n037',
      'n038',
      'n039',
      'n040',
      'n041',
      'n042',
      'n043',
      'n044'
    ],
    events: 4980
  },
  'groups of three with deaths': {
    nodes: 600,
    schedule: 'groups',
    finished: true,
    durationMs: 8892.913253934945,
    maxUpgrading: 200,
    minServing: 400,
    minServingAt: 499.91676851641387,
    upgraded: 600,
    deaths: 1,
    restarts: 1,
    behind: [],
    events: 8326
  },
  'zones, 3 zones': {
    nodes: 210,
    schedule: 'zones',
    finished: true,
    durationMs: 102272.65290289652,
    maxUpgrading: 5,
    minServing: 205,
    minServingAt: 474.73985503893346,
    upgraded: 210,
    deaths: 0,
    restarts: 0,
    behind: [],
    events: 19517
  },
  ring: {
    nodes: 90,
    schedule: 'ring',
    finished: true,
    durationMs: 5414.747101278044,
    maxUpgrading: 45,
    minServing: 45,
    minServingAt: 493.3493009302765,
    upgraded: 90,
    deaths: 0,
    restarts: 0,
    behind: [],
    events: 552
  },
  'canary then batches, soak': {
    nodes: 80,
    schedule: 'canary',
    finished: true,
    durationMs: 31722.722830763087,
    maxUpgrading: 10,
    minServing: 69,
    minServingAt: 7000,
    upgraded: 80,
    deaths: 6,
    restarts: 6,
    behind: [],
    events: 5174
  },
  whenIdle: {
    nodes: 100,
    schedule: 'whenIdle',
    finished: true,
    durationMs: 5484.563949052244,
    maxUpgrading: 100,
    minServing: 0,
    minServingAt: 3000,
    upgraded: 100,
    deaths: 0,
    restarts: 0,
    behind: [],
    events: 500
  },
  window: {
    nodes: 60,
    schedule: 'window',
    finished: true,
    durationMs: 2941.5585624519736,
    maxUpgrading: 60,
    minServing: 0,
    minServingAt: 482.5170561671257,
    upgraded: 60,
    deaths: 0,
    restarts: 0,
    behind: [],
    events: 0
  },
  after: {
    nodes: 50,
    schedule: 'after',
    finished: true,
    durationMs: 2933.9199353707954,
    maxUpgrading: 50,
    minServing: 0,
    minServingAt: 493.3519986225292,
    upgraded: 50,
    deaths: 0,
    restarts: 0,
    behind: [],
    events: 50
  },
  'immediate with kills': {
    nodes: 80,
    schedule: 'immediate',
    finished: true,
    durationMs: 2933.8500107405707,
    maxUpgrading: 80,
    minServing: 0,
    minServingAt: 498.688665102236,
    upgraded: 80,
    deaths: 2,
    restarts: 2,
    behind: [],
    events: 0
  },
  'custom stepwise': {
    nodes: 12,
    schedule: 'stepwise',
    finished: true,
    durationMs: 40060.65918854438,
    maxUpgrading: 2,
    minServing: 10,
    minServingAt: 12000,
    upgraded: 12,
    deaths: 1,
    restarts: 1,
    behind: [],
    events: 596
  },
  'rolling paused for good': {
    nodes: 100,
    schedule: 'rolling',
    finished: false,
    durationMs: 10389.594603539445,
    maxUpgrading: 20,
    minServing: 80,
    minServingAt: 496.51434645056725,
    halted: {
      at: 10271.997845242731,
      upgraded: 79,
      reason: 'paused by node n68: transform failure on n68'
    },
    defaultGateHalt: {
      at: 10271.997845242731,
      upgraded: 75,
      reason: 'transform failure on n68'
    },
    upgraded: 80,
    deaths: 0,
    restarts: 0,
    behind: [
      'n80',
      'n81',
      'n82',
      'n83',
      'n84',
      'n85',
      'n86',
      'n87',
      'n88',
      'n89'
    ],
    events: 1627
  }
};

for (const [name, options] of Object.entries(cases)) {
  test(`simulate - seeded summary unchanged: ${name}`, () => {
    const { wallMs: _w, cpuMs: _c, ...summary } = simulateRollout(options);
    assert.equal(summary, expected[name]);
  });
}

test.run();
