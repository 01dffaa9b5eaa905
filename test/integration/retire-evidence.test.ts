/**
 * Retiring by evidence on a real node: the node counts calls per caller
 * version and records when it last saw each (`callers.counter.<node>`);
 * `molt retire --when-unused <window>` never retires v1 while a v1 caller
 * calls, and retires it only once no v1 call was seen for the window — then
 * v1 callers get VersionRetired. `molt status` lists v1 as an old version,
 * ready to retire by the type's policy once it is.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { createClient, createNode, isMoltError, silentLogger, type MoltClient, type MoltNode } from '../../runtime/index.ts';
import { startUpgradeManager, type UpgradeManager } from '../../runtime/manager/index.ts';
import { Udb } from '../../runtime/udb/index.ts';
import { retireVersion } from '../../runtime/operate/rollouts.ts';
import { retireWhenUnused } from '../../runtime/operate/retire.ts';
import { renderStatus, statusView, watchKey } from '../../runtime/operate/status.ts';
import service from '../fixtures/counter-retire.ts';
import { counterV1 } from '../fixtures/counter.ts';
import { spawnScript, startEmbeddedNats, type EmbeddedNats } from '../support/nats.ts';
import { eventually, openCounters } from '../support/upgrades.ts';

const test = suite<{ nats: EmbeddedNats; node: MoltNode; manager: UpgradeManager; client: MoltClient; udb: Udb; close: () => Promise<void> }>('retire by evidence');

const WINDOW_MS = 1000;
const EVERY_MS = 300;
const HEARTBEAT_MS = 100;

test.before(async (ctx) => {
  ctx.nats = await startEmbeddedNats();
  ctx.node = await createNode({ service, nats: { servers: ctx.nats.url }, nodeId: 'n1', versions: { counter: 2 }, heartbeatMs: HEARTBEAT_MS, leaseMs: 1500, evidenceEveryMs: EVERY_MS, logger: silentLogger });
  ctx.manager = await startUpgradeManager(ctx.node, { trustedKeys: [], reconcileMs: 500, tickMs: 200, leaseMs: 1500, logger: silentLogger });
  ctx.client = await createClient({ service: 'counters', nats: { servers: ctx.nats.url }, timeoutMs: 5000 });
  const { nc, udb } = await openCounters(ctx.nats.url);
  ctx.udb = udb;
  ctx.close = () => nc.drain();
});

test.after(async (ctx) => {
  await ctx.client?.close();
  await ctx.manager?.stop();
  await ctx.node?.stop();
  await ctx.close?.();
  await ctx.nats?.stop();
});

const attempt = (udb: Udb, windowMs?: number) =>
  retireWhenUnused(udb, { type: 'counter', version: 1, windowMs, now: Date.now(), leaseMs: 60_000 }, (t, v) => retireVersion(udb, t, v, 'test'));

test('retire --when-unused - never while a v1 caller calls; only after the window without one', async ({ node, client, udb }) => {
  const v1 = client.actor(counterV1, 'k');
  await v1.increment({ by: 1 });
  // The node records its v1 caller.
  await eventually(async () => (await udb.callers('counter')).some((r) => typeof r.lastSeen['1'] === 'number'), 'evidence of the v1 caller');
  const record = (await udb.callers('counter')).find((r) => r.nodeId === 'n1')!;
  assert.is(record.slackMs, EVERY_MS + HEARTBEAT_MS);
  assert.is(record.retireWhenUnusedMs, 1500);

  // A v1 caller calls (every 200 ms, less often than the evidence is written): every attempt is refused.
  let calling = true;
  let lastCallAt = 0;
  const caller = (async () => {
    while (calling) {
      await v1.increment({ by: 1 });
      lastCallAt = Date.now();
      await new Promise((r) => setTimeout(r, 200));
    }
  })();
  const until = Date.now() + 3 * WINDOW_MS;
  let refusals = 0;
  // Three windows, and at least five attempts however slow each one is.
  while (Date.now() < until || refusals < 5) {
    await attempt(udb, WINDOW_MS).then(
      () => assert.unreachable('v1 retired while its caller calls'),
      (e) => {
        assert.ok(isMoltError(e, 'OperationRefused'), String(e));
        assert.match(e.message, /a caller of counter@1 was seen by n1 /);
        refusals++;
      },
    );
    await new Promise((r) => setTimeout(r, 100));
  }
  calling = false;
  await caller;
  assert.ok(refusals >= 3, `the caller was refused while it called (${refusals} attempts)`);

  // Now quiet: retired on the first attempt after the window (plus the node's slack), never before the window.
  let retiredAt = 0;
  await eventually(
    async () => {
      try {
        const r = await attempt(udb, WINDOW_MS);
        retiredAt = Date.now();
        return r.retired.includes(1);
      } catch (e) {
        assert.ok(isMoltError(e, 'OperationRefused'), String(e));
        return false;
      }
    },
    'v1 retired once unused',
    10_000,
  );
  assert.ok(retiredAt - lastCallAt >= WINDOW_MS, `retired ${retiredAt - lastCallAt} ms after the last v1 call`);
  // The node applies the retirement: v1 callers get VersionRetired; v2 callers are served.
  await eventually(() => !node.status().types.counter!.served.includes(1), 'the node drops v1');
  const refused = await v1.get().then(
    () => undefined,
    (e: unknown) => e,
  );
  assert.ok(isMoltError(refused, 'VersionRetired'), String(refused));
  // The refused call still counts as evidence of a v1 caller (molt status shows it).
  await eventually(async () => Date.now() - (await udb.callers('counter'))[0]!.lastSeen['1']! < 1000, 'the refused v1 call recorded');
});

test('retire --when-unused - the CLI refuses with nothing old to retire, and asks for a version or --when-unused', async ({ nats, udb }) => {
  // v1 is retired (previous test).
  const view = () => udb.snapshot().then((s) => statusView('counters', s, Date.now(), 1500));
  // No old version left to show: v1 is retired.
  assert.equal((await view()).oldVersions, []);
  // Without a version and nothing old: the CLI says so and exits 1.
  const run = (args: string[]) =>
    new Promise<{ code: number | null; output: string }>((resolve) => {
      const child = spawnScript('bin/molt.js', args, { MOLT_LOG: 'warn' });
      child.process.once('close', (code) => resolve({ code, output: child.output() }));
    });
  const none = await run(['retire', 'counter', '--when-unused', '--nats', nats.url]);
  assert.is(none.code, 1, none.output);
  assert.match(none.output, /counter has no old version to retire/);
  const noVersion = await run(['retire', 'counter', '--nats', nats.url]);
  assert.is(noVersion.code, 2, noVersion.output);
  assert.match(noVersion.output, /give the <version> to retire, or --when-unused/);
});

test('molt status - an old version with a recent caller is listed, and ready once its policy window passed', async () => {
  const { oldVersions, oldVersionLine } = await import('../../runtime/operate/retire.ts');
  const node = { id: 'n1', service: 's', host: 'h', pid: 1, versions: { counter: 3 }, status: 'running' as const, startedAt: 0, heartbeatAt: 10_000 };
  const callers = [{ nodeId: 'n1', type: 'counter', since: 0, lastSeen: { '1': 1000, '2': 9000 }, slackMs: 500, retireWhenUnusedMs: 5000, updatedAt: 9000 }];
  const views = oldVersions({ nodes: [node], retired: [], callers }, 10_000, 5000);
  assert.equal(
    views.map((v) => [v.version, v.unusedForMs, v.readyToRetire]),
    [
      [1, 9000, true],
      [2, 1000, false],
    ],
  );
  assert.is(oldVersionLine(views[0]!), '  counter@1: last caller 9s ago (n1); unused for its policy\'s 5s: ready to retire');
  const lines = renderStatus({ ...statusView('s', { nodes: [node], rollouts: [], control: [], retired: [], progress: [], reports: [], callers }, 10_000, 5000) }, { unicode: false });
  assert.ok(lines.includes('OLD VERSIONS (1 ready to retire: molt retire <type> --when-unused)'), lines.join('\n'));
  // --watch --json prints a document on a change, not because time passed (an old version's age grows).
  const snap = { nodes: [node], rollouts: [], control: [], retired: [], progress: [], reports: [], callers };
  assert.is(watchKey(statusView('s', snap, 10_000, 5000)), watchKey(statusView('s', { ...snap, nodes: [{ ...node, heartbeatAt: 10_500 }] }, 10_600, 5000)));
  assert.is.not(watchKey(statusView('s', snap, 10_000, 5000)), watchKey(statusView('s', { ...snap, callers: [{ ...callers[0]!, lastSeen: { '1': 1000, '2': 9500 } }] }, 10_000, 5000)));
});

test.run();
