/**
 * A node refuses, reports and never imports an upgrade that is forged (signed
 * by a key it does not trust), unsigned, wrongly signed (changed after
 * signing) or tampered (bundle bytes changed after signing). The bundles used
 * would append to MOLT_IMPORT_MARKER if they were ever imported; a genuine
 * upgrade at the end shows that they would.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { NatsConnection } from '@nats-io/transport-node';
import { Objm } from '@nats-io/obj';
import type { Udb, ReportRecord } from '../../runtime/udb/index.ts';
import { buildBundle, sha256Hex } from '../../runtime/server/bundle.ts';
import { canonicalJson, descriptorKey, signDescriptor, verifyDescriptor, type UpgradeDescriptor } from '../../runtime/server/descriptor.ts';
import { openUpgradeStore, type UpgradeStore } from '../../runtime/server/store.ts';
import { isMoltError, type MoltError } from '../../runtime/index.ts';
import { startEmbeddedNats, type ChildNode, type EmbeddedNats } from '../support/nats.ts';
import { counterV2Descriptor, eventually, killAll, openCounters, startUpgradableNode, testPublisher, waitForVersions } from '../support/upgrades.ts';

interface Ctx {
  nats: EmbeddedNats;
  node: ChildNode;
  nc: NatsConnection;
  udb: Udb;
  store: UpgradeStore;
  trusted: ReturnType<typeof testPublisher>;
  bundle: Uint8Array;
  dir: string;
  marker: string;
}
const test = suite<Ctx>('upgrades: refused');

test.before(async (ctx) => {
  ctx.dir = mkdtempSync(join(tmpdir(), 'molt-refused-'));
  ctx.marker = join(ctx.dir, 'imported.log');
  ctx.nats = await startEmbeddedNats();
  ctx.trusted = testPublisher();
  ctx.bundle = await buildBundle('test/fixtures/counter-v2.ts');
  ctx.node = await startUpgradableNode(ctx.nats.url, 'n1', { trust: [ctx.trusted.publicKey], env: { MOLT_IMPORT_MARKER: ctx.marker } });
  ({ nc: ctx.nc, udb: ctx.udb } = await openCounters(ctx.nats.url));
  ctx.store = (await openUpgradeStore(ctx.nc, 'counters', { create: true }))!;
  await ctx.store.putBundle(ctx.bundle);
});

test.after(async (ctx) => {
  await killAll([ctx.node]);
  await ctx.nc?.drain().catch(() => undefined);
  await ctx.nats?.stop();
  rmSync(ctx.dir, { recursive: true, force: true });
});

function descriptor(publisher: string, bytes: Uint8Array, rolloutId: string): UpgradeDescriptor {
  return counterV2Descriptor({ publisher, bundle: { digest: sha256Hex(bytes), size: bytes.length }, rolloutId });
}

async function waitForReport(udb: Udb, reason: string): Promise<ReportRecord> {
  let found: ReportRecord | undefined;
  await eventually(async () => {
    found = (await udb.reports()).find((r) => r.nodeId === 'n1' && r.key === 'upgrade.counter.2' && r.reason === reason);
    return found !== undefined;
  }, `a '${reason}' report from n1`, 10_000);
  return found!;
}

async function assertStillAtV1(ctx: Ctx, reason: string): Promise<void> {
  const rec = (await ctx.udb.nodes()).find((n) => n.id === 'n1')!;
  assert.is(rec.versions.counter, 1, `${reason}: node still at counter@1`);
  assert.equal(rec.known?.counter, [1], `${reason}: counter@2 was never loaded`);
  assert.match(rec.lastError ?? '', /refused upgrade counter@2/, `${reason}: the node record carries the error`);
  assert.not.ok(existsSync(ctx.marker), `${reason}: the bundle was imported`);
}

test('descriptor - canonical JSON sorts keys at every level and signatures survive re-serialisation', ({ trusted }) => {
  assert.is(canonicalJson({ b: 1, a: { d: [2, { f: 1, e: 0 }], c: 'x' } }), '{"a":{"c":"x","d":[2,{"e":0,"f":1}]},"b":1}');
  const signed = signDescriptor(descriptor(trusted.publicKey, new Uint8Array([1, 2, 3]), 'r1'), trusted.signer);
  const reordered = JSON.stringify({ signature: signed.signature, descriptor: Object.fromEntries(Object.entries(signed.descriptor).reverse()) });
  const ok = verifyDescriptor('upgrade.counter.2', new TextEncoder().encode(reordered), { service: 'counters', trustedKeys: [trusted.publicKey] });
  assert.is(ok.rolloutId, 'r1');
  try {
    verifyDescriptor('upgrade.counter.3', new TextEncoder().encode(reordered), { service: 'counters', trustedKeys: [trusted.publicKey] });
    assert.unreachable('a descriptor under another key must be refused');
  } catch (e) {
    assert.ok(isMoltError(e, 'UpgradeRejected'));
    assert.is((e as MoltError).data.reason, 'wrong-place');
  }
});

test('forged - an upgrade signed by an untrusted key is refused and reported', async (ctx) => {
  const forger = testPublisher();
  const signed = signDescriptor(descriptor(forger.publicKey, ctx.bundle, 'forged-1'), forger.signer);
  await ctx.store.descriptors.put(descriptorKey('counter', 2), JSON.stringify(signed));
  const report = await waitForReport(ctx.udb, 'untrusted-key');
  assert.is(report.code, 'UpgradeRejected');
  assert.match(report.message, new RegExp(`signed by ${forger.publicKey}, which this node does not trust`));
  await assertStillAtV1(ctx, 'forged');
});

test('unsigned - an upgrade without a signature is refused and reported', async (ctx) => {
  const unsigned = { descriptor: descriptor(ctx.trusted.publicKey, ctx.bundle, 'unsigned-1'), signature: '' };
  await ctx.store.descriptors.put(descriptorKey('counter', 2), JSON.stringify(unsigned));
  const report = await waitForReport(ctx.udb, 'unsigned');
  assert.match(report.message, /is not signed/);
  await assertStillAtV1(ctx, 'unsigned');
});

test('wrongly signed - a descriptor changed after signing is refused and reported', async (ctx) => {
  const signed = signDescriptor(descriptor(ctx.trusted.publicKey, ctx.bundle, 'altered-1'), ctx.trusted.signer);
  const altered = { ...signed, descriptor: { ...signed.descriptor, schedule: { name: 'rolling', params: { batch: 3 } } } };
  await ctx.store.descriptors.put(descriptorKey('counter', 2), JSON.stringify(altered));
  const report = await waitForReport(ctx.udb, 'bad-signature');
  assert.match(report.message, /signature does not match/);
  await assertStillAtV1(ctx, 'wrongly signed');
});

test('tampered - bundle bytes changed after signing are refused and reported', async (ctx) => {
  // Sign the genuine bundle's digest, then replace the stored bytes by working code
  // that would still write the marker if it were imported.
  const signed = signDescriptor(descriptor(ctx.trusted.publicKey, ctx.bundle, 'tampered-1'), ctx.trusted.signer);
  const evil = new TextEncoder().encode(new TextDecoder().decode(ctx.bundle) + '\nglobalThis.__tampered = true;\n');
  const bundles = await new Objm(ctx.nc).open('molt_counters_bundles');
  await bundles.putBlob({ name: `sha256-${signed.descriptor.bundle.digest}` }, evil);
  await ctx.store.descriptors.put(descriptorKey('counter', 2), JSON.stringify(signed));
  const report = await waitForReport(ctx.udb, 'digest-mismatch');
  assert.match(report.message, /does not match its signed digest/);
  await assertStillAtV1(ctx, 'tampered');
});

test('genuine - the same bundle, stored and signed properly, is imported and applied', async (ctx) => {
  await ctx.store.putBundle(ctx.bundle);
  const signed = signDescriptor(descriptor(ctx.trusted.publicKey, ctx.bundle, 'genuine-1'), ctx.trusted.signer);
  await ctx.store.descriptors.put(descriptorKey('counter', 2), JSON.stringify(signed));
  await waitForVersions(ctx.udb, ['n1'], 'counter', 2, 10_000);
  assert.match(readFileSync(ctx.marker, 'utf8'), /counter-v2 bundle imported/);
  // The refusals are over: the report goes, and so does the node's last error.
  await eventually(async () => (await ctx.udb.reports()).length === 0, 'the report is removed', 5000);
  await eventually(async () => (await ctx.udb.nodes()).find((n) => n.id === 'n1')?.lastError === undefined, 'lastError cleared', 5000);
});

test.run();
