/**
 * Reading the upgrade database: every record under a prefix (what each node's
 * upgrade manager reads in full, without reading again the rollouts whose
 * records can no longer change), and a snapshot of the whole service (what
 * `molt status --watch` and the dashboard read every second) — which must not
 * cost one request per record ever written (a key listing and a get per key
 * did: requests per read growing with every node, rollout and progress record
 * the service has had). Counted here as the per-key get requests a plain NATS
 * subscriber sees on the JetStream API.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import type { NatsConnection } from '@nats-io/transport-node';
import { jetstreamManager } from '@nats-io/jetstream';
import { bucketNames } from '../../runtime/internal.ts';
import { upgradeBucketNames } from '../../runtime/server/store.ts';
import { udbKey, type NodeRecord, type RolloutRecord, type Udb } from '../../runtime/udb/index.ts';
import { createNode, silentLogger } from '../../runtime/index.ts';
import { startUpgradeManager } from '../../runtime/manager/index.ts';
import service from '../fixtures/counter.ts';
import { rolloutRecord } from '../support/records.ts';
import { startEmbeddedNats, type EmbeddedNats } from '../support/nats.ts';
import { eventually, openCounters, TIMINGS } from '../support/upgrades.ts';

interface Ctx {
  nats: EmbeddedNats;
  nc: NatsConnection;
  udb: Udb;
}

const test = suite<Ctx>('udb: reading a prefix');

test.before.each(async (ctx) => {
  ctx.nats = await startEmbeddedNats();
  ({ nc: ctx.nc, udb: ctx.udb } = await openCounters(ctx.nats.url));
});

test.after.each(async (ctx) => {
  await ctx.nc.drain().catch(() => undefined);
  await ctx.nats.stop();
});

/** Counts the requests that get one message of a stream (direct or through the stream's API). */
async function countGets(nc: NatsConnection): Promise<{ count(): number; stop(): void }> {
  let count = 0;
  const subs = ['$JS.API.DIRECT.GET.>', '$JS.API.STREAM.MSG.GET.>'].map((subject) => nc.subscribe(subject, { callback: () => void count++ }));
  await nc.flush();
  return { count: () => count, stop: () => subs.forEach((s) => s.unsubscribe()) };
}

test('a prefix read: the latest value of every key under the prefix, deleted keys left out', async (ctx) => {
  const { kv } = ctx.udb;
  for (let i = 0; i < 40; i++) await kv.put(`rollouts.r${i}`, JSON.stringify({ i, written: 1 }));
  for (const i of [3, 7]) await kv.put(`rollouts.r${i}`, JSON.stringify({ i, written: 2 }));
  for (const i of [10, 11, 12]) await kv.delete(`rollouts.r${i}`);
  await kv.put('nodes.n1', JSON.stringify({ other: true }));

  const entries = await ctx.udb.readAll('rollouts.');
  const read = new Map(entries.map((e) => [e.key, JSON.parse(e.value.length ? new TextDecoder().decode(e.value) : 'null')]));
  assert.is(read.size, 37, 'every key written and not deleted, once');
  for (let i = 0; i < 40; i++) {
    if ([10, 11, 12].includes(i)) assert.not.ok(read.has(`rollouts.r${i}`), `deleted key r${i} left out`);
    else assert.equal(read.get(`rollouts.r${i}`), { i, written: [3, 7].includes(i) ? 2 : 1 }, `r${i} at its latest value`);
  }
  assert.ok(entries.every((e) => e.revision > 0 && e.operation === 'PUT'));
});

test('an empty prefix reads as empty', async (ctx) => {
  await ctx.udb.kv.put('nodes.n1', JSON.stringify({ other: true }));
  assert.equal(await ctx.udb.readAll('retired.'), []);
  await ctx.udb.kv.put('retired.x', JSON.stringify({ x: 1 }));
  await ctx.udb.kv.delete('retired.x');
  assert.equal(await ctx.udb.readAll('retired.'), [], 'a prefix whose only key is deleted');
});

test('a snapshot of the whole service: every record, without a get per key', async (ctx) => {
  const { kv } = ctx.udb;
  const now = Date.now();
  const node = (id: string): NodeRecord => ({ id, service: 'counters', host: 'h', pid: 1, versions: { counter: 1 }, status: 'stopped', startedAt: now, heartbeatAt: now });
  for (let i = 0; i < 30; i++) await kv.put(udbKey.node(`n${i}`), JSON.stringify(node(`n${i}`)));
  await kv.delete(udbKey.node('n29'));
  for (let r = 0; r < 5; r++) {
    await ctx.udb.createRollout({ rolloutId: `counter-v${r + 2}-abc`, service: 'counters', type: 'counter', from: r + 1, to: r + 2, schedule: { name: 'immediate', params: {} }, publisher: 'U', state: 'done', counts: {}, startedAt: now, updatedAt: now });
    for (let i = 0; i < 10; i++) await kv.put(udbKey.progress(`counter-v${r + 2}-abc`, `n${i}`), JSON.stringify({ rolloutId: `counter-v${r + 2}-abc`, nodeId: `n${i}`, type: 'counter', from: r + 1, to: r + 2, step: 'done', at: now }));
  }

  const gets = await countGets(ctx.nc);
  const snapshot = await ctx.udb.snapshot();
  await ctx.nc.flush();
  gets.stop();

  assert.equal(snapshot.nodes.map((n) => n.id).sort(), Array.from({ length: 29 }, (_, i) => `n${i}`).sort(), 'every node record but the deleted one');
  assert.is(snapshot.rollouts.length, 5);
  assert.is(snapshot.progress.length, 50);
  assert.is(gets.count(), 0, `no per-key get (${gets.count()} made for ${snapshot.nodes.length + snapshot.rollouts.length + snapshot.progress.length} records)`);
});

test('a manager\'s full read lists every rollout but reads again only those that can still change', async (ctx) => {
  const now = Date.now();
  const rollout = (to: number, state: RolloutRecord['state']) => rolloutRecord(`counter-v${to}-abc`, to, state, { service: 'counters', startedAt: now + to, updatedAt: now, endedAt: now });
  // 40 upgrades of the past, each ended and superseded; the newest is done, and counted by the node's manager.
  for (let to = 2; to <= 41; to++) await ctx.udb.createRollout(rollout(to, to % 7 === 0 ? 'aborted' : 'done'));
  const { leaseMs, heartbeatMs } = TIMINGS;
  const node = await createNode({ service, nats: { servers: ctx.nats.url }, nodeId: 'reader', logger: silentLogger, heartbeatMs, leaseMs });
  // Long periods: only the reconciliations this test asks for run.
  const manager = await startUpgradeManager(node, { trustedKeys: [], reconcileMs: 600_000, tickMs: 200, leaseMs, logger: silentLogger });
  try {
    await manager.reconcile();
    await eventually(async () => JSON.stringify((await ctx.udb.rollout('counter-v41-abc'))?.record.counts) === '{"1":1}', 'the newest rollout counted by the manager');

    const gets = await countGets(ctx.nc);
    await manager.reconcile();
    await ctx.nc.flush();
    gets.stop();
    // One node record and the newest rollout are read; the 39 settled rollouts only listed (40 gets before).
    assert.ok(gets.count() <= 3, `${gets.count()} gets in a full read with 40 rollouts, 39 of them settled`);

    // One that can change again is read again: the newest rolled back, the one before it may be rolled back next.
    await ctx.udb.updateRollout('counter-v41-abc', (r) => ({ ...r, state: 'rolled-back' }));
    await manager.reconcile();
    const again = await countGets(ctx.nc);
    await manager.reconcile();
    await ctx.nc.flush();
    again.stop();
    assert.ok(again.count() >= 3 && again.count() <= 4, `${again.count()} gets: the node, v41 (the newest) and v40 (now the newest standing)`);
  } finally {
    await manager.stop();
    await node.stop();
  }
});

/**
 * The consumers on `stream`, by filter: how many, and how many have a
 * subscriber. A consumer nobody is subscribed to is one a listing left
 * behind (nats-server keeps an abandoned ordered consumer for minutes).
 */
async function consumersOn(nc: NatsConnection, stream: string): Promise<Map<string, { all: number; bound: number }>> {
  const jsm = await jetstreamManager(nc);
  const out = new Map<string, { all: number; bound: number }>();
  for await (const c of jsm.consumers.list(stream)) {
    const filter = c.config.filter_subject ?? (c.config.filter_subjects ?? []).join(',');
    const seen = out.get(filter) ?? { all: 0, bound: 0 };
    seen.all++;
    if (c.push_bound) seen.bound++;
    out.set(filter, seen);
  }
  return out;
}

test('a node and its manager list keys without leaving consumers on the server', async (ctx) => {
  const now = Date.now();
  for (let to = 2; to <= 6; to++) await ctx.udb.createRollout(rolloutRecord(`counter-v${to}-abc`, to, 'done', { service: 'counters', startedAt: now + to, updatedAt: now, endedAt: now }));
  const { leaseMs, heartbeatMs } = TIMINGS;
  const node = await createNode({ service, nats: { servers: ctx.nats.url }, nodeId: 'lister', logger: silentLogger, heartbeatMs, leaseMs });
  const manager = await startUpgradeManager(node, { trustedKeys: [], reconcileMs: 600_000, tickMs: 200, leaseMs, logger: silentLogger });
  try {
    // Full reads: every node record, rollout, control, retired record and descriptor listed.
    for (let i = 0; i < 3; i++) await manager.reconcile();
    const names = bucketNames('counters');
    for (const stream of [`KV_${names.udb}`, `KV_${upgradeBucketNames('counters').descriptors}`]) {
      const consumers = await consumersOn(ctx.nc, stream);
      assert.ok(consumers.size > 0, `${stream}: the node's watches are there`);
      for (const [filter, { all, bound }] of consumers) {
        assert.is(all, 1, `${stream}: ${all} consumers on ${filter}, ${all - bound} with no subscriber (one watch expected)`);
        assert.is(bound, 1, `${stream}: the consumer on ${filter} is a running watch`);
      }
    }
  } finally {
    await manager.stop();
    await node.stop();
  }
  // Stopped, the node deletes its watches' consumers rather than leave them to the server's idle threshold.
  const names = bucketNames('counters');
  await eventually(async () => {
    for (const stream of [`KV_${names.udb}`, `KV_${upgradeBucketNames('counters').descriptors}`]) if ((await consumersOn(ctx.nc, stream)).size > 0) return false;
    return true;
  }, 'no consumer left once the node stopped', 5000);
});

test.run();
