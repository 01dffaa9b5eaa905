/**
 * Memory and scale: a node process (run with --expose-gc) loads N durable
 * actors and keeps them resident. Heap per idle actor is the growth of the
 * heap after a full GC divided by N; the node holding 100,000 active actors
 * must stay under 1 GiB RSS (peak over the run, which includes loading them).
 * Targets: ≤ 8 KB heap per idle actor; < 1 GiB RSS at 100,000.
 *
 * @module
 */
import { Kvm } from '@nats-io/kv';
import { connectNats } from '../../runtime/index.ts';
import { bucketNames } from '../../runtime/internal.ts';
import type { Benchmark } from '../harness.ts';
import service from '../fixtures/service.ts';
import { makeResident, sweep } from './resident.ts';

interface Memory {
  heapUsed: number;
  rss: number;
  maxRssBytes: number;
  gc: boolean;
}

/** Actors loaded before the baseline heap is taken, so code paths and pools are warm. */
const WARM = 1000;

export const memory: Benchmark = {
  name: 'memory',
  title: 'heap per idle actor and RSS of a node with 100,000 active actors',
  async run(ctx) {
    const n = ctx.options.quick ? 2000 : 100_000;
    const nats = await ctx.nats();
    const [node, requester, kvClient] = await Promise.all([ctx.agent('molt-node', { execArgv: ['--expose-gc'] }), ctx.agent('molt-requester'), ctx.agent('kv-requester')]);
    await node.call('molt.serve', { url: nats.url, passivateAfterMs: 3_600_000 });
    const nc = await connectNats({ servers: nats.url });
    const stateBucket = bucketNames(service.name).state;
    const state = await new Kvm(nc).open(stateBucket);
    try {
      await makeResident({ url: nats.url, state, stateBucket, requester, kvClient, type: 'counter', version: 1, prefix: 'warm', n: WARM, tag: 'warm' });
      const before = await node.call<Memory>('memory', { gc: true });
      if (!before.gc) throw new Error('the node agent has no gc(); run it with --expose-gc');
      const r = await makeResident({ url: nats.url, state, stateBucket, requester, kvClient, type: 'counter', version: 1, prefix: 'mem', n, tag: 'mem' });
      // "Active": every actor answers one more call after all are loaded.
      await sweep(requester, { caller: 'mem-get', from: 0, to: n, concurrency: 256 });
      const after = await node.call<Memory>('memory', { gc: true });
      const status = await node.call<{ types: Record<string, { resident: number }> }>('molt.status');
      const resident = status.types.counter!.resident;
      if (resident !== WARM + n) throw new Error(`expected ${WARM + n} resident actors, found ${resident}`);
      const perActor = (after.heapUsed - before.heapUsed) / n;
      ctx.log(
        `${n} actors loaded in ${(r.loadMs / 1000).toFixed(1)} s; heap ${(before.heapUsed / 2 ** 20).toFixed(0)} → ${(after.heapUsed / 2 ** 20).toFixed(0)} MiB ` +
          `(${perActor.toFixed(0)} B per actor); RSS ${(after.rss / 2 ** 20).toFixed(0)} MiB, peak ${(after.maxRssBytes / 2 ** 20).toFixed(0)} MiB`,
      );
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
        params: { actors: n, stateBytes: r.stateBytes },
      });
      ctx.target({
        name: 'memory.rss-100k-actors',
        description: `peak RSS of a node process holding ${n} active durable actors`,
        unit: 'MiB',
        value: [after.maxRssBytes / 2 ** 20],
        comparison: '<=',
        target: 1024,
        params: { actors: n },
      });
    } finally {
      await nc.close();
    }
  },
};
