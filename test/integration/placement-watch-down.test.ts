/**
 * A node's membership watch can stall and stay down for seconds: it is a
 * consumer, and with the server that led the JetStream meta group cut off, no
 * new consumer can be created until the meta group elects a new leader —
 * while the stream itself, led from elsewhere, already takes heartbeats
 * again. Placement must not wait for a new watch: it reads the node records
 * from the stream, in stream order, and proves deaths and joins from them as
 * it would from the watch.
 *
 * Here placements run on a real NATS KV; one of them gets a watch that stops
 * delivering on command and, once stalled, never starts again.
 */
import * as assert from 'uvu/assert';
import { Kvm, type KV, type KvWatchOptions } from '@nats-io/kv';
import type { NatsConnection } from '@nats-io/transport-node';
import type { Placement } from '../../runtime/internal.ts';
import { placementSuite, testPlacement } from '../support/placement.ts';
import { sleep } from '../support/nats.ts';

const SHARDS = 16;
const LEASE_MS = 600;
const HEARTBEAT_MS = 100;

const test = placementSuite('placement: watch down');

const placement = (kv: KV, id: string): Placement => testPlacement(kv, id, { shards: SHARDS, heartbeatMs: HEARTBEAT_MS, leaseMs: LEASE_MS });

/**
 * Opens the bucket for one placement, with watches that deliver until
 * `stall()`: from then on they deliver nothing, and a new watch never starts
 * (its creation never answers), as when no meta leader can place a consumer.
 */
async function stallableBucket(nc: NatsConnection, name: string): Promise<{ kv: KV; stall(): void; watchesStarted(): number }> {
  const kv = await new Kvm(nc).open(name);
  const watch = kv.watch.bind(kv);
  let stalled = false;
  let started = 0;
  type Watcher = Awaited<ReturnType<KV['watch']>>;
  kv.watch = async (options?: KvWatchOptions): Promise<Watcher> => {
    if (stalled) return new Promise<Watcher>(() => undefined);
    const real = await watch(options);
    started++;
    const silenced = (async function* () {
      for await (const entry of real) if (!stalled) yield entry;
    })();
    return Object.assign(silenced, { stop: () => real.stop() }) as unknown as Watcher;
  };
  return { kv, stall: () => (stalled = true), watchesStarted: () => started };
}

async function until(what: string, check: () => boolean, timeoutMs: number): Promise<number> {
  const from = Date.now();
  while (!check()) {
    if (Date.now() - from > timeoutMs) throw new Error(`${what}: not within ${timeoutMs} ms`);
    await sleep(20);
  }
  return Date.now();
}

test('placement - with its watch down for good, a node proves a silent node dead and takes its shards, no sooner than a lease after its last record, and hands shards to a node that joins', async (ctx) => {
  await new Kvm(ctx.nc).create('watchdown_udb', { history: 1 });
  const a = await stallableBucket(ctx.nc, 'watchdown_udb');
  const first = placement(a.kv, 'wd-a');
  const second = placement(await new Kvm(ctx.nc).open('watchdown_udb'), 'wd-b');
  ctx.placements.push(first, second);
  await first.start();
  await second.start();
  const all = () => first.ownedShards().size + second.ownedShards().size === SHARDS;
  await until('the two nodes share the shards', () => all() && first.ownedShards().size > 0 && second.ownedShards().size > 0, 5000);

  // The first node's watch stalls and never comes back; then the second node falls silent.
  a.stall();
  await sleep(3 * HEARTBEAT_MS);
  await second.stop({ leave: false });
  const silentAt = Date.now();
  const tookAllAt = await until('the first node takes every shard', () => first.ownedShards().size === SHARDS, 10 * LEASE_MS);
  assert.is(a.watchesStarted(), 1, 'no watch started after the stall: the records were read from the stream');
  // Its last record was written at most a heartbeat before it fell silent.
  assert.ok(tookAllAt - silentAt >= LEASE_MS - HEARTBEAT_MS, `took the silent node's shards ${tookAllAt - silentAt} ms after it fell silent, within its lease`);

  // A node that joins meanwhile is seen too: the first gives it its shards.
  const third = placement(await new Kvm(ctx.nc).open('watchdown_udb'), 'wd-c');
  ctx.placements.push(third);
  await third.start();
  await until('the joining node gets shards from the first', () => third.ownedShards().size > 0 && first.ownedShards().size + third.ownedShards().size === SHARDS, 10 * LEASE_MS);
  assert.ok([...third.ownedShards()].every((s) => !first.ownedShards().has(s)), 'no shard owned by both');
  assert.is(a.watchesStarted(), 1);
});

test.run();
