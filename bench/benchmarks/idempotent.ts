/**
 * Idempotent calls: durable Molt asks that carry an idempotency key (the
 * client's default: a fresh key per call, remembered by the node with the
 * actor's state in the same compare-and-set write) against the same asks
 * without one, same node, same concurrency, each worker on its own actor (so
 * every actor soon holds its full window of 64 remembered keys and replies,
 * the steady state). Target ≥ 0.9× at 64 and 128 in flight.
 *
 * The cost grows with what every write carries: the remembered calls since
 * the actor's checkpoint (1–16), and one write in 16 of the checkpoint. The
 * same run measures, as rows, the same keyed asks to a node without
 * checkpoints (`idempotency: { checkpointEvery: 0 }`: every write carries all
 * 64 remembered calls; service `bench-full`, its own bucket on the same
 * nats-server) — before and after in one run. A second comparison, on its own
 * nats-server, runs a node that remembers at most 8 calls per actor
 * (`idempotency: { limit: 8 }`) instead of 64, as rows only.
 *
 * @module
 */
import { Kvm } from '@nats-io/kv';
import { connectNats } from '../../runtime/index.ts';
import { bucketNames, stateKey } from '../../runtime/internal.ts';
import type { Benchmark } from '../harness.ts';
import { addRows, compare, series, type LoadSystem } from '../compare.ts';
import { checkpointKey } from '../../runtime/host/remembered.ts';
import service from '../fixtures/service.ts';

export const idempotent: Benchmark = {
  name: 'idempotent',
  title: 'durable Molt ask with an idempotency key vs without',
  async run(ctx) {
    const concurrencies = [64, 128];
    const measure = async (limit: number | undefined) => {
      const nats = await ctx.nats();
      const [node, keyed, plain] = await Promise.all([ctx.agent('molt-node'), ctx.agent('molt-keyed'), ctx.agent('molt-plain')]);
      await node.call('molt.serve', { url: nats.url, ...(limit ? { idempotencyLimit: limit } : {}) });
      await keyed.call('molt.caller', { url: nats.url, name: 'keyed', type: 'counter', keyPrefix: 'ik' });
      await plain.call('molt.caller', { url: nats.url, name: 'plain', type: 'counter', keyPrefix: 'pk', idempotency: false });
      const window = limit ? ` (node remembers ${limit})` : '';
      const systems: LoadSystem[] = [
        { id: 'plain', label: `Molt ask, durable, no idempotency key${window}`, requester: plain, caller: 'plain', servers: [node] },
        { id: 'keyed', label: `Molt ask, durable, idempotency key${window}`, requester: keyed, caller: 'keyed', servers: [node] },
      ];
      if (!limit) {
        // The same keyed asks to a node without checkpoints: every write carries every remembered call.
        const [fullNode, full] = await Promise.all([ctx.agent('molt-node-full'), ctx.agent('molt-keyed-full')]);
        await fullNode.call('molt.serve', { url: nats.url, service: 'bench-full', checkpointEvery: 0 });
        await full.call('molt.caller', { url: nats.url, service: 'bench-full', name: 'full', type: 'counter', keyPrefix: 'fk' });
        systems.push({ id: 'full', label: 'Molt ask, durable, idempotency key, no checkpoint (every write carries all)', requester: full, caller: 'full', servers: [fullNode] });
      }
      const results = await compare(ctx, nats, systems, concurrencies);
      addRows(ctx, systems, results);
      // What the remembered calls cost in bytes: one actor's record with and without them.
      const nc = await connectNats({ servers: nats.url });
      const kv = await new Kvm(nc).open(bucketNames(service.name).state);
      const size = async (key: string) => (await kv.get(stateKey('counter', key)))?.value.length ?? 0;
      const bytes = { keyed: await size('ik0'), plain: await size('pk0') };
      const checkpointBytes = (await kv.get(checkpointKey(stateKey('counter', 'ik0'))))?.value.length ?? 0;
      await nc.close();
      ctx.log(`one actor's record${window}: ${bytes.keyed} B with its remembered calls since its checkpoint (${checkpointBytes} B), ${bytes.plain} B without`);
      for (const c of concurrencies) {
        for (const id of limit ? ['keyed'] : ['keyed', 'full']) {
          const ratio = series(results, id, c, 'throughput').map((v, i) => v / series(results, 'plain', c, 'throughput')[i]!);
          ctx.log(`c=${c}${window}: ${id}/plain throughput per repetition ${ratio.map((r) => r.toFixed(2)).join(', ')}`);
        }
      }
      return { results, bytes };
    };

    const { results, bytes } = await measure(undefined);
    for (const c of concurrencies) {
      ctx.target({
        name: `idempotent.throughput.c${c}`,
        description: `durable ask throughput with an idempotency key vs without, ${c} in flight`,
        unit: 'calls/s',
        value: series(results, 'keyed', c, 'throughput'),
        baseline: series(results, 'plain', c, 'throughput'),
        comparison: '>=',
        target: 0.9,
        params: { concurrency: c, recordBytesKeyed: bytes.keyed, recordBytesPlain: bytes.plain },
      });
    }
    await measure(8);
  },
};
