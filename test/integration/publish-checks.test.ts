/**
 * Issue 13, `molt publish` as a new user meets it, through the real command:
 *
 * - a key no live node trusts is refused (it used to publish a rollout that
 *   sat at `running 0/n` forever), `--force` publishes anyway with a warning,
 *   and re-signing the published version with a trusted key is one command
 *   (`molt publish <module> --fix --version <type>=<n> --key <trusted seed>`);
 * - code that does not type-check is refused with the compiler's diagnostics
 *   (`--dry-run` used to say "would publish"), `--no-typecheck` skips the
 *   check, and a module with a syntax error or one that throws when imported
 *   gets one `molt: …` line, not a stack trace.
 *
 * The type-check cases run in a small project of their own in a temporary
 * folder (its `molt` and `xstate` are links to this checkout's), with its own
 * tsconfig.json, and once without one.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync, copyFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createNode, silentLogger, type MoltNode } from '../../runtime/index.ts';
import { startUpgradeManager, type UpgradeManager } from '../../runtime/manager/index.ts';
import { keyFingerprint, writeSeedFile } from '../../runtime/server/keys.ts';
import service from '../fixtures/counter.ts';
import { startEmbeddedNats, type EmbeddedNats } from '../support/nats.ts';
import { molt, moltRoot } from '../support/projects.ts';
import { openCounters, testPublisher, waitForRollout, waitForVersions } from '../support/upgrades.ts';

interface Ctx {
  nats: EmbeddedNats;
  dir: string;
  node?: MoltNode;
  manager?: UpgradeManager;
}
const test = suite<Ctx>('publish: checks before anything is written');

test.before(async (ctx) => {
  ctx.nats = await startEmbeddedNats();
  ctx.dir = mkdtempSync(join(tmpdir(), 'molt-publish-checks-'));
});

test.after(async (ctx) => {
  await ctx.manager?.stop();
  await ctx.node?.stop();
  await ctx.nats?.stop();
  rmSync(ctx.dir, { recursive: true, force: true });
});

/** A seed file for a fresh publisher key. */
function seedFile(ctx: Ctx, name: string): { path: string; publicKey: string } {
  const keys = testPublisher();
  const path = join(ctx.dir, `${name}.nk`);
  writeSeedFile(path, keys);
  return { path, publicKey: keys.publicKey };
}

test('untrusted key - refused when no live node trusts it; --force warns; --fix with a trusted key re-signs it', async (ctx) => {
  const trusted = seedFile(ctx, 'trusted');
  const stranger = seedFile(ctx, 'stranger');
  ctx.node = await createNode({ service, nats: { servers: ctx.nats.url }, nodeId: 'node-a', logger: silentLogger, heartbeatMs: 300, leaseMs: 1500, trusts: [keyFingerprint(trusted.publicKey)] });
  ctx.manager = await startUpgradeManager(ctx.node, { trustedKeys: [trusted.publicKey], reconcileMs: 500, tickMs: 200, leaseMs: 1500, logger: silentLogger });
  const args = ['test/fixtures/counter-v2.ts', '--no-typecheck', '--nats', ctx.nats.url];

  const refused = await molt(['publish', ...args, '--key', stranger.path], moltRoot);
  assert.is(refused.status, 1, refused.output);
  assert.match(refused.output, new RegExp(`^molt: OperationRefused: no live node trusts the key that signs this upgrade \\(${stranger.publicKey}, fingerprint ${keyFingerprint(stranger.publicKey)}\\): node-a trusts ${keyFingerprint(trusted.publicKey)}\\. They would refuse the upgrade \\(untrusted-key\\), so its rollout would never start: sign with a key they trust \\(--key\\), or restart them with --trust ${stranger.publicKey}; or pass --force to publish anyway`, 'm'));
  const { nc, udb } = await openCounters(ctx.nats.url);
  try {
    assert.equal(await udb.rollouts(), [], 'nothing was written');

    const forced = await molt(['publish', ...args, '--key', stranger.path, '--force'], moltRoot);
    assert.is(forced.status, 0, forced.output);
    assert.match(forced.output, /^warning: no live node trusts the key that signs this upgrade/m);
    const rolloutId = /published counter 1→2: rollout (counter-v2-\w+)/.exec(forced.output)![1]!;
    const rejected = async () => (await udb.reports()).find((r) => r.nodeId === 'node-a' && r.reason === 'untrusted-key');
    for (let i = 0; i < 100 && !(await rejected()); i++) await new Promise((r) => setTimeout(r, 50));
    assert.ok(await rejected(), 'the node refused it');

    // The one-line way out: the same code, signed again with a key the nodes trust.
    const resigned = await molt(['publish', ...args, '--fix', '--version', 'counter=2', '--key', trusted.path], moltRoot);
    assert.is(resigned.status, 0, resigned.output);
    assert.match(resigned.output, new RegExp(`^re-signed counter 1→2: rollout ${rolloutId}, schedule immediate$`, 'm'));
    await waitForVersions(udb, ['node-a'], 'counter', 2, 10_000);
    await waitForRollout(udb, rolloutId, (r) => r.state === 'done', 'done');
  } finally {
    await nc.drain().catch(() => undefined);
  }
});

/** A small project using Molt: `shop`, actor type `sku` 1 → 2, with the transform given. */
function project(ctx: Ctx, name: string, options: { transform: string; tsconfig: boolean; extra?: string }): string {
  const root = join(ctx.dir, name);
  mkdirSync(join(root, 'node_modules', '@types'), { recursive: true });
  mkdirSync(join(root, 'src'));
  symlinkSync(moltRoot, join(root, 'node_modules', 'molt'));
  symlinkSync(join(moltRoot, 'node_modules', 'xstate'), join(root, 'node_modules', 'xstate'));
  symlinkSync(join(moltRoot, 'node_modules', '@types', 'node'), join(root, 'node_modules', '@types', 'node'));
  writeFileSync(join(root, 'package.json'), JSON.stringify({ name, type: 'module', private: true }));
  if (options.tsconfig) copyFileSync(join(moltRoot, 'templates', 'counter', 'tsconfig.json'), join(root, 'tsconfig.json'));
  writeFileSync(
    join(root, 'src', 'service.ts'),
    [
      `import { setup } from 'xstate';`,
      `import { ask, defineActorType, defineService, defineVersion, P, type EventsOf } from 'molt';`,
      options.extra ?? '',
      `const messages = { get: ask({}, P.number) };`,
      `const machine = setup({ types: { context: {} as { count: number }, events: {} as EventsOf<typeof messages> } }).createMachine({ context: { count: 0 } });`,
      `const skuV1 = defineVersion({ type: 'sku', version: 1, messages, machine, replies: { get: ({ snapshot }) => snapshot.context.count } });`,
      `const skuV2 = defineVersion({ type: 'sku', version: 2, messages, machine, replies: { get: ({ snapshot }) => snapshot.context.count } })`,
      `  .from(skuV1, { compatible: true, transform: ${options.transform} });`,
      `export default defineService('shop', [defineActorType('sku', [skuV1, skuV2])]);`,
      '',
    ].join('\n'),
  );
  return root;
}

test('type-check - a transform that does not type-check is refused with the diagnostics; --no-typecheck skips it', async (ctx) => {
  const key = seedFile(ctx, 'typecheck');
  const root = project(ctx, 'shop-typed', { transform: '({ context }) => ({ context: { count: `${context.count}` } })', tsconfig: true });
  const args = ['publish', 'src/service.ts', '--dry-run', '--key', key.path, '--nats', ctx.nats.url];
  const refused = await molt(args, root);
  assert.is(refused.status, 2, refused.output);
  assert.match(refused.output, /^molt: InvalidDefinition: src\/service\.ts does not type-check \(tsc -p tsconfig\.json\); nothing was published\. Fix what the compiler says, or pass --no-typecheck to publish anyway:$/m);
  assert.match(refused.output, /^ {2}src\/service\.ts\(\d+,\d+\): error TS2322: /m);
  assert.match(refused.output, /Type 'string' is not assignable to type 'number'/);
  assert.not.match(refused.output, /would publish/);

  // The transform really is wrong (a string count): `molt verify` would refuse it too, so skip both checks.
  const skipped = await molt([...args, '--no-typecheck', '--no-verify'], root);
  assert.is(skipped.status, 0, skipped.output);
  assert.match(skipped.output, /^would publish sku 1→2: rollout sku-v2-\w+, schedule immediate$/m);
});

test('type-check - without a tsconfig the module alone is checked (strict); a module that type-checks is published', async (ctx) => {
  const key = seedFile(ctx, 'standalone');
  const bad = project(ctx, 'shop-bare', { transform: '({ context }) => ({ context: { count: `${context.count}` } })', tsconfig: false });
  const refused = await molt(['publish', 'src/service.ts', '--dry-run', '--key', key.path, '--nats', ctx.nats.url], bad);
  assert.is(refused.status, 2, refused.output);
  assert.match(refused.output, /does not type-check \(tsc \(no tsconfig\.json in its project: the module alone, strict\)\)/);
  assert.match(refused.output, /error TS2322/);

  const good = project(ctx, 'shop-good', { transform: '({ context }) => ({ context: { count: context.count * 100 } })', tsconfig: true });
  const ok = await molt(['publish', 'src/service.ts', '--dry-run', '--key', key.path, '--nats', ctx.nats.url], good);
  assert.is(ok.status, 0, ok.output);
  assert.match(ok.output, /^would publish sku 1→2/m);
});

test('load errors - a syntax error and a module that throws when imported answer one molt: line', async (ctx) => {
  const key = seedFile(ctx, 'load');
  const cases: Array<[string, string, RegExp]> = [
    ['shop-syntax', 'const oops = ;', /^molt: InvalidDefinition: cannot load src\/service\.ts \(a syntax error\); nothing was published: .*service\.ts:3:13: ERROR: Unexpected ";"$/],
    ['shop-throws', "throw new Error('the database is not configured');", /^molt: InvalidDefinition: cannot load src\/service\.ts \(it failed while being imported\); nothing was published: the database is not configured$/],
  ];
  for (const [name, extra, expected] of cases) {
    const root = project(ctx, name, { transform: '({ context }) => ({ context })', tsconfig: true, extra });
    const r = await molt(['publish', 'src/service.ts', '--dry-run', '--no-typecheck', '--key', key.path, '--nats', ctx.nats.url], root);
    assert.is(r.status, 2, r.output);
    const lines = r.output.trim().split('\n');
    assert.is(lines.length, 1, `one line, no stack trace: ${r.output}`);
    assert.match(lines[0]!, expected);
  }
});

test.run();
