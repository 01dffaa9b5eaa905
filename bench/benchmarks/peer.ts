/**
 * A peer framework: the same service call — a per-key counter, the same
 * 100-byte payload — through Moleculer 0.15 and its NATS transporter, against
 * a Molt ask to a volatile actor (Moleculer keeps no durable state either).
 * Target: Molt ≥ 1.3× Moleculer's throughput at 16 and 128 in flight.
 *
 * @module
 */
import type { Benchmark } from '../harness.ts';
import { addRows, compare, series, type LoadSystem } from '../compare.ts';

export const peer: Benchmark = {
  name: 'peer',
  title: 'Molt ask vs Moleculer call over NATS',
  async run(ctx) {
    const nats = await ctx.nats();
    const [molServer, node, molClient, moltClient] = await Promise.all([
      ctx.agent('moleculer-responder'),
      ctx.agent('molt-node'),
      ctx.agent('moleculer-requester'),
      ctx.agent('molt-requester'),
    ]);
    await molServer.call('moleculer.serve', { url: nats.url });
    await node.call('molt.serve', { url: nats.url });
    await molClient.call('moleculer.caller', { url: nats.url, name: 'moleculer' });
    await moltClient.call('molt.caller', { url: nats.url, name: 'volatile', type: 'cache', keyPrefix: 'p' });

    const systems: LoadSystem[] = [
      { id: 'moleculer', label: 'Moleculer call (NATS)', requester: molClient, caller: 'moleculer', servers: [molServer] },
      { id: 'volatile', label: 'Molt ask, volatile', requester: moltClient, caller: 'volatile', servers: [node] },
    ];
    const concurrencies = [16, 128];
    const results = await compare(ctx, nats, systems, concurrencies);
    addRows(ctx, systems, results);
    for (const c of concurrencies) {
      ctx.target({
        name: `peer.moleculer.throughput.c${c}`,
        description: `volatile ask throughput vs Moleculer call over NATS, ${c} in flight`,
        unit: 'calls/s',
        value: series(results, 'volatile', c, 'throughput'),
        baseline: series(results, 'moleculer', c, 'throughput'),
        comparison: '>=',
        target: 1.3,
        params: { concurrency: c },
      });
    }
  },
};
