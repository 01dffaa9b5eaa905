/**
 * Issue 13, item 3: `molt status --watch --json` on a 3-server cluster must
 * never print a world with nodes or rollouts missing. Its reads used the
 * UDB's key lister and direct gets, which a replica that is still catching up
 * (a server just restarted) answers from what it has: the watcher printed
 * `"rollouts":[]`, or fewer nodes than exist, as if that were the truth.
 *
 * The UDB (R3) holds a rollout, two live nodes (a writer heartbeats them, so
 * the watcher keeps reading) and records of nodes that left. Server 0 is
 * killed; while it is down more node records are created; it is restarted
 * and has to catch up — four times. Records are only ever added, so every
 * view the watcher prints must hold the rollout and at least as many nodes as
 * the view before it; a read it cannot complete must be an error record.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { Kvm } from '@nats-io/kv';
import type { NatsConnection } from '@nats-io/transport-node';
import { connectNats } from '../../runtime/index.ts';
import { Udb, udbKey, type NodeRecord } from '../../runtime/udb/index.ts';
import { startNatsCluster, type NatsCluster } from '../support/cluster.ts';
import { spawnScript, type ChildNode } from '../support/nats.ts';

const test = suite<{ cluster: NatsCluster; nc?: NatsConnection; watcher?: ChildNode }>('cluster status');

test.before(async (ctx) => {
  ctx.cluster = await startNatsCluster();
});

test.after(async (ctx) => {
  await ctx.watcher?.kill('SIGKILL');
  await ctx.nc?.close().catch(() => undefined);
  await ctx.cluster?.stop();
  // As in cluster-rollout.test.ts: a connection retrying dead servers must not hold the process open.
  setTimeout(() => process.exit(process.exitCode ?? 0), 5000);
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

test('cluster status - a replica catching up never shows the watcher a partial world', async (ctx) => {
  const { cluster } = ctx;
  // The test's own writes go through servers 1 and 2, which stay up.
  const nc = (ctx.nc = await connectNats({ servers: cluster.urls.slice(1), name: 'test' }));
  const kv = await new Kvm(nc).create('molt_shop_udb', { history: 5, replicas: 3 });
  const udb = new Udb(kv, 'shop', nc);
  const now = Date.now();
  const node = (id: string, status: NodeRecord['status'], heartbeatAt: number): NodeRecord => ({ id, service: 'shop', host: 'h', pid: 1, versions: { sku: 1 }, status, startedAt: now, heartbeatAt });
  // A put meets "jetstream is not enabled" or a timeout while the stream elects a leader after a kill: retry it.
  const put = async (key: string, value: string) => {
    for (let attempt = 0; ; attempt++) {
      try {
        return await kv.put(key, value);
      } catch (e) {
        if (attempt >= 40) throw e;
        await sleep(250);
      }
    }
  };
  const addGone = async (prefix: string, n: number) => {
    for (let i = 0; i < n; i += 100) {
      await Promise.all(Array.from({ length: Math.min(100, n - i) }, (_, j) => put(udbKey.node(`${prefix}-${i + j}`), JSON.stringify(node(`${prefix}-${i + j}`, 'stopped', now - 3_600_000)))));
    }
  };
  await addGone('gone', 300);
  await udb.createRollout({ rolloutId: 'sku-v2-abcdef', service: 'shop', type: 'sku', from: 1, to: 2, schedule: { name: 'immediate', params: {} }, publisher: 'U', state: 'running', counts: {}, startedAt: now, updatedAt: now });
  let writing = true;
  const heartbeats = (async () => {
    while (writing) {
      for (const id of ['live-a', 'live-b']) await kv.put(udbKey.node(id), JSON.stringify(node(id, 'running', Date.now()))).catch(() => undefined);
      await sleep(100);
    }
  })();

  type Doc = { format?: string; error?: { code: string; message: string }; nodes?: unknown[]; rollouts?: unknown[] };
  const printed = (): Doc[] =>
    watcher
      .output()
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as Doc);
  const expected = 2 + 300 + 4 * 150;
  const watcher = (ctx.watcher = spawnScript('bin/molt.js', ['status', '--nats', cluster.natsArg, '--service', 'shop', '--watch', '--json'], { MOLT_LOG: 'warn' }));
  try {
    await watcher.waitFor(/"rollouts":\[\{"rolloutId":"sku-v2-abcdef"/, 60_000);
    for (let round = 0; round < 4; round++) {
      await cluster.kill(0);
      // Created while server 0 is down: its replica lacks them until it has caught up.
      await addGone(`round${round}`, 150);
      await cluster.restart(0);
      await sleep(2500);
    }
    // A view is read in full or not printed: on a busy machine the one after the last round may take a while.
    for (const deadline = Date.now() + 30_000; Date.now() < deadline; await sleep(250)) {
      if (printed().some((d) => !d.error && d.nodes!.length >= expected)) break;
    }
  } finally {
    writing = false;
    await heartbeats;
    await watcher.kill('SIGKILL');
  }

  const docs = printed();
  const views = docs.filter((d) => !d.error);
  const errors = docs.filter((d) => d.error);
  const problems: string[] = [];
  let most = 0;
  for (const v of views) {
    if (v.rollouts!.length !== 1) problems.push(`${v.rollouts!.length} rollouts`);
    if (v.nodes!.length < most) problems.push(`${v.nodes!.length} nodes after a view of ${most}`);
    most = Math.max(most, v.nodes!.length);
  }
  console.log(`cluster-status: ${views.length} views (nodes ${views.map((v) => v.nodes!.length).join(' ')}), ${errors.length} error records, problems: ${problems.join('; ') || 'none'}`);
  assert.equal(problems, [], 'every view is the whole world at the time it was read');
  assert.is(most, expected, 'the last views show every node');
  assert.ok(errors.every((e) => e.format === 'molt.status/v1' && e.error!.message.length > 0), 'error records say what failed');
});

test.run();
