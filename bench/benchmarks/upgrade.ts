/**
 * State migration (issue 3): the in-place upgrade of N resident durable actors
 * of `chain` from v1 to v4 — three node upgrades, each a transform function
 * step, each actor rewritten with compare-and-set at every step — against
 * raw KV puts of the same states (same sizes, same keys, three rounds) at the
 * same concurrency as the upgrade's writers (64). N = 10,000 and 100,000.
 * Target ≥ 0.8× (issue 18; issue 3 asked 0.7×).
 *
 * @module
 */
import { Kvm, type KV } from '@nats-io/kv';
import { connectNats } from '../../runtime/index.ts';
import { bucketNames, stateKey } from '../../runtime/internal.ts';
import { median, stat, type Agent, type BenchContext, type Benchmark } from '../harness.ts';
import service from '../fixtures/service.ts';
import { makeResident, sweep } from './resident.ts';

/** The upgrade's writers: ActorHost.upgrade's default concurrency. */
const CONCURRENCY = 64;

interface Env {
  url: string;
  state: KV;
  requester: Agent;
  kvClient: Agent;
}

/**
 * One repetition: a fresh node at v1 with N resident actors, upgraded to v4;
 * the raw baseline puts the v2, v3 and v4 states to the same keys. The raw
 * side runs first on odd repetitions, once the state sizes are known.
 */
async function once(ctx: BenchContext, env: Env, n: number, tag: string, knownSizes: number[] | undefined) {
  const { url, state, requester, kvClient } = env;
  const prefix = `u${tag}-`;
  const raw = async (sizes: number[]) => {
    let ms = 0;
    for (const [i, bytes] of sizes.entries()) {
      await kvClient.call('kv.caller', { url, name: `${tag}-raw${i}`, bucket: 'bench_upgrade_raw', valueBytes: bytes, keyPrefix: prefix });
      ms += (await sweep(kvClient, { caller: `${tag}-raw${i}`, from: 0, to: n, concurrency: CONCURRENCY })).ms;
    }
    return ms;
  };
  const rawFirst = knownSizes !== undefined;
  let rawMs = rawFirst ? await raw(knownSizes) : NaN;

  const node = await ctx.agent(`molt-node-${tag}`);
  await node.call('molt.serve', { url, versions: { chain: 1 }, passivateAfterMs: 3_600_000 });
  const resident = await makeResident({ url, state, stateBucket: bucketNames(service.name).state, requester, kvClient, type: 'chain', version: 1, prefix, n, tag });
  const status = await node.call<{ types: Record<string, { resident: number }> }>('molt.status');
  if (status.types.chain!.resident !== n) throw new Error(`expected ${n} resident actors, found ${status.types.chain!.resident}`);
  let moltMs = 0;
  const sizes: number[] = [];
  for (const v of [2, 3, 4]) {
    const r = await node.call<{ ms: number; steps: Array<{ transformed: number; failed: number }> }>('molt.upgrade', { type: 'chain', to: v });
    const step = r.steps[0]!;
    if (step.failed !== 0 || step.transformed !== n) throw new Error(`upgrade to v${v}: ${step.transformed} transformed, ${step.failed} failed (expected ${n})`);
    moltMs += r.ms;
    const entry = await state.get(stateKey('chain', `${prefix}0`));
    sizes.push(entry?.value.length ?? NaN);
  }
  await node.stop();
  if (!rawFirst) rawMs = await raw(sizes);
  ctx.log(
    `N=${n} ${tag}: loaded ${n} actors in ${(resident.loadMs / 1000).toFixed(1)} s; upgrade v1→v4 ${moltMs.toFixed(0)} ms (${Math.round(n / (moltMs / 1000))} actors/s), ` +
      `raw puts of the same states ${rawMs.toFixed(0)} ms; state sizes ${resident.stateBytes}→${sizes.join('/')} B`,
  );
  return { moltMs, rawMs, sizes };
}

export const upgrade: Benchmark = {
  name: 'upgrade',
  title: 'in-place upgrade of resident actors through a 3-step TF chain vs raw KV puts',
  async run(ctx) {
    const nats = await ctx.nats();
    const [requester, kvClient] = await Promise.all([ctx.agent('molt-requester'), ctx.agent('kv-requester')]);
    const nc = await connectNats({ servers: nats.url });
    try {
      // The node creates the state bucket the same way; open it early to read sizes.
      const state = await new Kvm(nc).create(bucketNames(service.name).state, { history: 1, replicas: 1 });
      const env: Env = { url: nats.url, state, requester, kvClient };
      const plan = ctx.options.quick
        ? [{ label: '10k', n: 300, reps: 1 }, { label: '100k', n: 1000, reps: 1 }]
        : [{ label: '10k', n: 10_000, reps: ctx.options.reps }, { label: '100k', n: 100_000, reps: 1 }];
      let sizes: number[] | undefined;
      for (const { label, n, reps } of plan) {
        const molt: number[] = [];
        const raw: number[] = [];
        for (let rep = 0; rep < reps; rep++) {
          // Alternate which side runs first once the sizes are known (rep 0 learns them).
          const r = await once(ctx, env, n, `${label}r${rep}`, rep % 2 === 1 ? sizes : undefined);
          sizes = r.sizes;
          molt.push(n / (r.moltMs / 1000));
          raw.push(n / (r.rawMs / 1000));
        }
        ctx.row({ system: 'Molt upgrade v1→v4 (3 TF steps)', setting: `N=${n}`, metrics: { actors_per_s: stat(molt) } });
        ctx.row({ system: 'raw KV puts of the same states (3 rounds)', setting: `N=${n}`, metrics: { actors_per_s: stat(raw) } });
        ctx.target({
          name: `upgrade.${label}.throughput`,
          description: `in-place upgrade of ${n} resident actors v1→v4 vs raw KV puts of the same states, ${CONCURRENCY} writers`,
          unit: 'actors/s',
          value: molt,
          baseline: raw,
          comparison: '>=',
          target: 0.8,
          params: { actors: n, steps: 3, concurrency: CONCURRENCY, stateBytes: sizes },
        });
      }
      await lazy(ctx, env, ctx.options.quick ? 100 : 1000);
    } finally {
      await nc.close();
    }
  },
};

/**
 * Lazy migration: the first call to an actor whose stored state is older than
 * the node runs the TF chain on load. On a v4 node, loads N actors stored at
 * v4 and N stored at v1, one call at a time, alternating in chunks so both see
 * the same conditions, and reports the median first-call latency of each and
 * the difference (the cost of TF 1→2→3→4 on the first call).
 */
async function lazy(ctx: BenchContext, env: Env, n: number): Promise<void> {
  const { url, state, requester, kvClient } = env;
  for (const v of [1, 4]) {
    const node = await ctx.agent(`molt-node-lazy-v${v}`);
    await node.call('molt.serve', { url, versions: { chain: v } });
    await requester.call('molt.caller', { url, name: `lazy-write-v${v}`, type: 'chain', version: v, keyPrefix: `lazyprobe${v}-` });
    await sweep(requester, { caller: `lazy-write-v${v}`, from: 0, to: 1, concurrency: 1 });
    await node.stop();
    const entry = await state.get(stateKey('chain', `lazyprobe${v}-0`));
    if (!entry) throw new Error(`no v${v} state written`);
    await kvClient.call('kv.caller', {
      url,
      name: `lazy-fill-v${v}`,
      bucket: bucketNames(service.name).state,
      keyPrefix: `chain.lazy${v}-`,
      valueBase64: Buffer.from(entry.value).toString('base64'),
    });
    await sweep(kvClient, { caller: `lazy-fill-v${v}`, from: 0, to: n, concurrency: 128 });
  }
  const node = await ctx.agent('molt-node-lazy');
  await node.call('molt.serve', { url, versions: { chain: 4 } });
  for (const v of [1, 4]) await requester.call('molt.caller', { url, name: `lazy-get-v${v}`, type: 'chain', version: 4, keyPrefix: `lazy${v}-`, message: 'get' });
  const WARM = 20;
  const CHUNK = 20;
  for (const v of [4, 1]) await sweep(requester, { caller: `lazy-get-v${v}`, from: 0, to: WARM, concurrency: 1 });
  const latencies: Record<number, number[]> = { 1: [], 4: [] };
  for (let from = WARM, k = 0; from < n; from += CHUNK, k++) {
    const to = Math.min(n, from + CHUNK);
    for (const v of k % 2 === 0 ? [4, 1] : [1, 4]) {
      latencies[v]!.push(...(await sweep(requester, { caller: `lazy-get-v${v}`, from, to, concurrency: 1, latencies: true })).latenciesUs!);
    }
  }
  await node.stop();
  const p50 = (v: number) => median(latencies[v]!);
  const one = (x: number) => ({ min: x, median: x, max: x, n: 1 });
  ctx.log(`lazy migration: first call p50 ${p50(4).toFixed(0)} µs when stored at v4, ${p50(1).toFixed(0)} µs when stored at v1 (${(p50(1) - p50(4)).toFixed(0)} µs for TF 1→4)`);
  ctx.row({
    system: 'first call, stored at v1 vs v4 (node at v4)',
    setting: `N=${n - WARM}, c=1`,
    metrics: { first_call_p50_v4_us: one(p50(4)), first_call_p50_v1_us: one(p50(1)), added_by_tf_chain_us: one(p50(1) - p50(4)) },
  });
}
