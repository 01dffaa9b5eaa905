/**
 * Availability during a rollout (issue 6, item 7): the same load — callers of
 * `account` v1 and v2 at once, against 3 node processes — through
 *
 * (a) **Molt**: v2 published as a signed bundle with `rolling` (one node at a
 *     time), staged (`--paused`) so every node serves v2 callers through the
 *     future SO before any upgrades, then released (`molt resume`): each
 *     node's upgrade manager upgrades it in place, calls to it held meanwhile;
 *     past SOs serve v1 callers on upgraded nodes.
 * (b) **the baseline without Molt's upgrade layer**: each node process is
 *     stopped (gracefully: it leaves, its shards move, calls in flight finish)
 *     and started again on the new code — v2 with the same data migration but
 *     no simulation objects — one at a time, the next once the restarted one
 *     serves. Same runtime, same client, same load; what differs is only what
 *     Molt adds for upgrades.
 *
 * Phases (both): load starts with v1 and v2 callers → `before` (a few
 * seconds) → `rollout` → `after` (a few seconds) → load stops → every actor is
 * read back through v2 and compared with the ledger of acknowledged
 * increments. Every call is counted once: ok, disallowed by design (a
 * simulation object refusing it), or failed (by error code). Lost updates:
 * acknowledged increments missing from the actor. Targets for Molt: 0 failed
 * calls other than designed disallows, 0 lost updates.
 *
 * Node and manager settings are the defaults (`molt node` without flags:
 * heartbeat 1 s, lease 5 s, reconciliation 5 s, SF tick 1 s); the client's
 * too (5 s timeout).
 *
 * @module
 */
import { fileURLToPath } from 'node:url';
import { connectNats, generatePublisherKeys, publishUpgrade, signerFromSeed } from '../../runtime/index.ts';
import { openUdb } from '../../runtime/udb/index.ts';
import { controlRollout } from '../../runtime/operate/rollouts.ts';
import type { LoadTally } from '../systems/upgrades.ts';
import type { Agent, BenchContext, Benchmark } from '../harness.ts';

const fixture = fileURLToPath(new URL('../fixtures/rollout.ts', import.meta.url));
const published = fileURLToPath(new URL('../fixtures/rollout-v2.ts', import.meta.url));
const SERVICE = 'rollout';
const TYPE = 'account';
const NODES = 3;

interface Plan {
  beforeMs: number;
  afterMs: number;
  keys: number;
  /** Callers per version. */
  workers: number;
  thinkMs: number;
}

interface Outcome {
  tally: LoadTally;
  lostUpdates: number;
  extra: number;
  acknowledged: number;
  problems: string[];
  rolloutMs: number;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function waitUntil(what: string, check: () => Promise<boolean>, timeoutMs: number): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > until) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(50);
  }
}

/** Waits until the one node of `agent` owns shards (it serves). */
async function serving(agent: Agent): Promise<void> {
  await waitUntil(`${agent.name} to serve`, async () => (await agent.call<Array<{ owned: number[] }>>('upgrade.status', { type: TYPE }))[0]!.owned.length > 0, 30_000);
}

/** Starts the load, runs `before`, calls `rollout()` in phase `rollout`, runs `after`, stops and checks. */
async function underLoad(ctx: BenchContext, url: string, plan: Plan, label: string, rollout: () => Promise<void>): Promise<Outcome> {
  const load = await ctx.agent(`availability-${label}-load`);
  await load.call('upgrade.load.start', { url, service: SERVICE, type: TYPE, keys: plan.keys, workers: { 1: plan.workers, 2: plan.workers }, thinkMs: plan.thinkMs, phase: 'before' });
  await sleep(plan.beforeMs);
  await load.call('upgrade.load.phase', { name: 'rollout' });
  const t0 = performance.now();
  await rollout();
  const rolloutMs = performance.now() - t0;
  await load.call('upgrade.load.phase', { name: 'after' });
  await sleep(plan.afterMs);
  const r = await load.call<Omit<Outcome, 'rolloutMs'>>('upgrade.load.stop', { checkVersion: 2 });
  await load.stop();
  return { ...r, rolloutMs };
}

/** (a) Molt: staged publish of v2 with `rolling`, released under load. */
async function moltRolling(ctx: BenchContext, plan: Plan): Promise<Outcome> {
  const nats = await ctx.nats();
  const keys = generatePublisherKeys();
  const nodes = await Promise.all(Array.from({ length: NODES }, (_, i) => ctx.agent(`availability-molt-node-${i}`)));
  await Promise.all(nodes.map((n, i) => n.call('upgrade.nodes', { url: nats.url, module: fixture, export: 'rolloutV1Service', id: `node-${i}`, trust: [keys.publicKey] })));
  await Promise.all(nodes.map(serving));
  const nc = await connectNats({ servers: nats.url, name: 'bench publisher' });
  try {
    const udb = await openUdb(nc, SERVICE);
    const result = await publishUpgrade({ nats: nc, module: published, signer: signerFromSeed(keys.seed), schedule: { name: 'rolling', params: { batch: 1 } }, versions: { [TYPE]: 2 }, paused: true });
    const rolloutId = result.upgrades[0]!.rolloutId;
    await Promise.all(nodes.map((n) => n.call('upgrade.loaded', { type: TYPE, version: 2, timeoutMs: 30_000 })));
    return await underLoad(ctx, nats.url, plan, 'molt', async () => {
      await controlRollout(udb, rolloutId, 'resume', undefined, 'bench');
      const upgraded = (await Promise.all(nodes.map((n) => n.call<Array<{ id: string; transformed: number; failed: number }>>('upgrade.upgraded', { type: TYPE, version: 2, timeoutMs: 120_000 })))).flat();
      await waitUntil(`rollout ${rolloutId} to be done`, async () => (await udb.rollout(rolloutId))?.record.state === 'done', 30_000);
      ctx.log(`Molt rolling upgrade: ${upgraded.map((u) => `${u.id} transformed ${u.transformed} resident actors${u.failed ? ` (${u.failed} TF failures)` : ''}`).join(', ')}`);
    });
  } finally {
    await nc.close();
  }
}

/** (b) Stop each node process and start it again on the v2 code (no SOs), one at a time. */
async function stopAndRestart(ctx: BenchContext, plan: Plan): Promise<Outcome> {
  const nats = await ctx.nats();
  const start = async (i: number, generation: string, exportName: string) => {
    const agent = await ctx.agent(`availability-restart-node-${i}-${generation}`);
    await agent.call('upgrade.nodes', { url: nats.url, module: fixture, export: exportName, id: `node-${i}`, manager: false });
    return agent;
  };
  const nodes = await Promise.all(Array.from({ length: NODES }, (_, i) => start(i, 'v1', 'rolloutV1Service')));
  await Promise.all(nodes.map(serving));
  return underLoad(ctx, nats.url, plan, 'restart', async () => {
    for (let i = 0; i < NODES; i++) {
      await nodes[i]!.stop();
      nodes[i] = await start(i, 'v2', 'restartV2Service');
      await serving(nodes[i]!);
    }
  });
}

function byCode(t: LoadTally): string {
  const entries = Object.entries(t.failedByCode).sort((a, b) => b[1] - a[1]);
  return entries.length ? entries.map(([code, n]) => `${code} ${n}`).join(', ') : 'none';
}

function summary(o: Outcome): Record<string, unknown> {
  return {
    calls: o.tally.calls,
    ok: o.tally.ok,
    disallowed: o.tally.disallowed,
    failed: o.tally.failed,
    failedByCode: o.tally.failedByCode,
    byPhase: o.tally.byPhase,
    byVersion: o.tally.byVersion,
    lostUpdates: o.lostUpdates,
    extraUpdates: o.extra,
    acknowledgedIncrements: o.acknowledged,
    rolloutMs: Math.round(o.rolloutMs),
  };
}

export const availability: Benchmark = {
  name: 'availability',
  title: 'failed calls and lost updates during a rollout: Molt rolling upgrade vs stop-and-restart',
  async run(ctx) {
    const plan: Plan = ctx.options.quick
      ? { beforeMs: 300, afterMs: 300, keys: 64, workers: 4, thinkMs: 4 }
      : { beforeMs: 3000, afterMs: 3000, keys: 3000, workers: 8, thinkMs: 4 };
    const systems = [
      { id: 'molt', label: 'Molt rolling upgrade (past/future SOs)', run: moltRolling },
      { id: 'restart', label: 'stop and restart on v2 code (no SOs)', run: stopAndRestart },
    ];
    const outcomes = new Map<string, Outcome>();
    for (const s of systems) {
      const o = await s.run(ctx, plan);
      outcomes.set(s.id, o);
      const t = o.tally;
      const during = t.byPhase.rollout ?? { calls: 0, failed: 0 };
      ctx.log(
        `${s.label}: ${t.calls} calls in ${(t.durationMs / 1000).toFixed(1)} s (rollout ${(o.rolloutMs / 1000).toFixed(1)} s): ${t.ok} ok, ${t.disallowed} disallowed, ${t.failed} failed (${byCode(t)}; ` +
          `${during.failed} of ${during.calls} during the rollout); lost updates ${o.lostUpdates}, extra ${o.extra} of ${o.acknowledged} acknowledged increments` +
          (o.problems.length ? `; ${o.problems.join('; ')}` : '') +
          (Object.keys(t.examples).length ? `; e.g. ${Object.entries(t.examples).map(([c, m]) => `${c}: ${m.slice(0, 160)}`).join(' | ')}` : ''),
      );
      const one = (v: number) => ({ min: v, median: v, max: v, n: 1 });
      ctx.row({
        system: s.label,
        setting: `${NODES} nodes, ${plan.workers}+${plan.workers} callers; failed: ${byCode(t)}`,
        metrics: {
          calls: one(t.calls),
          disallowed: one(t.disallowed),
          failed: one(t.failed),
          failed_during_rollout: one(during.failed),
          lost_updates: one(o.lostUpdates),
          rollout_ms: one(o.rolloutMs),
        },
        errors: t.failed,
      });
    }
    const molt = outcomes.get('molt')!;
    const restart = outcomes.get('restart')!;
    const params = { nodes: NODES, callersPerVersion: plan.workers, actors: plan.keys, beforeMs: plan.beforeMs, afterMs: plan.afterMs, molt: summary(molt), baseline: summary(restart) };
    ctx.target({
      name: 'availability.rolling.failed-calls',
      description: `calls failed for any reason but a designed disallow, during a Molt rolling upgrade v1→v2 of ${NODES} nodes under v1+v2 load (stop-and-restart baseline: ${restart.tally.failed} of ${restart.tally.calls}, in params)`,
      unit: 'calls',
      value: [molt.tally.failed],
      target: 0,
      comparison: '<=',
      params,
    });
    ctx.target({
      name: 'availability.rolling.lost-updates',
      description: `acknowledged increments missing afterwards, Molt rolling upgrade v1→v2 under v1+v2 load (stop-and-restart baseline: ${restart.lostUpdates}, in params)`,
      unit: 'updates',
      value: [molt.lostUpdates],
      target: 0,
      comparison: '<=',
      params,
    });
  },
};
