/**
 * `molt verify` and `molt rehearse` (issue 15). Verify: the time of the
 * default run (seeded) for each shipped template, reported, no target.
 * Rehearse: actors checked per second on a bucket of stored counters
 * (read, decode, TF, reads before and after), against a raw KV read of the
 * same keys, 32 gets in flight. Rehearse reads the whole type in one stream
 * (runtime/verify/rehearse.ts), so its figure is mostly the rehearsal's own
 * CPU. Target ≥ 0.5× the raw read. Verify runs in the harness; the rehearsal
 * and the raw read run in one agent of their own (bench/systems/verify.ts),
 * one nats-server.
 *
 * @module
 */
import '../../test/support/molt-alias.ts';
import { Kvm } from '@nats-io/kv';
import { connectNats, defineActorType, type ActorType } from '../../runtime/index.ts';
import { createSuperjsonCodec } from '../../runtime/wire/codec.ts';
import { bucketNames, encodeKey, stateKey } from '../../runtime/wire/protocol.ts';
import { verifyType } from '../../runtime/verify/check.ts';
import { stat, type Benchmark } from '../harness.ts';

const CONCURRENCY = 32;

const template = (path: string): Promise<Record<string, any>> => import(new URL(`../../templates/${path}`, import.meta.url).href);

async function templateTypes(): Promise<Array<[string, ActorType]>> {
  const { cartV1 } = await template('cart/src/cart/v1.ts');
  const { cartV2 } = await template('cart/src/cart/v2.ts');
  const { cartV3 } = await template('cart/src/cart/v3.ts');
  const { inventoryV1 } = await template('cart/src/inventory/v1.ts');
  const { colorsetV1 } = await template('colorset/src/colorset/v1.ts');
  const { colorsetV2 } = await template('colorset/src/colorset/v2.ts');
  const { counterV1 } = await template('counter/src/counter/v1.ts');
  return [
    ['counter', defineActorType('counter', [counterV1])],
    ['cart (cart 1→2→3)', defineActorType('cart', [cartV1, cartV2, cartV3])],
    ['cart (inventory)', defineActorType('inventory', [inventoryV1])],
    ['colorset (1→2)', defineActorType('colorset', [colorsetV1, colorsetV2])],
  ];
}

export const verify: Benchmark = {
  name: 'verify',
  title: 'molt verify per template; molt rehearse vs a raw KV read of the same keys',
  async run(ctx) {
    for (const [name, type] of await templateTypes()) {
      const ms: number[] = [];
      for (let rep = 0; rep < ctx.options.reps; rep++) ms.push(verifyType(type, { seed: 1 }).ms);
      ctx.row({ system: `molt verify: ${name}`, setting: 'defaults, seed 1', metrics: { ms: stat(ms) } });
    }

    const actors = ctx.options.quick ? 1_000 : 10_000;
    const nats = await ctx.nats();
    // As every benchmark's connection (and `molt rehearse`'s own): connectNats, async stack traces off.
    const nc = await connectNats({ servers: nats.url });
    try {
      const kv = await new Kvm(nc).create(bucketNames('counters').state);
      const codec = createSuperjsonCodec();
      const keys = Array.from({ length: actors }, (_, i) => stateKey('counter', encodeKey(`acct-${i}`)));
      for (let i = 0; i < keys.length; i += 500) {
        await Promise.all(keys.slice(i, i + 500).map((key, j) => kv.put(key, codec.encode({ v: 1, value: {}, context: { count: i + j } }))));
      }
      // Both sides in one agent of their own (bench/systems/verify.ts), on one connection: a process as the command's, not the harness's.
      const agent = await ctx.agent('verify-rehearse');
      await agent.call('verify.open', { url: nats.url, service: 'counters', keys });
      const raw: number[] = [];
      const rehearsed: number[] = [];
      for (let rep = 0; rep < ctx.options.reps; rep++) {
        raw.push(await agent.call<number>('verify.raw', { concurrency: CONCURRENCY }));
        rehearsed.push(await agent.call<number>('verify.rehearse'));
      }
      ctx.row({ system: 'raw KV read', setting: `${actors} keys, ${CONCURRENCY} in flight`, metrics: { actors_per_s: stat(raw) } });
      ctx.row({ system: 'molt rehearse', setting: `${actors} actors, one stream, 4 random reads`, metrics: { actors_per_s: stat(rehearsed) } });
      ctx.target({
        name: 'verify.rehearse.throughput',
        description: `molt rehearse (read, TF, reads before and after) vs a raw KV read of the same ${actors} keys (${CONCURRENCY} gets in flight)`,
        unit: 'actors/s',
        value: rehearsed,
        baseline: raw,
        comparison: '>=',
        target: 0.5,
        params: { actors, concurrency: CONCURRENCY },
      });
    } finally {
      await nc.drain().catch(() => undefined);
    }
  },
};
