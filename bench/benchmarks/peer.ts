/**
 * A peer framework: the same service call — a per-key counter, the same
 * 100-byte payload — through Moleculer 0.15 and its NATS transporter, against
 * a Molt ask to a volatile actor (Moleculer keeps no durable state either).
 * Moleculer runs both ways it can balance (its own balancer, the default; and
 * `disableBalancer`, leaving it to a NATS queue group), each reported; the
 * target compares Molt's batched form with the better of the two in each
 * repetition: ≥ 1.3× at 128 in flight, ≥ 1.0× at 16. Molt's single-call form
 * is reported beside it.
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
    const [molServer, molServerNb, node, molClient, molClientNb, moltClient] = await Promise.all([
      ctx.agent('moleculer-responder'),
      ctx.agent('moleculer-responder-nats-balanced'),
      ctx.agent('molt-node'),
      ctx.agent('moleculer-requester'),
      ctx.agent('moleculer-requester-nats-balanced'),
      ctx.agent('molt-requester'),
    ]);
    await molServer.call('moleculer.serve', { url: nats.url });
    await molServerNb.call('moleculer.serve', { url: nats.url, disableBalancer: true });
    await node.call('molt.serve', { url: nats.url });
    await molClient.call('moleculer.caller', { url: nats.url, name: 'moleculer' });
    await molClientNb.call('moleculer.caller', { url: nats.url, name: 'moleculer-nb', disableBalancer: true });
    await moltClient.call('molt.caller', { url: nats.url, name: 'volatile', type: 'cache', keyPrefix: 'p' });
    await moltClient.call('molt.caller', { url: nats.url, name: 'batched', type: 'cache', keyPrefix: 'q', batching: true });

    const systems: LoadSystem[] = [
      { id: 'moleculer', label: 'Moleculer call (NATS), its own balancer', requester: molClient, caller: 'moleculer', servers: [molServer] },
      { id: 'moleculer-nb', label: 'Moleculer call (NATS), disableBalancer', requester: molClientNb, caller: 'moleculer-nb', servers: [molServerNb] },
      { id: 'volatile', label: 'Molt ask, volatile, single-call form', requester: moltClient, caller: 'volatile', servers: [node] },
      { id: 'batched', label: 'Molt ask, volatile, batched', requester: moltClient, caller: 'batched', servers: [node] },
    ];
    const concurrencies = [16, 128];
    const results = await compare(ctx, nats, systems, concurrencies);
    addRows(ctx, systems, results);
    for (const c of concurrencies) {
      ctx.target({
        name: `peer.moleculer.throughput.c${c}`,
        description: `volatile ask throughput, batched, vs Moleculer call over NATS (the better of its two balancing settings), ${c} in flight`,
        unit: 'calls/s',
        value: series(results, 'batched', c, 'throughput'),
        baseline: betterOf(series(results, 'moleculer', c, 'throughput'), series(results, 'moleculer-nb', c, 'throughput')),
        comparison: '>=',
        target: c >= 128 ? 1.3 : 1.0,
        params: { concurrency: c },
      });
    }
  },
};

/** Per repetition, the higher of two series. */
function betterOf(a: number[], b: number[]): number[] {
  return a.map((x, i) => Math.max(x, b[i] ?? x));
}
