/**
 * `molt prune` on a real service: three nodes roll v1→v2→v3, one leaves,
 * and an hour later (the prune's clock set ahead; the messages' times are the
 * server's) the gone node's keys and the superseded rollout's per-node
 * progress leave the UDB's stream entirely — values, history and tombstones —
 * while everything else stays and the service carries on. Before `prune`,
 * nothing ever removed them: every full read of the UDB grew with every node
 * id and rollout the service had had.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import type { NatsConnection } from '@nats-io/transport-node';
import { jetstreamManager } from '@nats-io/jetstream';
import { createNode, silentLogger, type MoltNode } from '../../runtime/index.ts';
import { startUpgradeManager, type UpgradeManager } from '../../runtime/manager/index.ts';
import { keyFingerprint } from '../../runtime/server/keys.ts';
import { pruneHistory, renderPrune } from '../../runtime/operate/prune.ts';
import { statusView } from '../../runtime/operate/status.ts';
import { isMoltError } from '../../runtime/errors.ts';
import type { Udb } from '../../runtime/udb/index.ts';
import service from '../fixtures/counter.ts';
import { spawnScript, startEmbeddedNats, type EmbeddedNats } from '../support/nats.ts';
import { eventually, openCounters, publish, testPublisher, TIMINGS, waitForRollout, waitForVersions } from '../support/upgrades.ts';

interface Ctx {
  nats: EmbeddedNats;
  nc: NatsConnection;
  udb: Udb;
  nodes: Map<string, { node: MoltNode; manager: UpgradeManager }>;
}

const test = suite<Ctx>('udb: prune');
const HOUR = 3_600_000;

test.before.each(async (ctx) => {
  ctx.nats = await startEmbeddedNats();
  ({ nc: ctx.nc, udb: ctx.udb } = await openCounters(ctx.nats.url));
  ctx.nodes = new Map();
});

test.after.each(async (ctx) => {
  for (const { node, manager } of ctx.nodes.values()) {
    await manager.stop();
    await node.stop();
  }
  await ctx.nc.drain().catch(() => undefined);
  await ctx.nats.stop();
});

/** Messages per key in the UDB's stream (history and tombstones included). */
async function messagesPerKey(ctx: Ctx): Promise<Map<string, number>> {
  const jsm = await jetstreamManager(ctx.nc);
  const info = await jsm.streams.info('KV_molt_counters_udb', { subjects_filter: '$KV.molt_counters_udb.>' });
  const prefix = '$KV.molt_counters_udb.';
  return new Map(Object.entries(info.state.subjects ?? {}).map(([subject, n]) => [subject.slice(prefix.length), n]));
}

function molt(args: string[]): Promise<{ code: number | null; output: string }> {
  const child = spawnScript('bin/molt.js', args, { MOLT_LOG: 'warn' });
  return new Promise((resolve) => child.process.once('close', (code) => resolve({ code, output: child.output() })));
}

test('a gone node and a superseded rollout\'s detail leave the stream; the rest stays and the service carries on', async (ctx) => {
  const publisher = testPublisher();
  const trustedKeys = [publisher.publicKey];
  const { leaseMs, heartbeatMs, tickMs, reconcileMs } = TIMINGS;
  for (const id of ['a', 'b', 'c']) {
    const node = await createNode({ service, nats: { servers: ctx.nats.url }, nodeId: id, logger: silentLogger, heartbeatMs, leaseMs, trusts: trustedKeys.map(keyFingerprint) });
    ctx.nodes.set(id, { node, manager: await startUpgradeManager(node, { trustedKeys, reconcileMs, tickMs, leaseMs, logger: silentLogger }) });
  }
  const v2 = (await publish(ctx.nats.url, publisher.signer, 'test/fixtures/counter-v2.ts')).upgrades[0]!.rolloutId;
  await waitForRollout(ctx.udb, v2, (r) => r.state === 'done', 'v2 done');
  const v3 = (await publish(ctx.nats.url, publisher.signer, 'test/fixtures/counter-v3.ts')).upgrades[0]!.rolloutId;
  await waitForVersions(ctx.udb, ['a', 'b', 'c'], 'counter', 3);
  await waitForRollout(ctx.udb, v3, (r) => r.state === 'done', 'v3 done');
  const c = ctx.nodes.get('c')!;
  await c.manager.stop();
  await c.node.stop(); // leaves: its record's key is deleted (a tombstone, the history behind it)
  ctx.nodes.delete('c');

  // Everything written so far is "old" to a prune run an hour from now with a window of an hour;
  // a and b heartbeat after this moment, so they are live to it.
  await new Promise((r) => setTimeout(r, 100));
  const anHourOn = Date.now() + HOUR;
  await new Promise((r) => setTimeout(r, 2 * heartbeatMs));

  const before = await messagesPerKey(ctx);
  const gone = ['nodes.c', `progress.${v2}.c`, `progress.${v3}.c`];
  const detail = [`progress.${v2}.a`, `progress.${v2}.b`];
  for (const key of [...gone, ...detail]) assert.ok(before.has(key), `${key} is in the stream before the prune`);
  assert.ok(before.get('nodes.c')! >= 2, 'the gone node\'s key holds its history and its tombstone');

  const dry = await pruneHistory(ctx.udb, { windowMs: HOUR, now: anHourOn, dryRun: true });
  assert.equal(dry.nodes.map((n) => [n.id, n.keys]), [['c', [...gone].sort()]]);
  assert.equal(dry.rollouts.map((r) => [r.rolloutId, r.keys]), [[v2, detail]]);
  assert.is(dry.purged, 0);
  assert.equal(await messagesPerKey(ctx).then((m) => [...m.keys()].sort()), [...before.keys()].sort(), 'a dry run removes nothing');
  assert.match(renderPrune(dry), /would remove 1 node gone for over 60m \(c\): 3 keys/);

  const pruned = await pruneHistory(ctx.udb, { windowMs: HOUR, now: anHourOn });
  const expectedPurged = [...gone, ...detail].reduce((n, key) => n + before.get(key)!, 0);
  assert.is(pruned.purged, expectedPurged, 'every message of those keys, history and tombstone');
  assert.is(pruned.keys, 5);
  const after = await messagesPerKey(ctx);
  for (const key of [...gone, ...detail]) assert.not.ok(after.has(key), `${key} left the stream`);
  for (const key of before.keys()) if (![...gone, ...detail].includes(key)) assert.ok(after.has(key), `${key} stays`);
  for (const key of ['nodes.a', 'nodes.b', `rollouts.${v2}`, `rollouts.${v3}`, `progress.${v3}.a`, `progress.${v3}.b`]) assert.ok(after.has(key), `${key} stays`);

  // The status reads what is left; the live nodes carry on heartbeating, and a second prune finds nothing.
  const view = statusView('counters', await ctx.udb.snapshot(), Date.now(), leaseMs);
  assert.equal(view.nodes.map((n) => [n.id, n.live]).sort(), [['a', true], ['b', true]]);
  assert.equal(view.rollouts.map((r) => r.rolloutId).sort(), [v2, v3].sort());
  const heartbeat = (await ctx.udb.kv.get('nodes.a'))!.revision;
  await eventually(async () => (await ctx.udb.kv.get('nodes.a'))!.revision > heartbeat, 'a still writes its record');
  const again = await pruneHistory(ctx.udb, { windowMs: HOUR, now: anHourOn });
  assert.equal([again.keys, again.purged], [0, 0]);
  assert.match(renderPrune(again), /nothing to remove/);
});

test('a window under an hour is refused, saying why; the command line says so too, and prints its result as JSON', async (ctx) => {
  try {
    await pruneHistory(ctx.udb, { windowMs: 30 * 60_000, now: Date.now() });
    assert.unreachable('a 30-minute window was accepted');
  } catch (e) {
    assert.ok(isMoltError(e) && e.code === 'InvalidDefinition', String(e));
    assert.match((e as Error).message, /at least an hour/);
  }
  const refused = await molt(['prune', '--nats', ctx.nats.url, '--service', 'counters', '--older-than', '30m']);
  assert.is(refused.code, 2, refused.output); // a usage error, as every InvalidDefinition
  assert.match(refused.output, /at least an hour/);
  const dry = await molt(['prune', '--nats', ctx.nats.url, '--service', 'counters', '--dry-run']);
  assert.is(dry.code, 0, dry.output);
  assert.match(dry.output, /nothing to remove: no node gone and no superseded rollout ended over 7d ago/);
  const json = await molt(['prune', '--nats', ctx.nats.url, '--service', 'counters', '--dry-run', '--older-than', '30d', '--json']);
  assert.is(json.code, 0, json.output);
  const result = JSON.parse(json.output) as Record<string, unknown>;
  assert.equal(Object.keys(result).sort(), ['cutoff', 'dryRun', 'filters', 'keys', 'nodes', 'purged', 'rollouts', 'windowMs']);
  assert.equal([result.windowMs, result.dryRun, result.keys, result.purged, result.nodes, result.rollouts], [30 * 86_400_000, true, 0, 0, [], []]);
});

test.run();
