/**
 * One process per node id, even across a pause. Node process A is frozen
 * (SIGSTOP) long enough for a replacement A' with the same id to start and
 * serve; then A resumes. A must notice that it was replaced before it answers
 * anything from the state it had: it serves nothing more and exits, while A'
 * keeps serving. Checked against the callers' history: no answer older than
 * one acknowledged before its call was sent, no acknowledged increment lost.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { createClient, type MoltClient } from '../../runtime/index.ts';
import { spawnScript, startEmbeddedNats, type ChildNode, type EmbeddedNats } from '../support/nats.ts';
import { History, runOpenLoad } from '../support/load.ts';
import { tearDown } from '../support/nodes.ts';

const LEASE_MS = 1500;
const HEARTBEAT_MS = 300;
const ID = 'twin';

const test = suite<{ nats: EmbeddedNats; a?: ChildNode; successor?: ChildNode; client: MoltClient }>('node id');

function startNode(url: string): ChildNode {
  return spawnScript('bin/molt.js', ['node', 'test/fixtures/counter.ts', '--nats', url, '--id', ID, '--lease', String(LEASE_MS), '--heartbeat', String(HEARTBEAT_MS)], { MOLT_LOG: 'warn' });
}

test.before(async (ctx) => {
  ctx.nats = await startEmbeddedNats();
  ctx.client = await createClient({ service: 'counters', nats: { servers: ctx.nats.url }, timeoutMs: 4000, retryUnavailableMs: 4000 });
});

test.after((ctx) => tearDown({ nodes: [ctx.a, ctx.successor], client: ctx.client, nats: ctx.nats }));

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

test('node id - a paused process replaced under its id stops before answering from stale state', async (ctx) => {
  ctx.a = startNode(ctx.nats.url);
  await ctx.a.waitFor(/serving counters/, 30_000);
  const keys = Array.from({ length: 12 }, (_, i) => `twin-${i}`);
  const history = new History({ notApplied: ['Unavailable', 'Overloaded'] });
  const load = runOpenLoad({ client: ctx.client, keys, ratePerSec: 150, readShare: 0.5 }, history);
  await sleep(1000);

  ctx.a.process.kill('SIGSTOP');
  const pausedAt = Date.now();
  ctx.successor = startNode(ctx.nats.url);
  await ctx.successor.waitFor(/serving counters/, 30_000);
  const successorAfter = Date.now() - pausedAt;
  // The successor serves (and changes) A's actors for a while.
  await sleep(2000);

  ctx.a.process.kill('SIGCONT');
  const exit = await Promise.race([
    new Promise<number | null>((resolve) => ctx.a!.process.once('exit', (code) => resolve(code))),
    sleep(10_000).then(() => 'still running' as const),
  ]);
  await sleep(1500);
  await load.stop();

  const finals = new Map<string, number>();
  for (const key of keys) finals.set(key, (await ctx.client.call('counter', 1, key, 'get', {})) as number);
  const order = history.checkOrder();
  const { lost, phantom } = history.checkFinal(finals);
  const summary = `successor served ${successorAfter} ms after the pause; ${history.calls} calls, ${history.okCount} ok, failures ${JSON.stringify(history.failuresByCode())}; stale answers ${order.length}`;
  console.log(`node id: ${summary}`);

  assert.equal(order, [], `no answer from a state older than an acknowledged one (${summary})`);
  assert.equal(lost, [], 'no acknowledged increment lost');
  assert.equal(phantom, [], 'nothing applied that an error reply said was not');
  assert.is(exit, 1, 'the resumed process exits with status 1');
  assert.match(ctx.a.output(), /took over/, 'and says that its id was taken over');
  assert.is(ctx.successor.process.exitCode, null, 'the successor keeps running');
  assert.ok((await ctx.client.call('counter', 1, keys[0]!, 'get', {})) === finals.get(keys[0]!), 'the successor still serves');
});

test.run();
