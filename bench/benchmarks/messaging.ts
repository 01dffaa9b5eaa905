/**
 * Messaging overhead: a Molt ask (volatile and durable actors) against the raw
 * NATS floor, at concurrency 1, 16 and 128. Requesters and responders run in
 * separate processes; the Molt node runs in its own process like the raw
 * responder. Targets: volatile ask throughput ≥ 0.6× raw at 128 sent as
 * single calls and ≥ 1.0× batched; p50 at concurrency 1 ≤ 1.10× raw.
 *
 * @module
 */
import type { Benchmark } from '../harness.ts';
import { addRows, compare, series, type LoadSystem } from '../compare.ts';

export const messaging: Benchmark = {
  name: 'messaging',
  title: 'Molt ask vs raw NATS request/reply (multiplexed replies, JSON, 100 B)',
  async run(ctx) {
    const nats = await ctx.nats();
    const [rawServer, node, rawClient, moltClient] = await Promise.all([
      ctx.agent('raw-responder'),
      ctx.agent('molt-node'),
      ctx.agent('raw-requester'),
      ctx.agent('molt-requester'),
    ]);
    await rawServer.call('raw.serve', { url: nats.url });
    await node.call('molt.serve', { url: nats.url });
    await rawClient.call('raw.caller', { url: nats.url, name: 'raw' });
    await moltClient.call('molt.caller', { url: nats.url, name: 'volatile', type: 'cache', keyPrefix: 'm' });
    await moltClient.call('molt.caller', { url: nats.url, name: 'batched', type: 'cache', keyPrefix: 'b', batching: true });
    await moltClient.call('molt.caller', { url: nats.url, name: 'durable', type: 'counter', keyPrefix: 'm' });

    const systems: LoadSystem[] = [
      { id: 'raw', label: 'raw NATS req/reply', requester: rawClient, caller: 'raw', servers: [rawServer] },
      { id: 'volatile', label: 'Molt ask, volatile, single-call form', requester: moltClient, caller: 'volatile', servers: [node] },
      { id: 'batched', label: 'Molt ask, volatile, batched', requester: moltClient, caller: 'batched', servers: [node] },
      { id: 'durable', label: 'Molt ask, durable', requester: moltClient, caller: 'durable', servers: [node] },
    ];
    const concurrencies = [1, 16, 128];
    const results = await compare(ctx, nats, systems, concurrencies);
    addRows(ctx, systems, results);

    ctx.target({
      name: 'messaging.volatile.throughput.c128',
      description: 'volatile ask throughput, single-call form, vs raw NATS request/reply, 128 in flight',
      unit: 'calls/s',
      value: series(results, 'volatile', 128, 'throughput'),
      baseline: series(results, 'raw', 128, 'throughput'),
      comparison: '>=',
      target: 0.6,
      params: { concurrency: 128 },
    });
    ctx.target({
      name: 'messaging.batched.throughput.c128',
      description: 'volatile ask throughput, batched, vs raw NATS request/reply, 128 in flight',
      unit: 'calls/s',
      value: series(results, 'batched', 128, 'throughput'),
      baseline: series(results, 'raw', 128, 'throughput'),
      comparison: '>=',
      target: 1.0,
      params: { concurrency: 128 },
    });
    ctx.target({
      name: 'messaging.volatile.p50.c1',
      description: 'volatile ask p50 latency vs raw NATS request/reply, one at a time',
      unit: 'µs',
      value: series(results, 'volatile', 1, 'p50Us'),
      baseline: series(results, 'raw', 1, 'p50Us'),
      comparison: '<=',
      target: 1.1,
      params: { concurrency: 1 },
    });
    ctx.target({
      name: 'messaging.batched.p50.c1',
      description: 'volatile ask p50 latency, batching on (a batch of one goes alone), vs raw NATS request/reply, one at a time',
      unit: 'µs',
      value: series(results, 'batched', 1, 'p50Us'),
      baseline: series(results, 'raw', 1, 'p50Us'),
      comparison: '<=',
      target: 1.1,
      params: { concurrency: 1 },
    });
  },
};
