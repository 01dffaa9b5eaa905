/**
 * Issue 13, what an operator was misled by during a rollout, one defect per
 * test, each on its own nats-server with in-process nodes and upgrade
 * managers (fast timings):
 *
 * - `publish --fix --paused` holds every node until `molt resume`;
 * - a rollout's `counts` stay current after `done`, and a `done` rollout
 *   lists the live nodes behind it and why;
 * - a version nobody published answers `VersionUnsupported` not retryable;
 * - a transform-failure halt says who paused the rollout, and what a node
 *   reported of the failing code is cleared once the fix is loaded.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import type { NatsConnection } from '@nats-io/transport-node';
import { createClient, createNode, isMoltError, silentLogger, type MoltClient, type MoltNode } from '../../runtime/index.ts';
import { assignShards, encodeKey, shardOf } from '../../runtime/internal.ts';
import { startUpgradeManager, type UpgradeManager } from '../../runtime/manager/index.ts';
import { keyFingerprint } from '../../runtime/server/keys.ts';
import type { Udb } from '../../runtime/udb/index.ts';
import { controlRollout } from '../../runtime/operate/rollouts.ts';
import { renderStatus, statusView } from '../../runtime/operate/status.ts';
import service from '../fixtures/counter.ts';
import { counterV1 } from '../fixtures/counter.ts';
import { startEmbeddedNats, type EmbeddedNats } from '../support/nats.ts';
import { eventually, openCounters, publish, testPublisher, waitForRollout, waitForVersions } from '../support/upgrades.ts';

interface Ctx {
  nats: EmbeddedNats;
  nc: NatsConnection;
  udb: Udb;
  client: MoltClient;
  nodes: Array<{ node: MoltNode; manager: UpgradeManager }>;
  publisher: ReturnType<typeof testPublisher>;
}
const test = suite<Ctx>('operator: rollouts as the nodes run them');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

test.before.each(async (ctx) => {
  ctx.nats = await startEmbeddedNats();
  ({ nc: ctx.nc, udb: ctx.udb } = await openCounters(ctx.nats.url));
  ctx.client = await createClient({ service: 'counters', nats: ctx.nc, timeoutMs: 5000 });
  ctx.nodes = [];
  ctx.publisher = testPublisher();
});

test.after.each(async (ctx) => {
  await ctx.client.close();
  for (const { node, manager } of ctx.nodes) {
    await manager.stop();
    await node.stop();
  }
  await ctx.nc.drain().catch(() => undefined);
  await ctx.nats.stop();
});

/** A node with its upgrade manager, in this process; `trust: false` trusts no publisher key. */
async function startNode(ctx: Ctx, id: string, trust = true): Promise<{ node: MoltNode; manager: UpgradeManager }> {
  const trustedKeys = trust ? [ctx.publisher.publicKey] : [];
  const node = await createNode({ service, nats: { servers: ctx.nats.url }, nodeId: id, logger: silentLogger, heartbeatMs: 300, leaseMs: 1500, trusts: trustedKeys.map(keyFingerprint) });
  const manager = await startUpgradeManager(node, { trustedKeys, reconcileMs: 500, tickMs: 200, leaseMs: 1500, logger: silentLogger });
  const started = { node, manager };
  ctx.nodes.push(started);
  return started;
}

/** An actor served by `owner` among `ids` whose count makes the buggy TF (counter-v2-buggy.ts) throw. */
async function unluckyActorOn(ctx: Ctx, owner: string, ids: string[]): Promise<string> {
  const owners = assignShards(ids, 64);
  let i = 0;
  while (owners[shardOf(encodeKey(`unlucky-${i}`), 64)] !== owner) i++;
  await ctx.client.actor(counterV1, `unlucky-${i}`).increment({ by: 13 });
  return `unlucky-${i}`;
}

const versionsOf = async (udb: Udb) => Object.fromEntries((await udb.nodes()).map((n) => [n.id, n.versions.counter]));

test('fix --paused - holds every node that has not upgraded until resume (it used to print "(paused)" and go on)', async (ctx) => {
  await startNode(ctx, 'node-a');
  await startNode(ctx, 'node-b');
  // `stepwise` (shipped in the bundle): one node at a time, 1.5 s apart.
  const rollout = (await publish(ctx.nats.url, ctx.publisher.signer, 'test/fixtures/counter-v2-buggy.ts', { schedule: { name: 'stepwise', params: { gapMs: 1500 } } })).upgrades[0]!;
  await waitForVersions(ctx.udb, ['node-a'], 'counter', 2);
  assert.is((await ctx.udb.rollout(rollout.rolloutId))!.record.state, 'running');

  const fix = await publish(ctx.nats.url, ctx.publisher.signer, 'test/fixtures/counter-v2.ts', { fix: true, versions: { counter: 2 }, paused: true });
  assert.is(fix.upgrades[0]!.rolloutId, rollout.rolloutId);
  const paused = (await ctx.udb.rollout(rollout.rolloutId))!.record;
  assert.is(paused.state, 'paused', 'the fix paused its rollout');
  assert.is(paused.by, 'the publisher');
  assert.is((await ctx.udb.control(rollout.rolloutId))?.command, 'pause');
  // Twice the gap after node-a: node-b would have upgraded by now.
  await sleep(3500);
  assert.equal(await versionsOf(ctx.udb), { 'node-a': 2, 'node-b': 1 }, 'node-b holds');
  assert.ok(ctx.nodes[1]!.node.status().types.counter!.known.includes(2), 'node-b loaded the fixed code (its future SO serves v2)');

  await controlRollout(ctx.udb, rollout.rolloutId, 'resume');
  await waitForVersions(ctx.udb, ['node-a', 'node-b'], 'counter', 2);
  await waitForRollout(ctx.udb, rollout.rolloutId, (r) => r.state === 'done', 'done');
});

test('fix --paused - of a rollout that is already done is refused, saying why', async (ctx) => {
  await startNode(ctx, 'node-a');
  const rollout = (await publish(ctx.nats.url, ctx.publisher.signer, 'test/fixtures/counter-v2-buggy.ts')).upgrades[0]!;
  await waitForRollout(ctx.udb, rollout.rolloutId, (r) => r.state === 'done', 'done');
  try {
    await publish(ctx.nats.url, ctx.publisher.signer, 'test/fixtures/counter-v2.ts', { fix: true, versions: { counter: 2 }, paused: true });
    assert.unreachable('refused');
  } catch (e) {
    assert.ok(isMoltError(e, 'OperationRefused'), String(e));
    assert.match((e as Error).message, /--paused: rollout counter-v2-\w+ \(counter@2\) is already done .* Publish the fix without --paused/);
  }
});

test('counts after done - recounted when a node joins later; a done rollout lists the live nodes behind it and why', async (ctx) => {
  await startNode(ctx, 'node-a');
  await startNode(ctx, 'node-b');
  const rollout = (await publish(ctx.nats.url, ctx.publisher.signer, 'test/fixtures/counter-v2.ts')).upgrades[0]!;
  const done = await waitForRollout(ctx.udb, rollout.rolloutId, (r) => r.state === 'done', 'done');
  assert.equal(done.counts, { 2: 2 });

  // A node that trusts no publisher joins: it stays at v1, refusing the upgrade.
  await startNode(ctx, 'node-c', false);
  const recounted = await waitForRollout(ctx.udb, rollout.rolloutId, (r) => JSON.stringify(r.counts) === JSON.stringify({ 1: 1, 2: 2 }), 'counts with node-c at v1', 5000);
  assert.is(recounted.state, 'done', 'done stays done: it is final');
  let view = statusView('counters', await ctx.udb.snapshot(), Date.now(), 1500);
  await eventually(async () => {
    view = statusView('counters', await ctx.udb.snapshot(), Date.now(), 1500);
    return view.rollouts[0]!.behind.length === 1 && /untrusted-key/.test(view.rollouts[0]!.behind[0]!.why);
  }, 'status lists node-c behind, refusing the untrusted key', 5000);
  const r = view.rollouts[0]!;
  assert.equal([r.upgraded, r.total, r.counts], [2, 3, { 1: 1, 2: 2 }]);
  assert.equal({ nodeId: r.behind[0]!.nodeId, version: r.behind[0]!.version }, { nodeId: 'node-c', version: 1 });
  assert.match(r.behind[0]!.why, /^UpgradeRejected \(untrusted-key\): refused upgrade counter@2: .*which this node does not trust|trusts no publisher keys/);
  const text = renderStatus(view, { unicode: false }).join('\n');
  assert.match(text, new RegExp(`${rollout.rolloutId}\\s+counter 1→2\\s+immediate\\s+done, 1 behind\\s+\\[#{13}-{7}\\] 2/3`));
  assert.match(text, new RegExp(`\\n  ${rollout.rolloutId} node-c behind at counter@1: UpgradeRejected \\(untrusted-key\\)`));

  // The node restarted trusting the publisher catches up; the counts follow.
  const c = ctx.nodes.pop()!;
  await c.manager.stop();
  await c.node.stop();
  await startNode(ctx, 'node-c');
  await waitForRollout(ctx.udb, rollout.rolloutId, (x) => JSON.stringify(x.counts) === JSON.stringify({ 2: 3 }), 'counts with node-c caught up', 10_000);
  view = statusView('counters', await ctx.udb.snapshot(), Date.now(), 1500);
  assert.equal(view.rollouts[0]!.behind, []);
});

test('unpublished version - VersionUnsupported is not retryable once the manager knows nobody published it', async (ctx) => {
  await startNode(ctx, 'node-a');
  const call = async (version: number) => {
    try {
      await ctx.client.call('counter', version, 'k', 'get', {});
      return undefined;
    } catch (e) {
      return e;
    }
  };
  // Nothing published: counter@2 will not come.
  let e = await call(2);
  assert.ok(isMoltError(e, 'VersionUnsupported'), String(e));
  assert.is((e as { retryable: boolean }).retryable, false, 'nothing to wait for');
  assert.match((e as Error).message, /no upgrade to counter@2 is published/);

  // Published with a key this node does not trust (forced): the node cannot load it yet, but it exists.
  const stranger = testPublisher();
  await publish(ctx.nats.url, stranger.signer, 'test/fixtures/counter-v2.ts', { force: true });
  await eventually(async () => (await ctx.udb.reports()).some((r) => r.reason === 'untrusted-key'), 'the node refused it', 5000);
  e = await call(2);
  assert.ok(isMoltError(e, 'VersionUnsupported'), String(e));
  assert.is((e as { retryable: boolean }).retryable, true, 'published: a node may still load it (re-signed, or another node)');
  e = await call(3);
  assert.is((e as { retryable: boolean }).retryable, false, 'counter@3 was never published');
});

test('transform-failure halt - says who paused and why; the fix clears what the node reported of the old code', async (ctx) => {
  const ids = ['node-a', 'node-b'];
  await startNode(ctx, 'node-a');
  await startNode(ctx, 'node-b');
  const unlucky = await unluckyActorOn(ctx, 'node-a', ids);
  const rollout = (await publish(ctx.nats.url, ctx.publisher.signer, 'test/fixtures/counter-v2-buggy.ts', { schedule: { name: 'stepwise', params: { gapMs: 1000 } } })).upgrades[0]!;
  await waitForVersions(ctx.udb, ['node-a'], 'counter', 2);
  await eventually(async () => {
    try {
      await ctx.client.call('counter', 2, unlucky, 'get', {});
      return false;
    } catch (e) {
      return isMoltError(e, 'TransformFailed');
    }
  }, 'the unlucky actor fails its transform', 5000);
  const halted = await waitForRollout(ctx.udb, rollout.rolloutId, (r) => r.state === 'paused', 'halted by node-a', 5000);
  assert.is(halted.by, 'node node-a');
  await eventually(async () => /^paused by node node-a: 1 transform failure\(s\) of counter 1→2 on node node-a/.test((await ctx.udb.progress(rollout.rolloutId)).find((p) => p.nodeId === 'node-b')?.note ?? ''), "node-b's progress says who paused it and why", 5000);
  const view = statusView('counters', await ctx.udb.snapshot(), Date.now(), 1500);
  const text = renderStatus(view, { unicode: false }).join('\n');
  // The STATE column stays short; the reason has a line of its own.
  assert.match(text, new RegExp(`${rollout.rolloutId}\\s+counter 1→2\\s+stepwise \\{"gapMs":1000\\}\\s+paused by node node-a\\s+\\[`));
  assert.match(text, new RegExp(`\\n  ${rollout.rolloutId} paused by node node-a: 1 transform failure\\(s\\) of counter 1→2 on node node-a: fix the TF`));
  assert.match((await ctx.udb.node('node-a'))?.lastError ?? '', /transform failure/);
  assert.ok((await ctx.udb.reports()).some((r) => r.nodeId === 'node-a' && r.code === 'TransformFailed'));

  await publish(ctx.nats.url, ctx.publisher.signer, 'test/fixtures/counter-v2.ts', { fix: true, versions: { counter: 2 } });
  await eventually(async () => (await ctx.udb.reports()).length === 0 && (await ctx.udb.node('node-a'))?.lastError === undefined, 'the report and LAST ERROR are cleared once the fix is loaded', 5000).catch(async (e) => {
    throw new Error(`${(e as Error).message}: ${JSON.stringify({ reports: await ctx.udb.reports(), lastError: (await ctx.udb.node('node-a'))?.lastError })}`);
  });
  assert.is(await ctx.client.call('counter', 2, unlucky, 'get', {}), 13, 'carried by the fixed TF');
  await controlRollout(ctx.udb, rollout.rolloutId, 'resume');
  await waitForRollout(ctx.udb, rollout.rolloutId, (r) => r.state === 'done', 'done', 10_000);
  assert.is((await ctx.udb.rollout(rollout.rolloutId))!.record.by, undefined, 'resume clears who paused it');
});

test.run();
