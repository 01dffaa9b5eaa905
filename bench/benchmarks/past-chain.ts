/**
 * Chained past SOs (issue 19): a node running `chain-mem@4` serves callers of
 * v4 natively and of v3, v2 and v1 through one, two and three past SOs
 * chained (a v1 call passes the past SOs of v2, v3 and v4). Each SO passes the
 * call through, so the difference is the cost of the chain in the upgrade
 * layer. Volatile actors, so no KV write hides that cost. Target: a v1 caller
 * through three past SOs ≥ 0.85× native.
 *
 * Also, without a target: the same turns run in this process (admit + turn,
 * no network), whose CPU per call is the chain's cost alone, steady where
 * throughput on a shared machine is not.
 *
 * @module
 */
import { admit, initialActorState, runTurn, type ActorState, type TypeVersions } from '../../runtime/internal.ts';
import { stat, type Benchmark } from '../harness.ts';
import { addRows, compare, series, type LoadSystem } from '../compare.ts';
import { chainMem, PAYLOAD } from '../fixtures/service.ts';
import { cpuPerOp } from './breakdown.ts';

const CONCURRENCY = 64;

export const pastChain: Benchmark = {
  name: 'past-chain',
  title: 'asks through a chain of 1, 2 and 3 past SOs vs native',
  async run(ctx) {
    const nats = await ctx.nats();
    const [node, client] = await Promise.all([ctx.agent('molt-node'), ctx.agent('molt-requester')]);
    await node.call('molt.serve', { url: nats.url, versions: { 'chain-mem': 4 } });
    const routes = [
      { id: 'native', label: 'native (v4 on v4)', version: 4 },
      { id: 'past1', label: 'past SO (v3 on v4)', version: 3 },
      { id: 'past2', label: 'past SO chain of 2 (v2 on v4)', version: 2 },
      { id: 'past3', label: 'past SO chain of 3 (v1 on v4)', version: 1 },
    ];
    for (const r of routes) {
      await client.call('molt.caller', { url: nats.url, name: r.id, type: 'chain-mem', version: r.version, keyPrefix: `p${r.id}` });
    }
    const systems: LoadSystem[] = routes.map((r) => ({ id: r.id, label: r.label, requester: client, caller: r.id, servers: [node] }));
    // The differences measured here are small, so take more repetitions than the default.
    const results = await compare(ctx, nats, systems, [CONCURRENCY], { reps: ctx.options.quick ? ctx.options.reps : Math.max(ctx.options.reps, 5) });
    addRows(ctx, systems, results);
    ctx.target({
      name: 'past-chain.3-steps.throughput',
      description: `ask through three past SOs chained (v1 on a v4 node) vs native, ${CONCURRENCY} in flight`,
      unit: 'calls/s',
      value: series(results, 'past3', CONCURRENCY, 'throughput'),
      baseline: series(results, 'native', CONCURRENCY, 'throughput'),
      comparison: '>=',
      target: 0.85,
      params: { concurrency: CONCURRENCY, callerVersion: 1, nodeVersion: 4 },
    });
    layerRows(ctx, routes);
  },
};

/**
 * CPU per call of the upgrade layer alone (admit + turn) for each caller
 * version, in this process; repetitions interleaved across the routes, as the
 * load cells are, so a slow moment of a shared machine hits them all.
 */
function layerRows(ctx: Parameters<Benchmark['run']>[0], routes: ReadonlyArray<{ label: string; version: number }>): void {
  const types: TypeVersions = { name: 'chain-mem', byVersion: new Map(chainMem.map((v) => [v.version, v])), current: 4, retired: new Set() };
  let state: ActorState = initialActorState(types);
  const ms = ctx.options.quick ? 20 : 300;
  const reps = ctx.options.quick ? 1 : Math.max(3, ctx.options.reps);
  const turns = routes.map((r) => () => {
    state = runTurn(types, state, admit(types, r.version, 'inc', PAYLOAD), r.version, 'inc', PAYLOAD).state;
  });
  const us: number[][] = routes.map(() => []);
  for (let rep = 0; rep < reps; rep++) turns.forEach((turn, i) => us[i]!.push(cpuPerOp(turn, ms)));
  routes.forEach((r, i) => ctx.row({ system: `layer only: ${r.label}`, setting: 'in-process, inc', metrics: { turn_us: stat(us[i]!) } }));
}
