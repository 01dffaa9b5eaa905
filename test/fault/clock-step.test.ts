/**
 * Leases are measured on the monotonic clock. Node A runs with a wall clock
 * that steps back 30 s the moment it resumes from a freeze; A is frozen past
 * its lease, node B takes its shards and changes its actors, then A resumes.
 * Measured with the wall clock, A's lease would look valid for another 30 s
 * and A would answer from the state it had before the freeze; measured on the
 * monotonic clock, A fences itself and answers nothing from it.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { createClient, type MoltClient } from '../../runtime/index.ts';
import { assignShards, DEFAULT_SHARDS, encodeKey, shardOf } from '../../runtime/internal.ts';
import { spawnScript, startEmbeddedNats, type ChildNode, type EmbeddedNats } from '../support/nats.ts';
import { History, runOpenLoad } from '../support/load.ts';
import { tearDown } from '../support/nodes.ts';

const LEASE_MS = 1500;
const HEARTBEAT_MS = 300;

const test = suite<{ nats: EmbeddedNats; a: ChildNode; b: ChildNode; client: MoltClient }>('clock step');

test.before(async (ctx) => {
  ctx.nats = await startEmbeddedNats();
  ctx.a = spawnScript('test/fixtures/stepping-clock-node.ts', [ctx.nats.url, 'step-a', String(LEASE_MS), String(HEARTBEAT_MS)], { MOLT_LOG: 'warn' });
  ctx.b = spawnScript('bin/molt.js', ['node', 'test/fixtures/counter.ts', '--nats', ctx.nats.url, '--id', 'step-b', '--lease', String(LEASE_MS), '--heartbeat', String(HEARTBEAT_MS)], { MOLT_LOG: 'warn' });
  await Promise.all([ctx.a.waitFor(/serving counters/, 30_000), ctx.b.waitFor(/serving counters/, 30_000)]);
  ctx.client = await createClient({ service: 'counters', nats: { servers: ctx.nats.url }, timeoutMs: 8000, retryUnavailableMs: 4000 });
});

test.after((ctx) => tearDown({ nodes: [ctx.a, ctx.b], client: ctx.client, nats: ctx.nats }));

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

test('clock step - a node frozen past its lease whose wall clock then steps back still fences itself', async ({ a, client }) => {
  const owners = assignShards(['step-a', 'step-b'], DEFAULT_SHARDS);
  const keys = Array.from({ length: 400 }, (_, i) => `cs-${i}`)
    .filter((k) => owners[shardOf(encodeKey(k), DEFAULT_SHARDS)] === 'step-a')
    .slice(0, 12);
  const history = new History({ notApplied: ['Unavailable', 'Overloaded'] });
  // Half reads: a node answering from its pre-freeze state shows as a read older than an acknowledged increment.
  const load = runOpenLoad({ client, keys, ratePerSec: 200, readShare: 0.5 }, history);
  await sleep(1000);

  a.process.kill('SIGSTOP');
  await sleep(4 * LEASE_MS);
  a.process.kill('SIGCONT');
  await a.waitFor(/wall clock stepped back/, 10_000);
  await sleep(3000);
  await load.stop();

  const finals = new Map<string, number>();
  for (const key of keys) finals.set(key, (await client.call('counter', 1, key, 'get', {})) as number);
  const order = history.checkOrder();
  const { lost, phantom } = history.checkFinal(finals);
  const summary = `${history.calls} calls, ${history.okCount} ok, failures ${JSON.stringify(history.failuresByCode())}, stale answers ${order.length}`;
  console.log(`clock step: ${summary}`);
  assert.match(a.output(), /lease expired: no longer serving/, 'A fenced itself when it resumed');
  assert.equal(order, [], `no answer from the state A had before the freeze (${summary})`);
  assert.equal(lost, [], 'no acknowledged increment lost');
  assert.equal(phantom, [], 'nothing applied that an error reply said was not');
});

test.run();
