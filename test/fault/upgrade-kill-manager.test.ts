/**
 * Issue 7, part 2 (through the upgrade manager): a node taking part in a
 * published rollout is SIGKILLed at the steps the programmatic test cannot
 * reach, under load from callers of v1 and v2:
 *
 * - **after loading the bundle** (the rollout is published paused: the node
 *   verified and loaded counter@2, its future SO serves v2 callers, and it
 *   holds), then the rollout is resumed after the restart;
 * - **after swapping, before the manager reports**: killed the moment the
 *   node's UDB record shows counter@2, before its progress record says
 *   `upgraded`.
 *
 * Restarted with the same `--id`, the node converges: the rollout reaches
 * `done`, the node runs counter@2, every KV record is whole at one version,
 * acked ≤ count ≤ acked + uncertain for every counter, and after touching
 * every actor all are at version 2.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { Kvm, type KV } from '@nats-io/kv';
import type { NatsConnection } from '@nats-io/transport-node';
import { createClient, createSuperjsonCodec, type MoltClient } from '../../runtime/index.ts';
import type { Udb } from '../../runtime/udb/index.ts';
import { publishUpgrade } from '../../runtime/server/publish.ts';
import { controlRollout } from '../../runtime/operate/rollouts.ts';
import { startEmbeddedNats, type ChildNode, type EmbeddedNats } from '../support/nats.ts';
import { History, runOpenLoad } from '../support/load.ts';
import { eventually, killAll, openCounters, startUpgradableNode, testPublisher } from '../support/upgrades.ts';

const ACTORS = 300;
const codec = createSuperjsonCodec();

interface Ctx {
  nats: EmbeddedNats;
  nc: NatsConnection;
  udb: Udb;
  client: MoltClient;
  nodes: ChildNode[];
}
const test = suite<Ctx>('upgrade kill (manager)');

test.before.each(async (ctx) => {
  ctx.nats = await startEmbeddedNats();
  ({ nc: ctx.nc, udb: ctx.udb } = await openCounters(ctx.nats.url));
  ctx.client = await createClient({ service: 'counters', nats: { servers: ctx.nats.url }, timeoutMs: 3000, retryUnavailableMs: 8000 });
  ctx.nodes = [];
});

test.after.each(async (ctx) => {
  await ctx.client.close().catch(() => undefined);
  await killAll(ctx.nodes, 'SIGKILL');
  await ctx.nc.drain().catch(() => undefined);
  await ctx.nats.stop();
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function readAll(kv: KV): Promise<Map<string, { v: number; context: { count: number; via?: string[] } }>> {
  const out = new Map<string, { v: number; context: { count: number; via?: string[] } }>();
  const keys: string[] = [];
  for await (const k of await kv.keys('counter.>')) keys.push(k);
  for (const k of keys) {
    const e = await kv.get(k);
    if (e && e.operation === 'PUT') out.set(k.slice('counter.'.length), codec.decode(e.value) as { v: number; context: { count: number; via?: string[] } });
  }
  return out;
}

/** Runs one scenario: start, load, publish, kill at `killWhen`, restart, converge, check. */
async function scenario(ctx: Ctx, id: string, options: { paused: boolean; killWhen: () => Promise<void>; afterRestart?: (rolloutId: string) => Promise<void> }): Promise<string> {
  const publisher = testPublisher();
  const start = async () => {
    const n = await startUpgradableNode(ctx.nats.url, id, { trust: [publisher.publicKey] });
    ctx.nodes.push(n);
    return n;
  };
  let node = await start();
  const keys = Array.from({ length: ACTORS }, (_, i) => `${id}-${i}`);
  const history = new History();
  await Promise.all(keys.map((key) => history.run(key, 'inc', () => ctx.client.call('counter', 1, key, 'increment', { by: 1 }))));
  const v1 = runOpenLoad({ client: ctx.client, keys: keys.slice(0, 100), ratePerSec: 80, readShare: 0.2, version: 1 }, history);
  const v2 = runOpenLoad({ client: ctx.client, keys: keys.slice(0, 100), ratePerSec: 80, readShare: 0.2, version: 2 }, history);
  try {
    const published = await publishUpgrade({ nats: { servers: ctx.nats.url }, module: 'test/fixtures/counter-v2.ts', signer: publisher.signer, schedule: { name: 'immediate', params: {} }, paused: options.paused });
    const rolloutId = published.upgrades[0]!.rolloutId;
    await options.killWhen.call(null);
    await node.kill('SIGKILL');
    const killedStep = (await ctx.udb.progress(rolloutId)).find((p) => p.nodeId === id)?.step;
    const killedVersion = (await ctx.udb.nodes()).find((n) => n.id === id)?.versions.counter;
    node = await start();
    await options.afterRestart?.(rolloutId);
    let rollout;
    await eventually(async () => {
      rollout = (await ctx.udb.rollout(rolloutId))?.record;
      return rollout?.state === 'done';
    }, `rollout ${rolloutId} done`, 30_000);
    await eventually(async () => (await ctx.udb.nodes()).find((n) => n.id === id)?.versions.counter === 2, `${id} at counter@2`, 15_000);
    await sleep(1000);
    await v1.stop();
    await v2.stop();

    const kv = await new Kvm(ctx.nc).open('molt_counters_state');
    let records = await readAll(kv);
    const bounds = history.checkFinal(new Map([...records].map(([k, r]) => [k, r.context.count])));
    for (const [key, r] of records) assert.ok(r.v === 1 || r.v === 2, `${key} whole at one version (${r.v})`);
    assert.equal(bounds.lost, [], 'no acknowledged increment lost');
    assert.equal(bounds.phantom, [], 'nothing applied that was not sent');
    await Promise.all(keys.map((key) => history.run(key, 'inc', () => ctx.client.call('counter', 1, key, 'increment', { by: 1 }))));
    records = await readAll(kv);
    const touched = history.checkFinal(new Map([...records].map(([k, r]) => [k, r.context.count])));
    assert.equal([...records.values()].filter((r) => r.v !== 2).length, 0, 'every actor at version 2 after touching');
    assert.equal(touched.lost, [], 'nothing lost after touching');
    // v2 callers get VersionUnsupported (retryable) until the node has loaded counter@2, also after its restart.
    const unexpected = Object.keys(history.failuresByCode()).filter((c) => !['Timeout', 'Unavailable', 'Upgrading', 'VersionUnsupported', 'OutcomeUnknown'].includes(c));
    assert.equal(unexpected, [], `only retryable failures: ${JSON.stringify(history.failuresByCode())}`);
    const totals = [...history.increments().values()].reduce((a, c) => ({ acked: a.acked + c.acked, uncertain: a.uncertain + c.uncertain }), { acked: 0, uncertain: 0 });
    return `killed at progress step '${killedStep}' (node record counter@${killedVersion}); restarted, rollout done; ${history.calls} calls, ${totals.acked} acknowledged increments, ${totals.uncertain} uncertain, failures ${JSON.stringify(history.failuresByCode())}, lost 0; all ${records.size} actors at v2 after touching`;
  } finally {
    await v1.stop();
    await v2.stop();
  }
}

test('upgrade kill (manager) - after loading the bundle: restart, resume, converge, nothing lost', async (ctx) => {
  const summary = await scenario(ctx, 'km-loaded', {
    paused: true,
    killWhen: () =>
      eventually(async () => {
        const node = (await ctx.udb.nodes()).find((n) => n.id === 'km-loaded');
        return node?.known?.counter?.includes(2) === true;
      }, 'counter@2 loaded on the node (future SO installed)', 20_000),
    afterRestart: async (rolloutId) => {
      await eventually(async () => (await ctx.udb.nodes()).find((n) => n.id === 'km-loaded')?.known?.counter?.includes(2) === true, 'reloaded after the restart', 20_000);
      await controlRollout(ctx.udb, rolloutId, 'resume', 'test');
    },
  });
  console.log(`upgrade-kill (manager): ${summary}`);
});

test('upgrade kill (manager) - swapped, before the manager reports: restart converges, nothing lost', async (ctx) => {
  const summary = await scenario(ctx, 'km-swapped', {
    paused: false,
    // The node record says counter@2 the moment the type swapped; the manager's
    // progress record ('upgraded') is written after that.
    killWhen: async () => {
      const kv = await new Kvm(ctx.nc).open('molt_counters_udb');
      const watch = await kv.watch({ key: 'nodes.km-swapped' });
      for await (const e of watch) {
        if (e.operation === 'PUT' && (e.json<{ versions: Record<string, number> }>().versions.counter ?? 0) >= 2) break;
      }
      watch.stop();
    },
  });
  console.log(`upgrade-kill (manager): ${summary}`);
});

test.run();
