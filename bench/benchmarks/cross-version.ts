/**
 * Cross-version calls (issue 3): a node running `chain-mem@2` serves callers
 * of v2 natively, of v1 through the past SO, of v3 through the future SO and
 * of v4 through two future SOs chained. Each SO passes the call through to the
 * object it simulates, so the difference is the cost of the upgrade layer.
 * Volatile actors, so no KV write hides that cost. Target ≥ 0.9× native.
 *
 * @module
 */
import type { Benchmark } from '../harness.ts';
import { addRows, compare, series, type LoadSystem } from '../compare.ts';

const CONCURRENCY = 64;

export const crossVersion: Benchmark = {
  name: 'cross-version',
  title: 'asks through past SO, future SO and the i+2 chain vs native',
  async run(ctx) {
    const nats = await ctx.nats();
    const [node, client] = await Promise.all([ctx.agent('molt-node'), ctx.agent('molt-requester')]);
    await node.call('molt.serve', { url: nats.url, versions: { 'chain-mem': 2 } });
    const routes = [
      { id: 'native', label: 'native (v2 on v2)', version: 2 },
      { id: 'past', label: 'past SO (v1 on v2)', version: 1 },
      { id: 'future', label: 'future SO (v3 on v2)', version: 3 },
      { id: 'future2', label: 'future SO chain (v4 on v2)', version: 4 },
    ];
    for (const r of routes) {
      await client.call('molt.caller', { url: nats.url, name: r.id, type: 'chain-mem', version: r.version, keyPrefix: `x${r.id}` });
    }
    const systems: LoadSystem[] = routes.map((r) => ({ id: r.id, label: r.label, requester: client, caller: r.id, servers: [node] }));
    // The differences measured here are small, so take more repetitions than the default.
    const results = await compare(ctx, nats, systems, [CONCURRENCY], { reps: ctx.options.quick ? ctx.options.reps : Math.max(ctx.options.reps, 5) });
    addRows(ctx, systems, results);
    for (const r of routes.slice(1)) {
      ctx.target({
        name: `cross-version.${r.id}.throughput`,
        description: `ask through ${r.label} vs native, ${CONCURRENCY} in flight`,
        unit: 'calls/s',
        value: series(results, r.id, CONCURRENCY, 'throughput'),
        baseline: series(results, 'native', CONCURRENCY, 'throughput'),
        comparison: '>=',
        target: 0.9,
        params: { concurrency: CONCURRENCY, callerVersion: r.version, nodeVersion: 2 },
      });
    }
  },
};
