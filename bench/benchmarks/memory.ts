/**
 * Memory and scale: a node process (run with --expose-gc) activates N durable
 * actors — one call each — and keeps them resident. Heap per idle actor is
 * the growth of the heap after a full GC divided by N; the node holding
 * 100,000 active actors must stay under 1 GiB RSS (peak, over the activation).
 * Targets: ≤ 8 KB heap per idle actor; < 1 GiB RSS at 100,000.
 *
 * @module
 */
import type { Benchmark } from '../harness.ts';

interface Memory {
  heapUsed: number;
  rss: number;
  maxRssBytes: number;
  gc: boolean;
}

const WARM = 1000;

export const memory: Benchmark = {
  name: 'memory',
  title: 'heap per idle actor and RSS of a node with 100,000 active actors',
  async run(ctx) {
    const n = ctx.options.quick ? 2000 : 100_000;
    const nats = await ctx.nats();
    const [node, client] = await Promise.all([ctx.agent('molt-node', { execArgv: ['--expose-gc'] }), ctx.agent('molt-requester')]);
    await node.call('molt.serve', { url: nats.url, passivateAfterMs: 3_600_000 });
    await client.call('molt.caller', { url: nats.url, name: 'mem', type: 'counter', keyPrefix: 'mem' });
    // Warm the code paths (and the node's own structures) before the baseline.
    const warm = await client.call<{ errors: number; firstError?: string }>('sweep', { caller: 'mem', from: 0, to: WARM, concurrency: 128 });
    if (warm.errors) throw new Error(`activation failed: ${warm.firstError}`);
    const before = await node.call<Memory>('memory', { gc: true });
    if (!before.gc) throw new Error('the node agent has no gc(); run it with --expose-gc');
    const t0 = Date.now();
    const act = await client.call<{ errors: number; firstError?: string }>('sweep', { caller: 'mem', from: WARM, to: WARM + n, concurrency: 256 });
    if (act.errors) throw new Error(`activation failed: ${act.firstError}`);
    const after = await node.call<Memory>('memory', { gc: true });
    const status = await node.call<{ types: Record<string, { resident: number }> }>('molt.status');
    const resident = status.types.counter!.resident;
    if (resident !== WARM + n) throw new Error(`expected ${WARM + n} resident actors, found ${resident}`);
    const perActor = (after.heapUsed - before.heapUsed) / n;
    ctx.log(`${n} actors activated in ${((Date.now() - t0) / 1000).toFixed(1)} s; heap ${(before.heapUsed / 2 ** 20).toFixed(0)} → ${(after.heapUsed / 2 ** 20).toFixed(0)} MiB; RSS ${(after.rss / 2 ** 20).toFixed(0)} MiB, peak ${(after.maxRssBytes / 2 ** 20).toFixed(0)} MiB`);
    const one = (v: number) => ({ min: v, median: v, max: v, n: 1 });
    ctx.row({
      system: 'Molt node, durable actors resident',
      setting: `N=${n}`,
      metrics: { heap_bytes_per_actor: one(perActor), heap_mib: one(after.heapUsed / 2 ** 20), rss_mib: one(after.rss / 2 ** 20), peak_rss_mib: one(after.maxRssBytes / 2 ** 20) },
    });
    ctx.target({
      name: 'memory.heap-per-idle-actor',
      description: 'heap per idle resident durable actor (after full GC)',
      unit: 'bytes',
      value: [perActor],
      comparison: '<=',
      target: 8 * 1024,
      params: { actors: n },
    });
    ctx.target({
      name: 'memory.rss-100k-actors',
      description: `peak RSS of a node process holding ${n} active actors`,
      unit: 'MiB',
      value: [after.maxRssBytes / 2 ** 20],
      comparison: '<=',
      target: 1024,
      params: { actors: n },
    });
  },
};
