/**
 * Issue 7, part 4 (upgrades), the last cases: upgrades that are validly
 * signed by a trusted publisher and still must not be applied as they are.
 * Each is refused or contained, with a clear report in the upgrade database,
 * while the node keeps serving its version:
 *
 * - an oversized bundle (over the node's `--max-bundle-bytes`): refused from
 *   its signed size, or — when the stored object was replaced by a larger one
 *   — from the Object Store's size, before it is downloaded; never imported;
 * - a replayed descriptor (an older, genuinely signed descriptor put back
 *   into the upgrades bucket after a newer one): refused, no old code is
 *   loaded again;
 * - a custom scheduling function shipped in the bundle that throws, when it
 *   starts or while deciding: the upgrade fails on the node with a report, the
 *   manager and node keep running, and the operator can still abort.
 *
 * (Truncated, throwing and random bundles: fuzz-upgrades.test.ts; forged,
 * unsigned, wrongly signed and tampered ones: integration/upgrades-refused.test.ts.)
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { createServer } from 'node:net';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { NatsConnection } from '@nats-io/transport-node';
import { Objm } from '@nats-io/obj';
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { headers } from '@nats-io/transport-node';
import type { Udb, ReportRecord } from '../../runtime/udb/index.ts';
import { buildBundle, sha256Hex } from '../../runtime/server/bundle.ts';
import { descriptorKey, signDescriptor, type UpgradeDescriptor } from '../../runtime/server/descriptor.ts';
import { openUpgradeStore, type UpgradeStore } from '../../runtime/server/store.ts';
import { controlRollout } from '../../runtime/operate/rollouts.ts';
import { createClient, type MoltClient } from '../../runtime/index.ts';
import { startEmbeddedNats, type ChildNode, type EmbeddedNats } from '../support/nats.ts';
import { counterV2Descriptor, eventually, killAll, openCounters, publish, startUpgradableNode, testPublisher, waitForProgress, waitForRollout, waitForVersions } from '../support/upgrades.ts';

const KEY = descriptorKey('counter', 2);

interface Ctx {
  nats: EmbeddedNats;
  monitorPort: number;
  node: ChildNode;
  nc: NatsConnection;
  udb: Udb;
  store: UpgradeStore;
  client: MoltClient;
  trusted: ReturnType<typeof testPublisher>;
  dir: string;
  marker: string;
  /** The replayed suite: the first, pre-fix descriptor of counter@2, as stored. */
  original?: Uint8Array;
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

/** Starts a nats-server (with its monitoring port), a node trusting a fresh publisher, a client and the UDB. */
async function setUp(ctx: Ctx, nodeArgs: string[] = []): Promise<void> {
  ctx.dir = mkdtempSync(join(tmpdir(), 'molt-bad-upgrades-'));
  ctx.marker = join(ctx.dir, 'imported.log');
  ctx.monitorPort = await freePort();
  ctx.nats = await startEmbeddedNats({ args: ['-m', String(ctx.monitorPort)] });
  ctx.trusted = testPublisher();
  ctx.node = await startUpgradableNode(ctx.nats.url, 'n1', { trust: [ctx.trusted.publicKey], env: { MOLT_IMPORT_MARKER: ctx.marker }, args: nodeArgs });
  ({ nc: ctx.nc, udb: ctx.udb } = await openCounters(ctx.nats.url));
  ctx.store = (await openUpgradeStore(ctx.nc, 'counters', { create: true }))!;
  ctx.client = await createClient({ service: 'counters', nats: { servers: ctx.nats.url }, timeoutMs: 5000 });
  await ctx.client.call('counter', 1, 'kept', 'increment', { by: 7 });
}

async function tearDown(ctx: Partial<Ctx>): Promise<void> {
  await ctx.client?.close().catch(() => undefined);
  await killAll([ctx.node]);
  await ctx.nc?.drain().catch(() => undefined);
  await ctx.nats?.stop();
  if (ctx.dir) rmSync(ctx.dir, { recursive: true, force: true });
}

/** Bytes the nats-server has sent to the node's connections so far (its monitoring endpoint). */
async function bytesSentToNode(ctx: Ctx): Promise<number> {
  const res = await fetch(`http://127.0.0.1:${ctx.monitorPort}/connz?limit=1024`);
  const connz = (await res.json()) as { connections: Array<{ name?: string; out_bytes: number }> };
  const node = connz.connections.filter((c) => c.name?.startsWith('molt-node'));
  assert.ok(node.length > 0, `the node's connection is listed: ${JSON.stringify(connz.connections.map((c) => c.name))}`);
  return node.reduce((sum, c) => sum + c.out_bytes, 0);
}

function descriptorFor(ctx: Ctx, bundle: { digest: string; size: number }, rolloutId: string, schedule = 'immediate'): UpgradeDescriptor {
  return counterV2Descriptor({ publisher: ctx.trusted.publicKey, bundle, rolloutId, schedule });
}

async function putSigned(ctx: Ctx, d: UpgradeDescriptor): Promise<void> {
  await ctx.store.descriptors.put(KEY, JSON.stringify(signDescriptor(d, ctx.trusted.signer)));
}

/** n1's report about `key` written since `since` and matching `reason` (if given). */
async function reportFor(ctx: Ctx, since: number, reason?: string, key = KEY, timeoutMs = 15_000): Promise<ReportRecord> {
  let found: ReportRecord | undefined;
  let last: ReportRecord[] = [];
  await eventually(async () => {
    last = await ctx.udb.reports();
    found = last.find((r) => r.nodeId === 'n1' && r.key === key && r.at >= since && (reason === undefined || r.reason === reason));
    return found !== undefined;
  }, `a ${reason ?? ''} report from n1 about ${key}`, timeoutMs).catch((e) => {
    throw new Error(`${(e as Error).message}; reports: ${JSON.stringify(last)}`);
  });
  return found!;
}

async function nodeRecord(ctx: Ctx) {
  return (await ctx.udb.nodes()).find((n) => n.id === 'n1')!;
}

async function assertServing(ctx: Ctx, what: string, version: number, count = 7): Promise<void> {
  const rec = await nodeRecord(ctx);
  assert.is(rec.versions.counter, version, `${what}: n1 still runs counter@${version}`);
  // Asked as a version 1 or 2 caller (both have `get`; a v3 node serves them through its past SOs).
  assert.is(await ctx.client.call('counter', Math.min(version, 2), 'kept', 'get', {}), count, `${what}: still serving, state intact`);
  assert.is(ctx.node.process.exitCode, null, `${what}: the node is still running`);
}

// ---- oversized bundles ------------------------------------------------------

const LIMIT = 256 * 1024;
const oversized = suite<Ctx>('bad upgrades: oversized bundles');
oversized.before((ctx) => setUp(ctx, ['--max-bundle-bytes', String(LIMIT)]));
oversized.after((ctx) => tearDown(ctx));

oversized('oversized bundle - over the node limit by its signed size: refused before download, never imported, reported', async (ctx) => {
  // Working code that would write the marker if it were ever imported, padded to 1 MiB.
  const genuine = await buildBundle('test/fixtures/counter-v2.ts');
  assert.ok(genuine.length < LIMIT, `the fixture bundle itself fits (${genuine.length} bytes)`);
  const padding = `\n/* ${'x'.repeat(1024 * 1024)} */\n`;
  const big = new Uint8Array(Buffer.concat([genuine, Buffer.from(padding)]));
  await ctx.store.putBundle(big);
  const before = await bytesSentToNode(ctx);
  const since = Date.now();
  await putSigned(ctx, descriptorFor(ctx, { digest: sha256Hex(big), size: big.length }, 'oversized-1'));
  const report = await reportFor(ctx, since, 'bundle-too-large');
  assert.is(report.code, 'UpgradeRejected');
  assert.match(report.message, new RegExp(`is ${big.length} bytes, over this node's limit of ${LIMIT} bytes: it was not downloaded`));
  const sent = (await bytesSentToNode(ctx)) - before;
  assert.ok(sent < big.length / 4, `the node did not download the bundle (${sent} bytes sent to it, bundle ${big.length})`);
  assert.not.ok(existsSync(ctx.marker), 'the oversized bundle was imported');
  assert.match((await nodeRecord(ctx)).lastError ?? '', /refused upgrade counter@2: .*over this node's limit/);
  await assertServing(ctx, 'signed size too large', 1);
});

oversized('oversized bundle - stored object replaced by a larger one: refused from the store size before download, reported', async (ctx) => {
  // The descriptor signs a small genuine bundle; the object under its name is then replaced by 4 MiB.
  const genuine = await buildBundle('test/fixtures/counter-v2.ts');
  const digest = await ctx.store.putBundle(genuine);
  const bundles = await new Objm(ctx.nc).open('molt_counters_bundles');
  const huge = new Uint8Array(4 * 1024 * 1024).fill(0x20);
  await bundles.putBlob({ name: `sha256-${digest}` }, huge);
  const before = await bytesSentToNode(ctx);
  const since = Date.now();
  await putSigned(ctx, descriptorFor(ctx, { digest, size: genuine.length }, 'oversized-2'));
  const report = await reportFor(ctx, since, 'bundle-too-large');
  assert.match(report.message, new RegExp(`signed size ${genuine.length} bytes\\): the bundle sha256-${digest} is ${huge.length} bytes, over the limit of ${LIMIT} bytes; it was not downloaded`));
  const sent = (await bytesSentToNode(ctx)) - before;
  assert.ok(sent < LIMIT, `the node did not download the replaced object (${sent} bytes sent to it, object ${huge.length})`);
  assert.not.ok(existsSync(ctx.marker), 'nothing was imported');
  await assertServing(ctx, 'replaced object too large', 1);
});

oversized('oversized bundle - the store understates the object size: the download is cut off at the limit, refused', async (ctx) => {
  // A 2 MiB object whose metadata (written by whoever can write the bucket) claims 1000 bytes:
  // the size check before downloading passes, so only counting what arrives catches it.
  const genuine = await buildBundle('test/fixtures/counter-v2.ts');
  const digest = await ctx.store.putBundle(genuine);
  const bundles = await new Objm(ctx.nc).open('molt_counters_bundles');
  const name = `sha256-${digest}`;
  await bundles.putBlob({ name }, new Uint8Array(2 * 1024 * 1024).fill(0x20));
  const padded = Buffer.from(name).toString('base64url');
  const metaSubject = `$O.molt_counters_bundles.M.${padded}${'='.repeat((4 - (padded.length % 4)) % 4)}`;
  const jsm = await jetstreamManager(ctx.nc);
  const meta = JSON.parse(new TextDecoder().decode((await jsm.streams.getMessage('OBJ_molt_counters_bundles', { last_by_subj: metaSubject }))!.data)) as { size: number; chunks: number };
  assert.ok(meta.chunks > 1, 'several chunks: the streamed download path');
  const rollup = headers();
  rollup.set('Nats-Rollup', 'sub');
  await jetstream(ctx.nc).publish(metaSubject, JSON.stringify({ ...meta, size: 1000 }), { headers: rollup });
  assert.is((await bundles.info(name))!.size, 1000, 'the store now understates the size');

  const since = Date.now();
  await putSigned(ctx, descriptorFor(ctx, { digest, size: genuine.length }, 'understated-1'));
  const report = await reportFor(ctx, since, 'bundle-too-large');
  assert.match(report.message, new RegExp(`the bundle sha256-${digest} is more than \\d+ bytes, over the limit of ${LIMIT} bytes`));
  assert.not.ok(existsSync(ctx.marker), 'nothing was imported');
  await assertServing(ctx, 'understated object size', 1);
});

oversized('oversized bundle - the same upgrade with a bundle within the limit is applied', async (ctx) => {
  // Shows that the limit refused only what was too large: the genuine object back, a new descriptor.
  const genuine = await buildBundle('test/fixtures/counter-v2.ts');
  const digest = await ctx.store.putBundle(genuine);
  await putSigned(ctx, descriptorFor(ctx, { digest, size: genuine.length }, 'fits-1'));
  await waitForVersions(ctx.udb, ['n1'], 'counter', 2, 15_000);
  assert.match(readFileSync(ctx.marker, 'utf8'), /counter-v2 bundle imported/);
  await eventually(async () => !(await ctx.udb.reports()).some((r) => r.nodeId === 'n1' && r.key === KEY), 'the report is removed', 5000);
  await assertServing(ctx, 'after the genuine upgrade', 2);
});

oversized.run();

// ---- replayed descriptors ---------------------------------------------------

const replayed = suite<Ctx>('bad upgrades: replayed descriptors');
replayed.before((ctx) => setUp(ctx));
replayed.after((ctx) => tearDown(ctx));

/** The note of n1's progress record in a rollout. */
async function progressNote(ctx: Ctx, rolloutId: string): Promise<string> {
  return (await ctx.udb.progress(rolloutId)).find((p) => p.nodeId === 'n1')?.note ?? '';
}

replayed('replayed descriptor - the pre-fix descriptor of the running version put back: refused, the fixed code stays', async (ctx) => {
  const buggy = (await publish(ctx.nats.url, ctx.trusted.signer, 'test/fixtures/counter-v2-buggy.ts')).upgrades[0]!;
  await waitForVersions(ctx.udb, ['n1'], 'counter', 2, 15_000);
  const original = (await ctx.store.descriptors.get(KEY))!.value;
  ctx.original = original;
  const fix = (await publish(ctx.nats.url, ctx.trusted.signer, 'test/fixtures/counter-v2.ts', { fix: true, versions: { counter: 2 } })).upgrades[0]!;
  const fixed = `fixed code loaded (bundle sha256 ${fix.bundle.digest.slice(0, 12)}`;
  await eventually(async () => (await progressNote(ctx, buggy.rolloutId)).startsWith(fixed), 'n1 loads the fix', 15_000);

  // The attacker (or a stale tool) puts the original, validly signed descriptor back.
  const since = Date.now();
  await ctx.store.descriptors.put(KEY, original);
  const report = await reportFor(ctx, since, 'replayed');
  assert.is(report.code, 'UpgradeRejected');
  assert.match(report.message, /written again \(revision \d+\) with a descriptor published .* not after the one this node already verified/);
  assert.match(report.message, new RegExp(`bundle sha256 ${buggy.bundle.digest.slice(0, 12)}`));
  // Give a wrongly accepted replay time to show: the node would record the buggy code as loaded.
  await new Promise((r) => setTimeout(r, 1000));
  const note = await progressNote(ctx, buggy.rolloutId);
  assert.ok(note.startsWith(fixed), `n1 still runs the fixed code: ${note}`);
  assert.not.match(note, buggy.bundle.digest.slice(0, 12));
  await assertServing(ctx, 'pre-fix descriptor replayed', 2);
});

replayed('replayed descriptor - an older version re-put after a newer one: refused, the node stays at the newer version', async (ctx) => {
  const v3 = (await publish(ctx.nats.url, ctx.trusted.signer, 'test/fixtures/counter-v3.ts')).upgrades[0]!;
  assert.is(v3.to, 3);
  await waitForVersions(ctx.udb, ['n1'], 'counter', 3, 15_000);
  const v2Progress = (await ctx.udb.progress()).find((p) => p.nodeId === 'n1' && p.to === 2)!;
  const v3Progress = (await ctx.udb.progress(v3.rolloutId)).find((p) => p.nodeId === 'n1')!;

  // The pre-fix counter@2 descriptor, put back once more while the node runs counter@3.
  const since = Date.now();
  await ctx.store.descriptors.put(KEY, ctx.original!);
  const report = await reportFor(ctx, since, 'replayed');
  assert.match(report.message, /it was not loaded and the node keeps its code/);
  // And the counter@3 descriptor written again unchanged (a tool syncing the bucket): nothing older, nothing new.
  const KEY3 = descriptorKey('counter', 3);
  await ctx.store.descriptors.put(KEY3, (await ctx.store.descriptors.get(KEY3))!.value);
  await new Promise((r) => setTimeout(r, 1000));
  const after = (await ctx.udb.progress()).find((p) => p.nodeId === 'n1' && p.to === 2)!;
  assert.equal(after.steps, v2Progress.steps, 'nothing happened to the counter@2 upgrade on n1');
  assert.equal((await ctx.udb.progress(v3.rolloutId)).find((p) => p.nodeId === 'n1'), v3Progress, 'the unchanged counter@3 descriptor changed nothing');
  assert.not.ok((await ctx.udb.reports()).some((r) => r.key === KEY3), 'and was not reported');
  await assertServing(ctx, 'older version replayed', 3);
});

replayed('replayed descriptor - a node restarted after the replay refuses it too (from the bucket history); a new fix brings it back', async (ctx) => {
  const imports = () => (existsSync(ctx.marker) ? readFileSync(ctx.marker, 'utf8').split('\n').filter(Boolean).length : 0);
  await ctx.node.kill();
  const importsBefore = imports();
  const since = Date.now();
  // Its module has counter@1 only: to catch up it would have to take the (replayed) counter@2 descriptor.
  ctx.node = await startUpgradableNode(ctx.nats.url, 'n1', { trust: [ctx.trusted.publicKey], env: { MOLT_IMPORT_MARKER: ctx.marker } });
  const report = await reportFor(ctx, since, 'replayed');
  assert.match(report.message, /not after the one this node already verified/);
  assert.is(imports(), importsBefore, 'the restarted node imported no bundle for the replayed descriptor');
  assert.is((await nodeRecord(ctx)).versions.counter, 1, 'it stays at its own version');

  // The operator puts the right code back: a new fix, signed later than anything before.
  await publish(ctx.nats.url, ctx.trusted.signer, 'test/fixtures/counter-v2.ts', { fix: true, versions: { counter: 2 } });
  await waitForVersions(ctx.udb, ['n1'], 'counter', 3, 15_000);
  await assertServing(ctx, 'after the new fix', 3);
});

replayed.run();

// ---- scheduling functions that throw ---------------------------------------

const throwing = suite<Ctx>('bad upgrades: scheduling functions that throw');
throwing.before((ctx) => setUp(ctx));
throwing.after((ctx) => tearDown(ctx));

throwing('throwing SF - at start: the upgrade fails with a report, the node keeps serving, abort ends it', async (ctx) => {
  const since = Date.now();
  const { rolloutId } = (await publish(ctx.nats.url, ctx.trusted.signer, 'test/fixtures/counter-v2-bad-schedules.ts', { schedule: { name: 'explodesAtStart' } })).upgrades[0]!;
  const progress = (await waitForProgress(ctx.udb, rolloutId, ['n1'], ['failed'], 15_000)).get('n1')!;
  assert.match(progress.error ?? '', /the scheduling function failed: explodesAtStart: this scheduling function cannot even start/);
  const report = await reportFor(ctx, since);
  assert.match(report.message, /upgrade counter@2 failed: the scheduling function failed: explodesAtStart/);
  assert.equal((await nodeRecord(ctx)).known?.counter, [1, 2], 'counter@2 is loaded (its future SO serves v2 callers)');
  await assertServing(ctx, 'SF threw at start', 1);
  assert.is(await ctx.client.call('counter', 2, 'kept', 'get', {}), 7, 'v2 callers are served through the future SO');
  assert.match(report.message, new RegExp(`publish a fixed bundle .* or abort the rollout \\(\`molt abort ${rolloutId}\`\\)`));
  // Not run again every reconciliation (1 s here): it would only crash again, rewriting its records each time.
  await new Promise((r) => setTimeout(r, 2500));
  const later = (await ctx.udb.progress(rolloutId)).find((p) => p.nodeId === 'n1')!;
  assert.equal(later.steps, progress.steps, 'the crashed SF was not run again while nothing changed');

  await controlRollout(ctx.udb, rolloutId, 'abort', 'its scheduling function is broken');
  await waitForProgress(ctx.udb, rolloutId, ['n1'], ['aborted'], 15_000);
  await waitForRollout(ctx.udb, rolloutId, (r) => r.state === 'aborted', 'aborted');
  await assertServing(ctx, 'after abort', 1);
});

throwing('throwing SF - while deciding: the upgrade fails with a report, the node keeps serving, abort ends it', async (ctx) => {
  // A new rollout of counter@2 (the last one was aborted, so `publish` would refuse): written directly.
  const bundle = await buildBundle('test/fixtures/counter-v2-bad-schedules.ts');
  const digest = await ctx.store.putBundle(bundle);
  const d = descriptorFor(ctx, { digest, size: bundle.length }, 'explodes-deciding-1', 'explodesDeciding');
  const now = Date.now();
  await ctx.udb.createRollout({ rolloutId: d.rolloutId, service: 'counters', type: 'counter', from: 1, to: 2, schedule: d.schedule, publisher: d.publisher, state: 'running', counts: {}, startedAt: now, updatedAt: now });
  const since = Date.now();
  await putSigned(ctx, d);
  const progress = (await waitForProgress(ctx.udb, d.rolloutId, ['n1'], ['failed'], 15_000)).get('n1')!;
  assert.ok(progress.steps.some((s) => s.step === 'scheduling'), `the SF ran before it crashed: ${JSON.stringify(progress.steps)}`);
  assert.match(progress.error ?? '', /the scheduling function failed: .*explodesDeciding: this scheduling function crashed while deciding/);
  const report = await reportFor(ctx, since);
  assert.match(report.message, /explodesDeciding: this scheduling function crashed while deciding/);
  await assertServing(ctx, 'SF threw while deciding', 1);

  await controlRollout(ctx.udb, d.rolloutId, 'abort', 'its scheduling function is broken');
  await waitForProgress(ctx.udb, d.rolloutId, ['n1'], ['aborted'], 15_000);
  await assertServing(ctx, 'after abort', 1);
});

throwing.run();
