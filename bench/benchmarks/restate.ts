/**
 * The durable peer: a durable Molt ask (answered once its state change is
 * written to JetStream KV) against Restate's virtual-object call (answered
 * once its state change is journaled), the same counter increment with the
 * same 100-byte payload, distinct keys per caller, at 1, 16, 64 and 128 in
 * flight. Target: Molt ≥ 8× Restate's throughput from 16 in flight on.
 *
 * @module
 */
import type { Benchmark } from '../harness.ts';
import { addRows, compare, series, type LoadSystem } from '../compare.ts';

export const restate: Benchmark = {
  name: 'restate',
  title: 'durable Molt ask vs Restate virtual object call',
  async run(ctx) {
    const nats = await ctx.nats();
    const [restateServer, node, restateClient, moltClient] = await Promise.all([
      ctx.agent('restate-server'),
      ctx.agent('molt-node'),
      ctx.agent('restate-requester'),
      ctx.agent('molt-requester'),
    ]);
    const { ingressUrl } = await restateServer.call<{ ingressUrl: string }>('restate.serve', {});
    await node.call('molt.serve', { url: nats.url });
    await restateClient.call('restate.caller', { ingressUrl, name: 'restate', keyPrefix: 'r' });
    await moltClient.call('molt.caller', { url: nats.url, name: 'durable', type: 'counter', keyPrefix: 'r' });

    const systems: LoadSystem[] = [
      { id: 'restate', label: 'Restate virtual object call (HTTP ingress)', requester: restateClient, caller: 'restate', servers: [restateServer] },
      { id: 'durable', label: 'Molt ask, durable', requester: moltClient, caller: 'durable', servers: [node] },
    ];
    const concurrencies = ctx.options.quick ? [1, 16] : [1, 16, 64, 128];
    const results = await compare(ctx, nats, systems, concurrencies);
    addRows(ctx, systems, results);
    for (const c of concurrencies.filter((c) => c >= 16)) {
      ctx.target({
        name: `restate.durable.throughput.c${c}`,
        description: `durable ask throughput vs Restate virtual object call, ${c} in flight`,
        unit: 'calls/s',
        value: series(results, 'durable', c, 'throughput'),
        baseline: series(results, 'restate', c, 'throughput'),
        comparison: '>=',
        target: 8,
        params: { concurrency: c },
      });
    }
  },
};
