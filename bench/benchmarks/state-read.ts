/**
 * Reading actor state: a node loads an actor's record the way `kv.get` does
 * (a direct get, or the stream's message get), but answered on the store's
 * shared inbox (`runtime/host/store.ts`) instead of through the NATS client's
 * request, which sets a timer, a reply entry and a stack-captured error per
 * request. Every cold actor's first call reads once; an in-place upgrade reads
 * every stored actor of the type in a row.
 *
 * Measured in this process (reader and NATS client; nats-server is its own
 * process and not counted): the same 10,000 records of 350 bytes read through
 * the store and through `kv.get`, 256 reads in flight, the two alternating in
 * each repetition. No target: an explanation of the read step.
 *
 * @module
 */
import { Kvm } from '@nats-io/kv';
import { connectNats } from '../../runtime/index.ts';
import { createKvStore } from '../../runtime/internal.ts';
import { stat, type Benchmark } from '../harness.ts';

const IN_FLIGHT = 256;

export const stateRead: Benchmark = {
  name: 'state-read',
  title: "reading actor state: the node's store versus kv.get (in-process CPU)",
  async run(ctx) {
    const records = ctx.options.quick ? 1000 : 10_000;
    const nats = await ctx.nats();
    const nc = await connectNats({ servers: nats.url, name: 'bench-state-read' });
    try {
      const kv = await new Kvm(nc).create('bench_state_read', { history: 1 });
      const value = new Uint8Array(350).fill(65);
      for (let i = 0; i < records; i += 500) await Promise.all(Array.from({ length: Math.min(500, records - i) }, (_, j) => kv.put(`a${i + j}`, value)));
      const store = createKvStore(kv, nc);
      const readers = {
        store: (key: string) => store.load(key),
        kv: (key: string) => kv.get(key),
      };
      const measure = async (read: (key: string) => Promise<unknown>) => {
        let next = 0;
        const cpu = process.cpuUsage();
        const started = performance.now();
        await Promise.all(
          Array.from({ length: IN_FLIGHT }, async () => {
            while (next < records) await read(`a${next++}`);
          }),
        );
        const used = process.cpuUsage(cpu);
        return { perSecond: records / ((performance.now() - started) / 1000), cpuUs: (used.user + used.system) / records };
      };
      await measure(readers.store);
      await measure(readers.kv);
      const results = { store: [] as Array<{ perSecond: number; cpuUs: number }>, kv: [] as Array<{ perSecond: number; cpuUs: number }> };
      for (let rep = 0; rep < ctx.options.reps; rep++) {
        for (const id of rep % 2 === 0 ? (['store', 'kv'] as const) : (['kv', 'store'] as const)) results[id].push(await measure(readers[id]));
      }
      store.close();
      const labels = { store: "Molt's store (shared inbox)", kv: 'kv.get (NATS client request)' };
      for (const id of ['store', 'kv'] as const) {
        ctx.row({ system: labels[id], setting: `${records} records of 350 B, ${IN_FLIGHT} in flight`, metrics: { reads_per_s: stat(results[id].map((r) => r.perSecond)), cpu_us_per_read: stat(results[id].map((r) => r.cpuUs)) } });
      }
      const ratio = (f: (r: { perSecond: number; cpuUs: number }) => number) => stat(results.store.map((r, i) => f(r) / f(results.kv[i]!))).median.toFixed(2);
      ctx.log(`store / kv.get: ${ratio((r) => r.perSecond)}× the reads per second, ${ratio((r) => r.cpuUs)}× the CPU per read (medians of the repetitions' ratios)`);
    } finally {
      await nc.close();
    }
  },
};
