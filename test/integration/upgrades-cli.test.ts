/**
 * The operator's command line, end to end: `molt keys`, `molt publish`,
 * `molt status` (plain, JSON and watching), `molt pause/resume`, `molt
 * rollback`, and the refusals of unknown or finished rollouts and of bad
 * schedule parameters.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createNode, silentLogger, type MoltNode } from '../../runtime/index.ts';
import { startUpgradeManager, type UpgradeManager } from '../../runtime/manager/index.ts';
import service from '../fixtures/counter.ts';
import { spawnScript, startEmbeddedNats, type ChildNode, type EmbeddedNats } from '../support/nats.ts';

interface Ctx {
  nats: EmbeddedNats;
  dir: string;
  node?: MoltNode;
  manager?: UpgradeManager;
  publicKey: string;
}
const test = suite<Ctx>('upgrades: cli');

function molt(args: string[], env: Record<string, string> = {}): Promise<{ code: number | null; output: string }> & { child: ChildNode } {
  const child = spawnScript('bin/molt.js', args, { MOLT_LOG: 'warn', ...env });
  const done = new Promise<{ code: number | null; output: string }>((resolve) =>
    child.process.once('close', (code) => resolve({ code, output: child.output() })),
  );
  return Object.assign(done, { child });
}

test.before(async (ctx) => {
  ctx.dir = mkdtempSync(join(tmpdir(), 'molt-cli-'));
  ctx.nats = await startEmbeddedNats();
});

test.after(async (ctx) => {
  await ctx.manager?.stop();
  await ctx.node?.stop();
  await ctx.nats?.stop();
  rmSync(ctx.dir, { recursive: true, force: true });
});

test('keys - generate writes a private seed file and prints the public key', async (ctx) => {
  const seed = join(ctx.dir, 'publisher.nk');
  const gen = await molt(['keys', 'generate', '--out', seed]);
  assert.is(gen.code, 0, gen.output);
  const key = /^(U[A-Z2-7]{55})$/m.exec(gen.output)?.[1];
  assert.ok(key, gen.output);
  assert.is(statSync(seed).mode & 0o777, 0o600);
  const pub = await molt(['keys', 'public', seed]);
  assert.match(pub.output, new RegExp(`^${key}$`, 'm'));
  const again = await molt(['keys', 'generate', '--out', seed]);
  assert.is(again.code, 1);
  assert.match(again.output, /exists: keys are never overwritten/);
  ctx.publicKey = key!;
});

test('publish - paused, shown by status, resumed, watched to the end', async (ctx) => {
  ctx.node = await createNode({ service, nats: { servers: ctx.nats.url }, nodeId: 'cli-node', logger: silentLogger, heartbeatMs: 300, leaseMs: 1500 });
  ctx.manager = await startUpgradeManager(ctx.node, { trustedKeys: [ctx.publicKey], reconcileMs: 500, tickMs: 200, leaseMs: 1500, logger: silentLogger });
  const nats = ['--nats', ctx.nats.url];
  const seed = join(ctx.dir, 'publisher.nk');

  // Type-checking is tested on a project of its own (publish-checks.test.ts): the repository's takes seconds.
  const bad = await molt(['publish', 'test/fixtures/counter-v2.ts', '--no-typecheck', '--key', seed, ...nats, '--schedule', 'rolling', '--param', 'bacth=1']);
  assert.is(bad.code, 1);
  assert.match(bad.output, /OperationRefused: cannot publish with this schedule: schedule "rolling": .*bacth/);

  const pub = await molt(['publish', 'test/fixtures/counter-v2.ts', '--no-typecheck', '--key', seed, ...nats, '--schedule', 'rolling', '--param', 'batch=1', '--paused']);
  assert.is(pub.code, 0, pub.output);
  const rolloutId = /published counter 1→2: rollout (counter-v2-[0-9a-f]{6}), schedule rolling \{"batch":1\} \(paused: no node upgrades until `molt resume`\)/.exec(pub.output)?.[1];
  assert.ok(rolloutId, pub.output);

  // The node loads v2 (future SO) but holds.
  const deadline = Date.now() + 5000;
  while (!ctx.node.status().types.counter!.known.includes(2) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  assert.equal(ctx.node.status().types.counter!.known, [1, 2]);

  const json = await molt(['status', ...nats, '--json']);
  assert.is(json.code, 0, json.output);
  const view = JSON.parse(json.output.trim().split('\n').pop()!);
  assert.is(view.service, 'counters');
  assert.is(view.nodes[0].id, 'cli-node');
  assert.is(view.rollouts[0].rolloutId, rolloutId);
  assert.is(view.rollouts[0].state, 'paused');
  assert.is(ctx.node.status().types.counter!.current, 1, 'paused: not upgraded');

  const plain = await molt(['status', ...nats]);
  assert.match(plain.output, /service counters: 1 live node/);
  assert.match(plain.output, new RegExp(`${rolloutId}\\s+counter 1→2\\s+rolling \\{"batch":1\\}\\s+paused by the publisher\\s+\\[-{20}\\] 0/1`));
  assert.match(plain.output, new RegExp(`\\n  ${rolloutId} paused by the publisher: published paused: nodes load the upgrade and hold until \`molt resume\``));

  const watch = molt(['status', ...nats, '--watch', '--until-done']);
  await watch.child.waitFor(new RegExp(`rollout ${rolloutId} counter 1→2 paused 0/1`));
  const resume = await molt(['resume', 'counter@2', ...nats]);
  assert.is(resume.code, 0, resume.output);
  assert.match(resume.output, new RegExp(`rollout ${rolloutId} \\(counter 1→2\\) resumed`));
  const watched = await watch;
  assert.is(watched.code, 0, watched.output);
  assert.match(watched.output, new RegExp(`rollout ${rolloutId} counter 1→2 paused 0/1`));
  assert.match(watched.output, new RegExp(`rollout ${rolloutId} counter 1→2 done 1/1 \\[#{10}\\]`));
  assert.match(watched.output, /node cli-node running counter@2 cache@1/);
  assert.is(ctx.node.status().types.counter!.current, 2);
});

test('refusals and rollback - unknown and finished rollouts say why; rollback takes the node back', async (ctx) => {
  const nats = ['--nats', ctx.nats.url];
  const unknown = await molt(['pause', 'nope', ...nats]);
  assert.is(unknown.code, 1);
  assert.match(unknown.output, /no rollout 'nope' in service 'counters'; rollouts: counter-v2-\w+ \(counter@2, done\)/);
  const finished = await molt(['abort', 'counter@2', ...nats]);
  assert.is(finished.code, 1);
  assert.match(finished.output, /is already done: every live node runs counter@2. To go back, see `molt rollback`/);

  // counter@2 declares a down transform: rollback runs.
  const rollback = await molt(['rollback', 'counter@2', ...nats, '--reason', 'testing']);
  assert.is(rollback.code, 0, rollback.output);
  assert.match(rollback.output, /rollout counter-v2-\w+ \(counter 1→2\) rolling back: every node returns to counter@1/);
  const deadline = Date.now() + 10_000;
  let plain = '';
  while (Date.now() < deadline) {
    plain = (await molt(['status', ...nats])).output;
    if (/rolled-back by \S+\s+\[/.test(plain)) break;
    await new Promise((r) => setTimeout(r, 200));
  }
  assert.match(plain, /counter 1→2\s+rolling \{"batch":1\}\s+rolled-back by \S+@\S+\s+\[#{20}\] 1\/1 back at 1/);
  assert.match(plain, /\n  counter-v2-\w+ rolled-back by \S+@\S+: testing\n/);
  assert.is(ctx.node!.status().types.counter!.current, 1);
  assert.is(ctx.node!.status().types.counter!.rolledBackFrom, 2);
  const again = await molt(['rollback', 'counter@2', ...nats]);
  assert.match(again.output, /was already rolled back: every node runs counter@1/);
});

test.run();
