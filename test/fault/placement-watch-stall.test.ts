/**
 * A node whose membership watch stops delivering must still take its shards
 * back after a fence.
 *
 * A KV watch is an ordered push consumer with one replica, on one
 * nats-server. When that server dies (or the consumer is deleted), the NATS
 * client notices only after two missed idle heartbeats of 30 s each. Until
 * then the watch delivers nothing — not even the node's own heartbeats — and
 * a node that fenced itself meanwhile (its lease ran out during a JetStream
 * election) renewed its lease but could take back no shard: it waits to see
 * its renewal come back through the watch. On the 3-server cluster test that
 * left both nodes serving nothing for a minute, about once in five runs.
 *
 * Here, on one nats-server: the node is frozen past its lease, its watch
 * consumers are deleted meanwhile, and it is resumed. It must fence itself,
 * renew, notice that its acknowledged heartbeats do not come back, restart
 * the watch, and serve again within seconds.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { createClient, type MoltClient } from '../../runtime/index.ts';
import { spawnScript, startEmbeddedNats, type ChildNode, type EmbeddedNats } from '../support/nats.ts';
import { deleteNodeWatches, untilEveryKeyAnswers } from '../support/watches.ts';

const LEASE_MS = 2000;
const HEARTBEAT_MS = 300;
/** Well under the NATS client's own stall detection (60–90 s), well over the fix's (about two seconds). */
const RECOVERY_BOUND_MS = 15_000;

const test = suite<{ nats: EmbeddedNats; node: ChildNode; client: MoltClient }>('placement');

test.before(async (ctx) => {
  ctx.nats = await startEmbeddedNats();
  ctx.node = spawnScript('bin/molt.js', ['node', 'test/fixtures/counter.ts', '--nats', ctx.nats.url, '--id', 'watch-a', '--lease', String(LEASE_MS), '--heartbeat', String(HEARTBEAT_MS)], { MOLT_LOG: 'info' });
  await ctx.node.waitFor(/serving counters/);
  ctx.client = await createClient({ service: 'counters', nats: { servers: ctx.nats.url }, timeoutMs: 1000 });
});

test.after(async (ctx) => {
  ctx.node?.process.kill('SIGCONT');
  await ctx.client?.close().catch(() => undefined);
  await ctx.node?.kill('SIGKILL');
  await ctx.nats?.stop();
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

test('placement - a node whose membership watch stalled takes its shards back after a fence', async ({ nats, node, client }) => {
  const keys = Array.from({ length: 8 }, (_, i) => `ws-${i}`);
  for (const key of keys) await client.call('counter', 1, key, 'increment', { by: 1 });

  // Frozen past its lease, so that it fences itself when resumed; its watches
  // die meanwhile, as they would with the nats-server holding them.
  node.process.kill('SIGSTOP');
  const deleted = await deleteNodeWatches(nats.url);
  await sleep(LEASE_MS + 1000);
  const resumedAt = Date.now();
  node.process.kill('SIGCONT');
  await node.waitFor(/lease renewed; serving again/, 10_000);

  // Every key answers again (the node owns every shard once it serves again).
  const { unanswered, lastError } = await untilEveryKeyAnswers(client, keys, resumedAt + RECOVERY_BOUND_MS);
  const recoveredMs = Date.now() - resumedAt;
  console.log(`placement: deleted ${deleted} watch consumers while the node was frozen; after SIGCONT it fenced, renewed and served every key again in ${recoveredMs} ms`);
  assert.ok(deleted > 0, 'found the node watches to delete');
  assert.equal(unanswered, [], `every key answers within ${RECOVERY_BOUND_MS} ms of SIGCONT (last error: ${lastError}); node log:\n${node.output().slice(-2500)}`);
  assert.match(node.output(), /membership watch stalled: restarting it/);
});

test.run();
