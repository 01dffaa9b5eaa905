/**
 * `molt publish` checks the rules of the upgrades it publishes (molt verify)
 * before it writes anything, through the real commands: a counterexample
 * refuses the publish and is printed; `--no-verify` publishes anyway, and the
 * descriptor, the rollout record and `molt status` say so. And `molt verify`
 * itself: exit 1 with the counterexample, 0 on a correct service.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { writeSeedFile } from '../../runtime/server/keys.ts';
import { descriptorKey, parseSignedDescriptor } from '../../runtime/server/descriptor.ts';
import { openUpgradeStore } from '../../runtime/server/store.ts';
import { startEmbeddedNats, type EmbeddedNats } from '../support/nats.ts';
import { molt, moltRoot } from '../support/projects.ts';
import { openCounters, testPublisher } from '../support/upgrades.ts';

interface Ctx {
  nats: EmbeddedNats;
  dir: string;
  key: string;
}
const test = suite<Ctx>('publish: verified before anything is written');

test.before(async (ctx) => {
  ctx.nats = await startEmbeddedNats();
  ctx.dir = mkdtempSync(join(tmpdir(), 'molt-publish-verify-'));
  ctx.key = join(ctx.dir, 'publisher.nk');
  writeSeedFile(ctx.key, testPublisher());
});

test.after(async (ctx) => {
  await ctx.nats?.stop();
  rmSync(ctx.dir, { recursive: true, force: true });
});

const broken = 'test/fixtures/verify-broken-service.ts';

test('molt verify - exits 1 and prints the rule, the version pair and the calls; exits 0 on a correct service', async () => {
  const failed = await molt(['verify', broken, '--seed', '7'], moltRoot);
  assert.is(failed.status, 1, failed.output);
  assert.match(failed.output, "✗ counter 1→2: rule 'simulates-future' broken");
  assert.match(failed.output, "{ version: 2, message: 'decrement', request: {\"by\":1} },");
  assert.match(failed.output, 'FAILED in');

  const passed = await molt(['verify', 'test/fixtures/counter-v2.ts', '--seed', '7', '--runs', '20'], moltRoot);
  assert.is(passed.status, 0, passed.output);
  assert.match(passed.output, /^✓ counter 1→2: 7 rules hold/m);
  assert.match(passed.output, /^verified in \d+ ms \(seed 7\)$/m);
});

test('refused - a counterexample stops the publish; nothing is written', async (ctx) => {
  const refused = await molt(['publish', broken, '--no-typecheck', '--key', ctx.key, '--nats', ctx.nats.url], moltRoot);
  assert.is(refused.status, 1, refused.output);
  assert.match(refused.output, /^molt: OperationRefused: counter@2 breaks the rules of upgrades, so it was not published \(nothing was written\):$/m);
  assert.match(refused.output, "rule 'simulates-future' broken");
  assert.match(refused.output, "{ version: 2, message: 'decrement', request: ");
  assert.match(refused.output, 'or publish it anyway with --no-verify');
  const { nc, udb } = await openCounters(ctx.nats.url);
  try {
    assert.equal(await udb.rollouts(), [], 'no rollout');
    const store = await openUpgradeStore(nc, 'counters', { create: false });
    assert.is((await store?.descriptors.get(descriptorKey('counter', 2)))?.operation ?? 'none', 'none', 'no descriptor');
  } finally {
    await nc.drain().catch(() => undefined);
  }
});

test('--no-verify - publishes, and the descriptor, the rollout record and molt status say it was not verified', async (ctx) => {
  const published = await molt(['publish', broken, '--no-typecheck', '--no-verify', '--key', ctx.key, '--nats', ctx.nats.url], moltRoot);
  assert.is(published.status, 0, published.output);
  assert.match(published.output, /^warning: published with --no-verify/m);
  const rolloutId = /published counter 1→2: rollout (counter-v2-\w+)/.exec(published.output)![1]!;
  const { nc, udb } = await openCounters(ctx.nats.url);
  try {
    const store = await openUpgradeStore(nc, 'counters', { create: false });
    const entry = await store!.descriptors.get(descriptorKey('counter', 2));
    assert.is(parseSignedDescriptor('upgrade.counter.2', entry!.value).descriptor.unverified, true);
    assert.is((await udb.rollout(rolloutId))?.record.unverified, true);
  } finally {
    await nc.drain().catch(() => undefined);
  }
  const status = await molt(['status', '--service', 'counters', '--nats', ctx.nats.url], moltRoot);
  assert.is(status.status, 0, status.output);
  assert.match(status.output, `${rolloutId} UNVERIFIED: published with --no-verify`);
});

test('verified - a correct upgrade is checked and published as usual', async (ctx) => {
  const dry = await molt(['publish', 'test/fixtures/counter-v2.ts', '--no-typecheck', '--dry-run', '--key', ctx.key, '--nats', ctx.nats.url], moltRoot);
  // counter@2 is published already (above): the dry run says there is nothing new, or would publish; either way it is not refused by verify.
  assert.not.match(dry.output, 'breaks the rules');
});

test.run();
