/**
 * A node whose membership watch keeps restarting must still judge a dead
 * node dead, and take its shards.
 *
 * A restarted watch first replays the newest record of every node. Placement
 * took that replay for a sign of life: each restart kept a dead node live for
 * another lease. When the watch restarts more often than a lease — its
 * consumer's server cut off from the cluster, each new consumer stalling in
 * turn while JetStream elects a new leader — the dead node's shards were
 * never taken: on a 3-server cluster with the server leading the UDB stream
 * cut off, the other side served nothing for the partition's whole 20 s,
 * about one run in three.
 *
 * Here, on one nats-server: node B is frozen (its record stops), and node A's
 * watch consumers are deleted every 1.2 s, so A restarts its watch about as
 * often (it notices after half a lease, 1 s). Every key of B's shards must be
 * answered by A within seconds.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { createClient, type MoltClient } from '../../runtime/index.ts';
import { assignShards, DEFAULT_SHARDS, encodeKey, shardOf } from '../../runtime/internal.ts';
import { spawnScript, startEmbeddedNats, type ChildNode, type EmbeddedNats } from '../support/nats.ts';
import { deleteNodeWatches, untilEveryKeyAnswers } from '../support/watches.ts';
import { tearDown } from '../support/nodes.ts';

const LEASE_MS = 2000;
const HEARTBEAT_MS = 300;
const RESTART_EVERY_MS = 1200;
/** A lease, the proof of death and a few watch restarts; without the fix, never. */
const TAKEOVER_BOUND_MS = 12_000;
const A = 'restart-a';
const B = 'restart-b';

interface Ctx {
  nats: EmbeddedNats;
  a: ChildNode;
  b: ChildNode;
  client: MoltClient;
}

const test = suite<Ctx>('placement: watch restarts');

function startNode(url: string, id: string): ChildNode {
  return spawnScript('bin/molt.js', ['node', 'test/fixtures/counter.ts', '--nats', url, '--id', id, '--lease', String(LEASE_MS), '--heartbeat', String(HEARTBEAT_MS)], { MOLT_LOG: 'info' });
}

test.before(async (ctx) => {
  ctx.nats = await startEmbeddedNats();
  ctx.a = startNode(ctx.nats.url, A);
  ctx.b = startNode(ctx.nats.url, B);
  await Promise.all([ctx.a.waitFor(/serving counters/), ctx.b.waitFor(/serving counters/)]);
  ctx.client = await createClient({ service: 'counters', nats: { servers: ctx.nats.url }, timeoutMs: 1000 });
});

test.after((ctx) => tearDown({ nodes: [ctx.a, ctx.b], client: ctx.client, nats: ctx.nats }));

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));


test('placement - a dead node\'s shards are taken while the watch keeps restarting', async ({ nats, a, b, client }) => {
  const ownedByB = new Set(assignShards([A, B], DEFAULT_SHARDS).flatMap((owner, shard) => (owner === B ? [shard] : [])));
  const keys: string[] = [];
  for (let i = 0; keys.length < 8; i++) if (ownedByB.has(shardOf(encodeKey(`wr-${i}`), DEFAULT_SHARDS))) keys.push(`wr-${i}`);
  // Both serve: B answers its keys.
  for (const key of keys) await client.call('counter', 1, key, 'increment', { by: 1 });

  b.process.kill('SIGSTOP');
  const frozenAt = Date.now();
  let restarting = true;
  let deletions = 0;
  const restarts = (async () => {
    while (restarting) {
      deletions += await deleteNodeWatches(nats.url);
      await sleep(RESTART_EVERY_MS);
    }
  })();

  let answered: { unanswered: string[]; lastError: string };
  try {
    answered = await untilEveryKeyAnswers(client, keys, frozenAt + TAKEOVER_BOUND_MS);
  } finally {
    restarting = false;
    await restarts;
  }
  const tookMs = Date.now() - frozenAt;
  const restartsOfA = (a.output().match(/membership watch stalled: restarting it/g) ?? []).length;
  console.log(`placement: B frozen, A's watch restarted ${restartsOfA} times (${deletions} consumers deleted); A answered every key of B's shards ${tookMs} ms after the freeze`);
  assert.ok(restartsOfA >= 1, `A's watch restarted while B was frozen (${restartsOfA} times)`);
  assert.equal(answered.unanswered, [], `A answers every key of B's shards within ${TAKEOVER_BOUND_MS} ms (last error: ${answered.lastError}); A's log:\n${a.output().slice(-2500)}`);
});

test.run();
