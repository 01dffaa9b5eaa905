/**
 * A node gives a shard up only once the calls it accepted for it are done:
 * until then it keeps claiming the shard, and no other node takes it. A call
 * still committing when another node took the shard could store its write
 * after that node loaded the actor, which would then answer reads older than
 * a change already acknowledged (the stale read the failover test once saw
 * under load).
 *
 * The wait is bounded, for a call that is stuck rather than committing; the
 * bound must outlast any state write still waiting for its acknowledgement
 * (the store's write timeout), not only two leases. Here two placements run
 * on a real NATS KV: the first owns every shard, and when the second joins,
 * the first's calls on the shards it gives up take longer than two leases
 * but less than the write timeout.
 */
import * as assert from 'uvu/assert';
import { Kvm, type KV } from '@nats-io/kv';
import type { Placement } from '../../runtime/internal.ts';
import { placementSuite, testPlacement } from '../support/placement.ts';
import { sleep } from '../support/nats.ts';

const SHARDS = 8;
const LEASE_MS = 600;
const HEARTBEAT_MS = 100;
/** The store's write timeout as the node gives it to placement. */
const WRITE_TIMEOUT_MS = 2500;
/** How long the first node's calls on the shards it gives up run: past two leases, within the write timeout. */
const CALLS_RUN_MS = 1800;

const test = placementSuite('placement: release');

function placement(kv: KV, id: string, onOwnedChange: (owned: ReadonlySet<number>) => void | Promise<void>): Placement {
  return testPlacement(kv, id, { shards: SHARDS, heartbeatMs: HEARTBEAT_MS, leaseMs: LEASE_MS, writeTimeoutMs: WRITE_TIMEOUT_MS, onOwnedChange });
}

test('placement - a shard given up is not taken while the calls accepted for it may still be committing, and takes up no call sent to the node alone', async (ctx) => {
  const kv = await new Kvm(ctx.nc).create('release_udb', { history: 1 });
  let firstOwned = new Set<number>();
  let firstQuietAt: number | undefined;
  const first = placement(kv, 'rel-a', (owned) => {
    const gaveUp = [...firstOwned].some((s) => !owned.has(s));
    firstOwned = new Set(owned);
    if (!gaveUp) return;
    // The calls accepted for the shards given up end only after a while.
    return sleep(CALLS_RUN_MS).then(() => {
      firstQuietAt = Date.now();
    });
  });
  ctx.placements.push(first);
  await first.start();
  for (let waited = 0; first.ownedShards().size < SHARDS; waited += 50) {
    assert.ok(waited < 5000, `the first node takes every shard (has ${first.ownedShards().size})`);
    await sleep(50);
  }

  // While the first node's calls run, the second must not own any of them.
  const takenEarly: string[] = [];
  // And the first keeps answering the calls routed to those shards (serves),
  // but takes up no call sent to it alone (owns): such a call could still be
  // committing when the next owner loads the actor.
  const whileDraining: Array<{ serves: boolean; owns: boolean }> = [];
  const second = placement(kv, 'rel-b', (owned) => {
    if (owned.size > 0 && firstQuietAt === undefined) takenEarly.push(`took ${[...owned].join(',')} while the first node's calls were still running`);
  });
  ctx.placements.push(second);
  await second.start();
  for (let waited = 0; second.ownedShards().size === 0; waited += 50) {
    assert.ok(waited < CALLS_RUN_MS + WRITE_TIMEOUT_MS + 5000, 'the second node takes its shards in the end');
    const given = [...Array(SHARDS).keys()].find((s) => !firstOwned.has(s));
    if (given !== undefined && firstQuietAt === undefined) whileDraining.push({ serves: first.serves(given), owns: first.owns(given) });
    await sleep(50);
  }
  assert.ok(whileDraining.length > 0, 'the first node was seen draining');
  assert.ok(whileDraining.every((d) => d.serves && !d.owns), `while draining: ${JSON.stringify(whileDraining.slice(0, 3))}`);
  assert.equal(takenEarly, []);
  assert.ok(firstQuietAt !== undefined, 'the first node gave up shards');
  assert.ok([...second.ownedShards()].every((s) => !first.ownedShards().has(s)), 'no shard owned by both');
});

test.run();
