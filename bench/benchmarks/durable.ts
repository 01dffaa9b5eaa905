/**
 * Durability: durable Molt asks (each answered only after its state change is
 * written to JetStream KV with compare-and-set) against raw KV puts of values
 * the size of the persisted actor (with the remembered calls its writes
 * carry), same client options, same concurrency, distinct keys.
 * Target ≥ 0.7× at 64 and 128 in flight.
 * The single-call form is the target's; the batched form (the client's
 * default) is measured beside it.
 *
 * @module
 */
import { Kvm } from '@nats-io/kv';
import { connectNats } from '../../runtime/index.ts';
import { bucketNames, stateKey } from '../../runtime/internal.ts';
import type { Benchmark } from '../harness.ts';
import { addRows, compare, series, type LoadSystem } from '../compare.ts';
import service from '../fixtures/service.ts';

export const durable: Benchmark = {
  name: 'durable',
  title: 'durable Molt ask vs raw JetStream KV put',
  async run(ctx) {
    const nats = await ctx.nats();
    const [node, moltClient, kvClient] = await Promise.all([ctx.agent('molt-node'), ctx.agent('molt-requester'), ctx.agent('kv-requester')]);
    await node.call('molt.serve', { url: nats.url });
    await moltClient.call('molt.caller', { url: nats.url, name: 'durable', type: 'counter', keyPrefix: 'd' });
    await moltClient.call('molt.caller', { url: nats.url, name: 'durable-batched', type: 'counter', keyPrefix: 'e', batching: true });

    // The raw puts write values exactly as large as a persisted actor: read one
    // in its steady state. The client gives every call an idempotency key, and
    // the record carries the remembered calls since the actor's checkpoint (1
    // to 16; the older ones, up to the node's limit of 64, are in the
    // checkpoint, written once per 16 changes): read it after more calls than
    // the limit, as every actor has during the measure.
    for (let i = 0; i < 80; i++) await moltClient.call('sweep', { caller: 'durable', from: 0, to: 1, concurrency: 1 });
    const nc = await connectNats({ servers: nats.url });
    const entry = await (await new Kvm(nc).open(bucketNames(service.name).state)).get(stateKey('counter', 'd0'));
    const valueBytes = entry?.value.length ?? 200;
    await nc.close();
    ctx.log(`persisted actor: ${valueBytes} bytes; raw KV values use the same size`);
    await kvClient.call('kv.caller', { url: nats.url, name: 'kv', valueBytes, keyPrefix: 'd' });

    const systems: LoadSystem[] = [
      { id: 'kv', label: `raw KV put (${valueBytes} B)`, requester: kvClient, caller: 'kv', servers: [] },
      { id: 'durable', label: 'Molt ask, durable', requester: moltClient, caller: 'durable', servers: [node] },
      { id: 'batched', label: 'Molt ask, durable, batched', requester: moltClient, caller: 'durable-batched', servers: [node] },
    ];
    const concurrencies = [64, 128];
    const results = await compare(ctx, nats, systems, concurrencies);
    addRows(ctx, systems, results);
    for (const c of concurrencies) {
      ctx.target({
        name: `durable.throughput.c${c}`,
        description: `durable ask throughput vs raw KV put, ${c} in flight`,
        unit: 'calls/s',
        value: series(results, 'durable', c, 'throughput'),
        baseline: series(results, 'kv', c, 'throughput'),
        comparison: '>=',
        target: 0.7,
        params: { concurrency: c, valueBytes },
      });
    }
  },
};
