/**
 * Issue 13, "done when": a new user's rollout from start to finish, on four
 * `molt node` processes, with `molt status --watch --json` running the whole
 * time — and at every step, what status says is what the nodes do.
 *
 *  1. publish counter@2 paused (`rolling`, one node at a time, 2 s between
 *     batches): every node loads it and holds; status: paused by the publisher;
 *  2. resume: node-a upgrades; pause in the middle (the next batch is waiting
 *     its 2 s): status: paused by the operator, 1/4, the others hold;
 *  3. kill node-b (SIGKILL): status shows it dead; resume: node-c goes next;
 *  4. node-c's transform fails for one actor: node-c halts the rollout;
 *     status: paused by node node-c, why on a line of its own, the problem
 *     in PROBLEMS and node-c's LAST ERROR; node-d holds;
 *  5. publish the fixed TF: problem and LAST ERROR gone, the actor carried by
 *     the fixed TF; resume: node-d upgrades, the rollout is done (3/3 live);
 *  6. restart node-b: it comes back at v1, catches up; counts follow (4 at v2);
 *  7. roll back: every node back at v1, rolled back, counts follow.
 *
 * The watcher's every line is a complete view (4 nodes, 1 rollout) or an
 * error record, and its rollout states go through the story in order.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import type { NatsConnection } from '@nats-io/transport-node';
import { createClient, isMoltError, type MoltClient } from '../../runtime/index.ts';
import { assignShards, encodeKey, shardOf } from '../../runtime/internal.ts';
import type { Udb } from '../../runtime/udb/index.ts';
import { controlRollout, rollbackRollout } from '../../runtime/operate/rollouts.ts';
import { renderStatus, statusView, type StatusView } from '../../runtime/operate/status.ts';
import { counterV1 } from '../fixtures/counter.ts';
import { spawnScript, startEmbeddedNats, type ChildNode, type EmbeddedNats } from '../support/nats.ts';
import { eventually, killAll, openCounters, publish, startUpgradableNode, testPublisher, TIMINGS, waitForRollout, waitForVersions } from '../support/upgrades.ts';

interface Ctx {
  nats: EmbeddedNats;
  children: ChildNode[];
  nc: NatsConnection;
  udb: Udb;
  client: MoltClient;
}
const test = suite<Ctx>('operator story');
const ids = ['node-a', 'node-b', 'node-c', 'node-d'];
const PAUSE_MS = 2000;

test.before(async (ctx) => {
  ctx.nats = await startEmbeddedNats();
  ({ nc: ctx.nc, udb: ctx.udb } = await openCounters(ctx.nats.url));
  ctx.client = await createClient({ service: 'counters', nats: ctx.nc, timeoutMs: 5000, retryUnavailableMs: 5000 });
  ctx.children = [];
});

test.after(async (ctx) => {
  await ctx.client?.close();
  await killAll(ctx.children, 'SIGKILL');
  await ctx.nc?.drain().catch(() => undefined);
  await ctx.nats?.stop();
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

test('operator story - publish paused, resume, pause, kill, resume, failing TF, fix, resume, restart, rollback: status says what the nodes do', async (ctx) => {
  const publisher = testPublisher();
  const trust = [publisher.publicKey];
  // Settled, not raced: a node that did start is stopped by after() even when another failed to.
  const started = await Promise.allSettled(ids.map((id) => startUpgradableNode(ctx.nats.url, id, { trust })));
  const nodes = started.flatMap((s) => (s.status === 'fulfilled' ? [s.value] : []));
  ctx.children.push(...nodes);
  for (const s of started) if (s.status === 'rejected') throw s.reason;
  // An actor node-c serves (with node-b alive or not) whose count the buggy TF refuses; resident on node-c.
  const owners = assignShards(ids, 64);
  const without = assignShards(ids.filter((id) => id !== 'node-b'), 64);
  let i = 0;
  while (owners[shardOf(encodeKey(`unlucky-${i}`), 64)] !== 'node-c' || without[shardOf(encodeKey(`unlucky-${i}`), 64)] !== 'node-c') i++;
  const unlucky = `unlucky-${i}`;
  await ctx.client.actor(counterV1, unlucky).increment({ by: 13 });

  const read = async (): Promise<StatusView> => statusView('counters', await ctx.udb.snapshot(), Date.now(), TIMINGS.leaseMs);
  const until = async (check: (v: StatusView) => boolean, what: string, timeoutMs = 15_000): Promise<StatusView> => {
    let last: StatusView | undefined;
    await eventually(async () => check((last = await read())), what, timeoutMs).catch((e) => {
      throw new Error(`${(e as Error).message}\n${last ? renderStatus(last, { unicode: false }).join('\n') : ''}`);
    });
    return last!;
  };
  const versions = (v: StatusView) => Object.fromEntries(v.nodes.map((n) => [n.id, n.live ? n.versions.counter : 'dead']));
  /** The rollout's state in the watcher's latest view (`paused by …`, `running`). */
  const watched = (): string | undefined => {
    const views = watcher.output().split('\n').filter((l) => l.startsWith('{"format"'));
    const last = views.length > 0 ? (JSON.parse(views[views.length - 1]!) as { rollouts?: Array<{ state: string; by?: string }> }).rollouts?.[0] : undefined;
    return last && `${last.state}${last.by ? ` by ${last.by}` : ''}`;
  };

  // 1. Published paused: every node loads counter@2 (its future SO serves v2 callers) and holds.
  const rollout = (await publish(ctx.nats.url, publisher.signer, 'test/fixtures/counter-v2-buggy.ts', { schedule: { name: 'rolling', params: { batch: 1, pauseMs: PAUSE_MS } }, paused: true })).upgrades[0]!;
  const id = rollout.rolloutId;
  const watcher = spawnScript('bin/molt.js', ['status', '--nats', ctx.nats.url, '--watch', '--json', '--lease', String(TIMINGS.leaseMs)], { MOLT_LOG: 'warn' });
  ctx.children.push(watcher);
  let v = await until((x) => x.rollouts[0]?.nodes.filter((p) => p.step === 'scheduling').length === 4, 'every node loaded the upgrade and holds');
  let r = v.rollouts[0]!;
  assert.equal([r.state, r.by, r.upgraded, r.total], ['paused', 'the publisher', 0, 4]);
  for (const p of r.nodes) assert.match(p.note ?? '', /^paused by the publisher: published paused/, p.nodeId);
  await watcher.waitFor(/"state":"paused"/, 30_000);

  // 2. Resume: node-a upgrades; paused while node-b waits out the pause between batches.
  await controlRollout(ctx.udb, id, 'resume');
  // The watcher reads on every change, but a read under load can take longer than a short
  // state lasts: the story pauses again only once the watcher has shown this one.
  await eventually(async () => watched() === 'running', 'the watcher shows the resumed rollout', 15_000);
  await waitForVersions(ctx.udb, ['node-a'], 'counter', 2);
  v = await until((x) => /batch 1: pausing between batches/.test(x.rollouts[0]!.nodes.find((p) => p.nodeId === 'node-b')?.note ?? ''), 'node-b waits the pause between batches');
  const { rollout: paused } = await controlRollout(ctx.udb, id, 'pause', 'checking node-a');
  v = await until((x) => x.rollouts[0]!.state === 'paused' && x.rollouts[0]!.nodes.filter((p) => /^paused by /.test(p.note ?? '')).length === 3, 'the others say who paused them');
  r = v.rollouts[0]!;
  assert.equal([r.by, r.reason, r.upgraded, r.total, r.counts], [paused.by, 'checking node-a', 1, 4, { 1: 3, 2: 1 }]);
  assert.match(r.nodes.find((p) => p.nodeId === 'node-b')!.note!, new RegExp(`^paused by ${paused.by}: checking node-a$`));
  await sleep(PAUSE_MS + 500);
  assert.equal(versions(await read()), { 'node-a': 2, 'node-b': 1, 'node-c': 1, 'node-d': 1 }, 'paused: nobody else upgraded');

  // 3. Kill node-b; resume: node-c goes next (node-b is gone), after the pause.
  await nodes[1]!.kill('SIGKILL');
  v = await until((x) => x.nodes.find((n) => n.id === 'node-b')?.live === false, 'node-b shown dead');
  assert.equal([v.rollouts[0]!.upgraded, v.rollouts[0]!.total], [1, 3]);
  await ctx.client.actor(counterV1, unlucky).get(); // keep it resident on node-c
  await controlRollout(ctx.udb, id, 'resume');

  // 4. node-c's TF fails for the unlucky actor: node-c halts the rollout; node-d holds.
  v = await until((x) => x.rollouts[0]!.state === 'paused' && x.rollouts[0]!.by === 'node node-c', 'node-c halted the rollout', 20_000);
  r = v.rollouts[0]!;
  assert.match(r.reason ?? '', /^1 transform failure\(s\) of counter 1→2 on node node-c: fix the TF/);
  v = await until((x) => x.problems.some((p) => p.nodeId === 'node-c' && p.code === 'TransformFailed') && /transform failure/.test(x.nodes.find((n) => n.id === 'node-c')?.lastError ?? ''), 'the problem and LAST ERROR of node-c');
  const text = renderStatus(v, { unicode: false }).join('\n');
  assert.match(text, new RegExp(`${id}\\s+counter 1→2\\s+rolling \\{"batch":1,"pauseMs":${PAUSE_MS}\\}\\s+paused by node node-c\\s+\\[`), 'the STATE column says who, briefly');
  assert.match(text, new RegExp(`\\n  ${id} paused by node node-c: 1 transform failure\\(s\\)`), 'and why on a line of its own');
  await until((x) => /^paused by node node-c: 1 transform failure/.test(x.rollouts[0]!.nodes.find((p) => p.nodeId === 'node-d')?.note ?? ''), "node-d's progress says who paused it");
  assert.equal(versions(await read()), { 'node-a': 2, 'node-b': 'dead', 'node-c': 2, 'node-d': 1 });

  // 5. The fix: the problem is over; resume: node-d upgrades; done with the live nodes.
  await publish(ctx.nats.url, publisher.signer, 'test/fixtures/counter-v2.ts', { fix: true, versions: { counter: 2 } });
  await until((x) => x.problems.length === 0 && x.nodes.every((n) => !n.lastError), 'no problem and no LAST ERROR once the fix is loaded');
  await eventually(async () => {
    try {
      return (await ctx.client.call('counter', 2, unlucky, 'get', {})) === 13;
    } catch (e) {
      if (!isMoltError(e, 'TransformFailed')) throw e;
      return false;
    }
  }, 'the unlucky actor is carried by the fixed TF', 10_000);
  await controlRollout(ctx.udb, id, 'resume');
  await waitForRollout(ctx.udb, id, (x) => x.state === 'done', 'done', 20_000);
  v = await until((x) => JSON.stringify(x.rollouts[0]!.recordedCounts) === JSON.stringify({ 2: 3 }), 'the recorded counts: 3 live nodes at v2');
  assert.equal([v.rollouts[0]!.upgraded, v.rollouts[0]!.total, v.rollouts[0]!.behind], [3, 3, []]);

  // 6. node-b comes back at v1 (its module is v1), loads the upgrade and catches up; the counts follow.
  ctx.children.push(await startUpgradableNode(ctx.nats.url, 'node-b', { trust }));
  await waitForVersions(ctx.udb, ids, 'counter', 2, 20_000);
  v = await until((x) => JSON.stringify(x.rollouts[0]!.recordedCounts) === JSON.stringify({ 2: 4 }), 'counts after done include node-b');
  assert.equal([v.rollouts[0]!.state, v.rollouts[0]!.upgraded, v.rollouts[0]!.total, v.rollouts[0]!.behind], ['done', 4, 4, []]);

  // 7. Roll back: every node back at v1.
  const { rollout: back } = await rollbackRollout(ctx.udb, ctx.nc, id, 'story over');
  await waitForRollout(ctx.udb, id, (x) => x.state === 'rolled-back', 'rolled back', 20_000);
  v = await until((x) => JSON.stringify(x.rollouts[0]!.recordedCounts) === JSON.stringify({ 1: 4 }), 'counts after the rollback');
  assert.equal([v.rollouts[0]!.by, v.rollouts[0]!.reason, v.rollouts[0]!.upgraded, v.rollouts[0]!.total], [back.by, 'story over', 0, 4]);
  assert.equal(versions(v), { 'node-a': 1, 'node-b': 1, 'node-c': 1, 'node-d': 1 });
  await sleep(1500);
  await watcher.kill('SIGKILL');

  // The watcher: complete views or error records only, and the story's states in order.
  const docs = watcher
    .output()
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as { error?: unknown; nodes?: unknown[]; rollouts?: Array<{ state: string; by?: string }> });
  const views = docs.filter((d) => !d.error);
  assert.equal(views.filter((d) => d.nodes!.length !== 4 || d.rollouts!.length !== 1).length, 0, 'every view holds the four nodes and the rollout');
  const states: string[] = [];
  for (const d of views) {
    const s = `${d.rollouts![0]!.state}${d.rollouts![0]!.by ? ` by ${d.rollouts![0]!.by}` : ''}`;
    if (states[states.length - 1] !== s) states.push(s);
  }
  console.log(`operator-story: ${views.length} views, ${docs.length - views.length} error records; states: ${states.join(' → ')}`);
  const expected = ['paused by the publisher', 'running', `paused by ${paused.by}`, 'running', 'paused by node node-c', 'running', 'done', `rolled-back by ${back.by}`];
  let at = 0;
  for (const s of states) if (s === expected[at]) at++;
  assert.is(at, expected.length, `the watcher saw ${expected.join(' → ')} in order; it saw ${states.join(' → ')}`);
});

test.run();
