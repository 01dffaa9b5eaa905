/**
 * State migration (issue 3): the in-place upgrade of N resident durable actors
 * of `chain` from v1 to v4 — three node upgrades, each a transform function
 * step, each actor rewritten with compare-and-set at every step — against
 * raw KV puts of the same states (same sizes, same keys, three rounds) at the
 * same concurrency as the upgrade's writers (64). N = 10,000 and 100,000.
 * Target ≥ 0.7×.
 *
 * @module
 */
import { Kvm, type KV } from '@nats-io/kv';
import type { NatsConnection } from '@nats-io/transport-node';
import { connectNats } from '../../runtime/index.ts';
import { bucketNames, stateKey } from '../../runtime/internal.ts';
import { stat as statOf, type Agent, type BenchContext, type Benchmark } from '../harness.ts';
import service from '../fixtures/service.ts';

/** The upgrade's writers: ActorHost.upgrade's default concurrency. */
const CONCURRENCY = 64;

interface Sweep {
  ms: number;
  count: number;
  errors: number;
  firstError?: string;
}

async function sizeOf(state: KV, key: string): Promise<number> {
  const entry = await state.get(key);
  if (!entry) throw new Error(`no state stored at ${key}`);
  return entry.value.length;
}

async function one(ctx: BenchContext, url: string, state: KV, requester: Agent, rawClient: Agent, n: number, tag: string, rawFirst: boolean) {
  const prefix = `u${tag}-`;
  const node = await ctx.agent(`molt-node-${tag}`);
  await node.call('molt.serve', { url, versions: { chain: 1 }, passivateAfterMs: 3_600_000, holdLimit: 1_000_000 });
  await requester.call('molt.caller', { url, name: tag, type: 'chain', version: 1, keyPrefix: prefix });

  const raw = async () => {
    let ms = 0;
    for (const [i, bytes] of sizes.entries()) {
      await rawClient.call('kv.caller', { url, name: `${tag}-${i}`, bucket: 'bench_upgrade_raw', valueBytes: bytes, keyPrefix: prefix });
      const s = await rawClient.call<Sweep>('sweep', { caller: `${tag}-${i}`, from: 0, to: n, concurrency: CONCURRENCY });
      if (s.errors) throw new Error(`raw KV puts failed: ${s.firstError}`);
      ms += s.ms;
    }
    return ms;
  };

  const sizes: number[] = [];
  let rawMs = NaN;
  let moltMs = 0;
  if (rawFirst) {
    // Sizes of the v2..v4 states are needed before the upgrade ran: take them from a probe actor.
    sizes.push(...(await probeSizes(ctx, url, state, tag)));
    rawMs = await raw();
  }
  const activation = await requester.call<Sweep>('sweep', { caller: tag, from: 0, to: n, concurrency: 256 });
  if (activation.errors) throw new Error(`activation failed: ${activation.firstError}`);
  const status = await node.call<{ types: Record<string, { resident: number }> }>('molt.status');
  if (status.types.chain!.resident !== n) throw new Error(`expected ${n} resident actors, found ${status.types.chain!.resident}`);
  const measured: number[] = [];
  for (const v of [2, 3, 4]) {
    const r = await node.call<{ ms: number; steps: Array<{ transformed: number; failed: number }> }>('molt.upgrade', { type: 'chain', to: v });
    const step = r.steps[0]!;
    if (step.failed !== 0 || step.transformed !== n) throw new Error(`upgrade to v${v}: ${step.transformed} transformed, ${step.failed} failed (expected ${n})`);
    moltMs += r.ms;
    measured.push(await sizeOf(state, stateKey('chain', `${prefix}0`)));
  }
  if (!rawFirst) {
    sizes.push(...measured);
    rawMs = await raw();
  }
  await node.stop();
  ctx.log(`N=${n} ${tag}: upgrade v1→v4 ${moltMs.toFixed(0)} ms (${Math.round(n / (moltMs / 1000))} actors/s), raw puts of the same states ${rawMs.toFixed(0)} ms; state sizes ${measured.join('/')} B`);
  return { moltMs, rawMs, sizes: measured };
}

/** Upgrades one probe actor through the chain on its own node, to learn the v2..v4 state sizes. */
async function probeSizes(ctx: BenchContext, url: string, state: KV, tag: string): Promise<number[]> {
  const node = await ctx.agent(`molt-probe-${tag}`);
  const client = await ctx.agent(`molt-probe-client-${tag}`);
  await node.call('molt.serve', { url, versions: { chain: 1 } });
  await client.call('molt.caller', { url, name: 'probe', type: 'chain', version: 1, keyPrefix: `probe${tag}-` });
  await client.call('sweep', { caller: 'probe', from: 0, to: 1, concurrency: 1 });
  const out: number[] = [];
  for (const v of [2, 3, 4]) {
    await node.call('molt.upgrade', { type: 'chain', to: v });
    out.push(await sizeOf(state, stateKey('chain', `probe${tag}-0`)));
  }
  await client.stop();
  await node.stop();
  return out;
}

export const upgrade: Benchmark = {
  name: 'upgrade',
  title: 'in-place upgrade of resident actors through a 3-step TF chain vs raw KV puts',
  async run(ctx) {
    const nats = await ctx.nats();
    const [requester, rawClient] = await Promise.all([ctx.agent('molt-requester'), ctx.agent('kv-requester')]);
    const nc: NatsConnection = await connectNats({ servers: nats.url });
    try {
      // The state bucket exists once a node has started; create it the same way to read sizes.
      const state = await new Kvm(nc).create(bucketNames(service.name).state, { history: 1, replicas: 1 });
      const sizes = ctx.options.quick ? [{ label: '10k', n: 300, reps: 1 }, { label: '100k', n: 1000, reps: 1 }] : [{ label: '10k', n: 10_000, reps: ctx.options.reps }, { label: '100k', n: 100_000, reps: 1 }];
      for (const { label, n, reps } of sizes) {
        const molt: number[] = [];
        const raw: number[] = [];
        let stateBytes: number[] = [];
        for (let rep = 0; rep < reps; rep++) {
          const r = await one(ctx, nats.url, state, requester, rawClient, n, `${label}r${rep}`, rep % 2 === 1);
          molt.push(n / (r.moltMs / 1000));
          raw.push(n / (r.rawMs / 1000));
          stateBytes = r.sizes;
        }
        ctx.row({ system: 'Molt upgrade v1→v4 (3 TF steps)', setting: `N=${n}`, metrics: { actors_per_s: statOf(molt) } });
        ctx.row({ system: 'raw KV puts of the same states (3 rounds)', setting: `N=${n}`, metrics: { actors_per_s: statOf(raw) } });
        ctx.target({
          name: `upgrade.${label}.throughput`,
          description: `in-place upgrade of ${n} resident actors v1→v4 vs raw KV puts of the same states, ${CONCURRENCY} writers`,
          unit: 'actors/s',
          value: molt,
          baseline: raw,
          comparison: '>=',
          target: 0.7,
          params: { actors: n, steps: 3, concurrency: CONCURRENCY, stateBytes },
        });
      }
    } finally {
      await nc.close();
    }
  },
};

