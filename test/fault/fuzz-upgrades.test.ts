/**
 * Issue 7, part 4 (upgrades): broken upgrade bundles that are properly
 * signed (so they pass signature and digest checks) are contained: a node
 * refuses them with an `UpgradeRejected` report (`bundle-invalid`) in the UDB,
 * never runs them, and keeps serving its version with its state intact.
 *
 * Cases: a bundle truncated in the middle, a bundle whose module throws when
 * imported, and random bytes. (Forged, unsigned, wrongly signed and tampered
 * bundles are in test/integration/upgrades-refused.test.ts.)
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { randomBytes } from 'node:crypto';
import type { NatsConnection } from '@nats-io/transport-node';
import type { Udb, ReportRecord } from '../../runtime/udb/index.ts';
import { buildBundle, sha256Hex } from '../../runtime/server/bundle.ts';
import { descriptorKey, signDescriptor } from '../../runtime/server/descriptor.ts';
import { openUpgradeStore, type UpgradeStore } from '../../runtime/server/store.ts';
import { createClient, type MoltClient } from '../../runtime/index.ts';
import { startEmbeddedNats, type ChildNode, type EmbeddedNats } from '../support/nats.ts';
import { counterV2Descriptor, eventually, killAll, openCounters, startUpgradableNode, testPublisher } from '../support/upgrades.ts';

interface Ctx {
  nats: EmbeddedNats;
  node: ChildNode;
  nc: NatsConnection;
  udb: Udb;
  store: UpgradeStore;
  client: MoltClient;
  trusted: ReturnType<typeof testPublisher>;
  genuine: Uint8Array;
}
const test = suite<Ctx>('upgrades: broken bundles');

test.before(async (ctx) => {
  ctx.nats = await startEmbeddedNats();
  ctx.trusted = testPublisher();
  ctx.genuine = await buildBundle('test/fixtures/counter-v2.ts');
  ctx.node = await startUpgradableNode(ctx.nats.url, 'n1', { trust: [ctx.trusted.publicKey] });
  ({ nc: ctx.nc, udb: ctx.udb } = await openCounters(ctx.nats.url));
  ctx.store = (await openUpgradeStore(ctx.nc, 'counters', { create: true }))!;
  ctx.client = await createClient({ service: 'counters', nats: { servers: ctx.nats.url } });
  await ctx.client.call('counter', 1, 'bb-1', 'increment', { by: 5 });
});

test.after(async (ctx) => {
  await ctx.client?.close().catch(() => undefined);
  await killAll([ctx.node]);
  await ctx.nc?.drain().catch(() => undefined);
  await ctx.nats?.stop();
});

/** Stores `bytes` as a bundle and publishes a correctly signed descriptor for it. */
async function publishBroken(ctx: Ctx, bytes: Uint8Array, rolloutId: string): Promise<void> {
  await ctx.store.putBundle(bytes);
  const d = counterV2Descriptor({ publisher: ctx.trusted.publicKey, bundle: { digest: sha256Hex(bytes), size: bytes.length }, rolloutId });
  await ctx.store.descriptors.put(descriptorKey('counter', 2), JSON.stringify(signDescriptor(d, ctx.trusted.signer)));
}

/** The report n1 wrote about the counter@2 descriptor since `since` (one key per node and descriptor, overwritten). */
async function reportFor(ctx: Ctx, digest: string, since: number): Promise<ReportRecord> {
  let found: ReportRecord | undefined;
  await eventually(async () => {
    found = (await ctx.udb.reports()).find((r) => r.nodeId === 'n1' && r.key === 'upgrade.counter.2' && r.at >= since);
    return found !== undefined;
  }, `a report from n1 about bundle ${digest.slice(0, 12)}`, 15_000);
  return found!;
}

async function assertContained(ctx: Ctx, what: string, report: ReportRecord): Promise<void> {
  assert.is(report.code, 'UpgradeRejected', `${what}: ${JSON.stringify(report)}`);
  assert.is(report.reason, 'bundle-invalid', `${what}: ${JSON.stringify(report)}`);
  const rec = (await ctx.udb.nodes()).find((n) => n.id === 'n1')!;
  assert.is(rec.versions.counter, 1, `${what}: still at counter@1`);
  assert.equal(rec.known?.counter, [1], `${what}: counter@2 never loaded`);
  assert.is(await ctx.client.call('counter', 1, 'bb-1', 'get', {}), 5, `${what}: state intact, still serving`);
  assert.is(ctx.node.process.exitCode, null, `${what}: the node is still running`);
  console.log(`broken bundle: ${what} -> ${report.code}/${report.reason}: ${report.message.slice(0, 160)}`);
}

test('broken bundle - truncated in the middle: refused (bundle-invalid), node keeps serving v1', async (ctx) => {
  const since = Date.now();
  const bytes = ctx.genuine.subarray(0, Math.floor(ctx.genuine.length / 2));
  await publishBroken(ctx, bytes, 'truncated-1');
  await assertContained(ctx, 'truncated', await reportFor(ctx, sha256Hex(bytes), since));
});

test('broken bundle - module throws on import: refused (bundle-invalid), node keeps serving v1', async (ctx) => {
  const since = Date.now();
  const bytes = new TextEncoder().encode(`throw new Error('this bundle explodes when imported');\nexport default {};\n`);
  await publishBroken(ctx, bytes, 'throws-1');
  const report = await reportFor(ctx, sha256Hex(bytes), since);
  await assertContained(ctx, 'throws on import', report);
  assert.match(report.message, /explodes when imported/);
});

test('broken bundle - random bytes: refused (bundle-invalid), node keeps serving v1', async (ctx) => {
  const since = Date.now();
  const bytes = new Uint8Array(randomBytes(4096));
  await publishBroken(ctx, bytes, 'random-1');
  await assertContained(ctx, 'random bytes', await reportFor(ctx, sha256Hex(bytes), since));
});

test.run();
