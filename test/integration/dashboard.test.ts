/**
 * `molt dashboard` in a real browser (Debian's chromium, driven by
 * playwright-core): three node processes appear; a rollout published paused
 * is shown paused, resumed with the page's button, and shown done as it
 * happens; the pause button pauses a real rollout; the test saves a
 * screenshot. Then, on a server with permissions, a dashboard started
 * without the operator's credentials says it is read only and its control
 * requests are refused, while the operator's acts.
 *
 * Needs a chromium binary: `apt-get install chromium` (or set
 * MOLT_CHROMIUM to another Chromium's path).
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { existsSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { connectNats } from '../../runtime/index.ts';
import { startDashboard, type Dashboard } from '../../runtime/observe/dashboard.ts';
import { setupServiceBuckets } from '../../runtime/udb/buckets.ts';
import { permissionsConfig } from '../../runtime/nats/permissions.ts';
import { openUdbFor } from '../../runtime/operate/service.ts';
import { counterV1 } from '../fixtures/counter.ts';
import { spawnScript, startEmbeddedNats } from '../support/nats.ts';
import { publish, startThreeNodeService, stopThreeNodeService, waitForRollout, type ThreeNodeService } from '../support/upgrades.ts';

const executablePath = process.env.MOLT_CHROMIUM ?? ['/usr/bin/chromium', '/usr/bin/chromium-browser'].find((p) => existsSync(p));
/** Where the screenshot goes: $MOLT_TEST_OUTPUT, or a folder under the system's temporary directory. */
const output = process.env.MOLT_TEST_OUTPUT ?? join(tmpdir(), 'molt-test-output');

type Ctx = ThreeNodeService & { browser: Browser; page: Page; dashboard: Dashboard };
const test = suite<Ctx>('dashboard');

test.before(async (ctx) => {
  if (!executablePath) throw new Error('no chromium found: apt-get install chromium, or set MOLT_CHROMIUM to a Chromium binary');
  Object.assign(ctx, await startThreeNodeService());
  ctx.browser = await chromium.launch({ executablePath, args: ['--no-sandbox', '--disable-gpu'], timeout: 60_000 });
  ctx.page = await ctx.browser.newPage({ viewport: { width: 1280, height: 900 } });
});

test.after(async (ctx) => {
  await ctx.browser?.close();
  await ctx.dashboard?.close();
  await stopThreeNodeService(ctx);
});

const state = (page: Page, rolloutId: string) => page.locator(`tr[data-rollout="${rolloutId}"] [data-state]`);

test('dashboard - shows three nodes, and a paused rollout resumed from the page running to done', async (ctx) => {
  const { nats, nc, client, publisher, page } = ctx;
  for (let i = 0; i < 6; i++) await client.actor(counterV1, `d${i}`).increment({ by: 1 });
  ctx.dashboard = await startDashboard({ nc, udb: await openUdbFor(nc, 'counters'), service: 'counters', port: 0, leaseMs: 1500, retireAfterMs: 1000 });
  await page.goto(`http://127.0.0.1:${ctx.dashboard.port}/`);
  for (const id of ['node-a', 'node-b', 'node-c']) {
    await page.locator(`tr[data-node="${id}"]`, { hasText: 'live' }).waitFor({ timeout: 15_000 });
    assert.match((await page.locator(`tr[data-node="${id}"]`).innerText()), /counter@1/);
  }
  assert.match(await page.locator('#status').innerText(), /Pause, resume and abort act/);
  // A node reports its traffic in its record, heartbeat after heartbeat: the six calls show once each node's next record is written.
  await page.locator('tr[data-version="counter@1"] td:nth-child(2)', { hasText: /^6$/ }).waitFor({ timeout: 15_000 });

  const rollout = (await publish(nats.url, publisher.signer, 'test/fixtures/counter-v2.ts', { paused: true })).upgrades[0]!;
  await state(page, rollout.rolloutId).filter({ hasText: 'paused' }).waitFor({ timeout: 15_000 });
  await page.locator(`tr[data-rollout="${rollout.rolloutId}"] button[data-action="resume"]`).click();
  await state(page, rollout.rolloutId).filter({ hasText: 'done' }).waitFor({ timeout: 30_000 });
  assert.match(await page.locator(`tr[data-rollout="${rollout.rolloutId}"]`).innerText(), /3\/3/);
  for (const id of ['node-a', 'node-b', 'node-c']) await page.locator(`tr[data-node="${id}"]`, { hasText: 'counter@2' }).waitFor({ timeout: 15_000 });
});

test('dashboard - the pause button pauses a real rollout; the screenshot is saved', async (ctx) => {
  const { nats, udb, client, publisher, page } = ctx;
  // One node at a time with a gap: the rollout is still running when the button is pressed.
  const rollout = (await publish(nats.url, publisher.signer, 'test/fixtures/counter-v3.ts', { schedule: { name: 'stepwise', params: { gapMs: 4000 } } })).upgrades[0]!;
  await state(page, rollout.rolloutId).filter({ hasText: 'running' }).waitFor({ timeout: 15_000 });
  await page.locator(`tr[data-rollout="${rollout.rolloutId}"] button[data-action="pause"]`).click();
  await waitForRollout(udb, rollout.rolloutId, (r) => r.state === 'paused', 'paused from the page');
  await state(page, rollout.rolloutId).filter({ hasText: 'paused' }).waitFor({ timeout: 15_000 });
  assert.match(await page.locator('#message').innerText(), /paused/);
  // Callers of v1 keep being served (through the past SOs) while it is paused.
  await client.actor(counterV1, 'd0').increment({ by: 1 });
  // …and the page's traffic shows that call among v1's, served through v2's past SO (1 of 7).
  const v1 = page.locator('tr[data-version="counter@1"]');
  await v1.locator('td:nth-child(2)', { hasText: /^7$/ }).waitFor({ timeout: 15_000 });
  assert.is(await v1.locator('td:nth-child(3)').innerText(), '14%');
  mkdirSync(output, { recursive: true });
  const file = join(output, 'dashboard.png');
  await page.screenshot({ path: file, fullPage: true });
  assert.ok(existsSync(file));
  console.log(`dashboard screenshot: ${file}`);
});

test('dashboard - `molt dashboard` serves the page and says whether its buttons act', async ({ nats }) => {
  const child = spawnScript('bin/molt.js', ['dashboard', '--nats', nats.url, '--service', 'counters', '--port', '0'], { MOLT_LOG: 'warn' });
  let stopped = false;
  try {
    const line = await child.waitFor(/molt dashboard for counters on http:\/\/127\.0\.0\.1:(\d+)\/ \(pause, resume and abort act\)/, 30_000);
    const port = /:(\d+)\//.exec(line)![1];
    const page = await (await fetch(`http://127.0.0.1:${port}/`, { signal: AbortSignal.timeout(10_000) })).text();
    assert.match(page, /<title>molt dashboard: counters<\/title>/);
  } finally {
    // Ctrl-C (SIGTERM here) ends it; if it ever does not, the test says so rather than wait for good.
    stopped = await Promise.race([child.kill('SIGTERM').then(() => true), new Promise<boolean>((r) => setTimeout(() => r(false), 15_000))]);
    if (!stopped) await child.kill('SIGKILL');
  }
  assert.ok(stopped, `molt dashboard did not exit within 15 s of SIGTERM; its output:\n${child.output().slice(-2000)}`);
});

test('dashboard - without the operator\'s credentials it is read only, and says so', async ({ browser }) => {
  const passwords = { MOLT_OPERATOR_PASSWORD: 'op-secret', MOLT_PUBLISHER_PASSWORD: 'pub-secret', MOLT_NODE_PASSWORD: 'node-secret', MOLT_CALLER_PASSWORD: 'caller-secret' };
  Object.assign(process.env, passwords); // the server reads the passwords from its environment
  const secured = await startEmbeddedNats({ config: permissionsConfig({ service: 'counters' }) });
  const operator = await connectNats({ servers: secured.url, user: 'operator', pass: 'op-secret', inboxPrefix: '_MOLT_TOOLS' });
  const node = await connectNats({ servers: secured.url, user: 'node', pass: 'node-secret', inboxPrefix: '_MOLT_NODE.n1' });
  const dashboards: Dashboard[] = [];
  try {
    await setupServiceBuckets(operator, 'counters');
    const readOnly = await startDashboard({ nc: node, udb: await openUdbFor(node, 'counters'), service: 'counters', port: 0 });
    dashboards.push(readOnly);
    assert.is(readOnly.view()?.control.allowed, false);
    assert.match(readOnly.view()!.control.why, /without the operator's credentials/);
    const refused = await fetch(`http://127.0.0.1:${readOnly.port}/api/rollouts/counter@2/pause`, { method: 'POST', headers: { 'x-molt-dashboard': '1' } });
    assert.is(refused.status, 403);
    assert.match(JSON.stringify(await refused.json()), /operator's credentials/);
    const page = await browser.newPage();
    await page.goto(`http://127.0.0.1:${readOnly.port}/`);
    await page.locator('#status', { hasText: 'Read only' }).waitFor({ timeout: 10_000 });
    await page.close();

    const asOperator = await startDashboard({ nc: operator, udb: await openUdbFor(operator, 'counters'), service: 'counters', port: 0 });
    dashboards.push(asOperator);
    assert.is(asOperator.view()?.control.allowed, true);
    // A request from another origin's page lacks the dashboard's header: refused.
    const foreign = await fetch(`http://127.0.0.1:${asOperator.port}/api/rollouts/counter@2/pause`, { method: 'POST' });
    assert.is(foreign.status, 403);
  } finally {
    for (const d of dashboards) await d.close();
    await operator.close();
    await node.close();
    await secured.stop();
  }
});

test.run();
