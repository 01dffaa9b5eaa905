/**
 * Issue 7, part 2: node failures during the steps of an in-place upgrade,
 * under load from callers of both versions.
 *
 * A node process (test/fixtures/upgrade-steps-node.ts) serves 1,500 resident
 * counters at version 1 with version 2 loaded; clients of v1 and v2 keep
 * incrementing. The node upgrades to v2 and is killed with SIGKILL at one
 * step: in the middle of transforming its resident actors, or right after
 * the upgrade returned (swapped and reported). It is restarted with the same
 * `--id`. Then, reading the KV directly (records are superjson
 * `{ json: { v, value, context, so? } }` in `molt_counters_state`, key
 * `counter.<key>`): every record is whole at one version, every acknowledged
 * increment is present and nothing else (acked ≤ count ≤ acked + uncertain),
 * and once every actor has been touched again all are at version 2, carried
 * by exactly one transform.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { Kvm, type KV } from '@nats-io/kv';
import { createClient, createSuperjsonCodec, type MoltClient } from '../../runtime/index.ts';
import { spawnScript, startEmbeddedNats, type ChildNode, type EmbeddedNats } from '../support/nats.ts';
import { History, runOpenLoad } from '../support/load.ts';

const ACTORS = 1500;
const codec = createSuperjsonCodec();

const test = suite<{ nats: EmbeddedNats; nc: NatsConnection; client: MoltClient; kv: KV }>('upgrade kill');

test.before.each(async (ctx) => {
  ctx.nats = await startEmbeddedNats();
  ctx.nc = await connect({ servers: ctx.nats.url });
  ctx.client = await createClient({ service: 'counters', nats: { servers: ctx.nats.url }, timeoutMs: 3000, retryUnavailableMs: 8000 });
});

test.after.each(async (ctx) => {
  await ctx.client.close().catch(() => undefined);
  await ctx.nc.close().catch(() => undefined);
  await ctx.nats.stop();
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Stored {
  v: number;
  context: { count: number; steps?: number; via?: string[] };
}

async function readAll(kv: KV): Promise<Map<string, Stored>> {
  const out = new Map<string, Stored>();
  const keys: string[] = [];
  for await (const k of await kv.keys('counter.>')) keys.push(k);
  await Promise.all(
    keys.map(async (k) => {
      const e = await kv.get(k);
      if (e && e.operation === 'PUT') out.set(k.slice('counter.'.length), codec.decode(e.value) as Stored);
    }),
  );
  return out;
}

function versions(records: Map<string, Stored>): Record<number, number> {
  const counts: Record<number, number> = {};
  for (const r of records.values()) counts[r.v] = (counts[r.v] ?? 0) + 1;
  return counts;
}

async function scenario(ctx: { nats: EmbeddedNats; nc: NatsConnection; client: MoltClient }, id: string, killAt: RegExp): Promise<string> {
  const { nats, nc, client } = ctx;
  const start = () => spawnScript('test/fixtures/upgrade-steps-node.ts', [nats.url, id]);
  let node: ChildNode = start();
  try {
    await node.waitFor(new RegExp(`ready ${id} at 1`), 30_000);
    const keys = Array.from({ length: ACTORS }, (_, i) => `${id}-${i}`);
    const history = new History();
    // Every actor resident with acknowledged state.
    for (let i = 0; i < keys.length; i += 250) {
      await Promise.all(keys.slice(i, i + 250).map((key) => history.run(key, 'inc', () => client.call('counter', 1, key, 'increment', { by: 1 }))));
    }
    // Callers of both versions keep going through the upgrade (v2 through the future SO before it).
    const loadKeys = keys.slice(0, 200);
    const v1 = runOpenLoad({ client, keys: loadKeys, ratePerSec: 100, readShare: 0.2, version: 1 }, history);
    const v2 = runOpenLoad({ client, keys: loadKeys, ratePerSec: 100, readShare: 0.2, version: 2 }, history);
    await sleep(500);

    node.process.kill('SIGUSR2');
    const step = await node.waitFor(killAt, 30_000);
    await node.kill('SIGKILL');
    const kv = await new Kvm(nc).open('molt_counters_state');
    const atKill = versions(await readAll(kv));

    node = start();
    const ready = await node.waitFor(new RegExp(`ready ${id} at [12]`), 30_000);
    // The restarted node finishes what the killed one started: it serves version 2.
    assert.match(ready, / at 2$/, `the restarted node resumes the upgrade at version 2 (${ready})`);
    await sleep(1500);
    await v1.stop();
    await v2.stop();

    // Every record whole at one version, every acknowledged increment present.
    let records = await readAll(kv);
    const afterRestart = versions(records);
    const finals = new Map([...records].map(([k, r]) => [k, r.context.count]));
    const { lost, phantom } = history.checkFinal(finals);
    for (const [key, r] of records) {
      assert.ok(r.v === 1 || r.v === 2, `${key} at version ${r.v}`);
      if (r.v === 2) assert.equal(r.context.via, ['tf2'], `${key}: v2 state carried by one transform`);
      else assert.is(r.context.via, undefined, `${key}: v1 state untouched by any transform`);
    }
    assert.equal(lost, [], 'no acknowledged increment lost');
    assert.equal(phantom, [], 'no increment applied that was not sent');

    // Touch every actor once more (through v1, served natively by the compatible v2): all reach version 2.
    // A touch that failed (a Timeout on a loaded machine) proves nothing either way, so it is sent again.
    let untouched = keys;
    for (let round = 0; round < 5 && untouched.length > 0; round++) {
      const failed: string[] = [];
      for (let i = 0; i < untouched.length; i += 250) {
        const ops = await Promise.all(untouched.slice(i, i + 250).map((key) => history.run(key, 'inc', () => client.call('counter', 1, key, 'increment', { by: 1 }))));
        for (const op of ops) if (!op.ok) failed.push(op.key);
      }
      untouched = failed;
    }
    assert.equal(untouched, [], 'every actor acknowledged a touch');
    records = await readAll(kv);
    const touched = history.checkFinal(new Map([...records].map(([k, r]) => [k, r.context.count])));
    assert.equal(versions(records), { 2: ACTORS }, 'every actor at version 2');
    for (const [key, r] of records) assert.equal(r.context.via, ['tf2'], `${key} carried by exactly one transform`);
    assert.equal(touched.lost, [], 'no acknowledged increment lost after touching');
    assert.equal(touched.phantom, [], 'nothing phantom after touching');
    const totals = [...history.increments().values()].reduce((a, c) => ({ acked: a.acked + c.acked, uncertain: a.uncertain + c.uncertain }), { acked: 0, uncertain: 0 });
    return `killed at '${step}': KV versions at the kill ${JSON.stringify(atKill)}, after restart ${JSON.stringify(afterRestart)}, after touching ${JSON.stringify(versions(records))}; ${history.calls} calls, ${totals.acked} acknowledged increments, ${totals.uncertain} uncertain, failures ${JSON.stringify(history.failuresByCode())}, lost 0`;
  } finally {
    await node.kill('SIGKILL');
  }
}

test('upgrade kill - SIGKILL while transforming resident actors: restart resumes, nothing lost, one version', async (ctx) => {
  const summary = await scenario(ctx, 'uk-tf', /step tf-half/);
  console.log(`upgrade-kill: ${summary}`);
  assert.match(summary, /at the kill \{"1":\d+,"2":\d+\}/, 'the kill came mid-transform: some actors at v1, some at v2');
});

test('upgrade kill - SIGKILL right after the upgrade returned (swapped and reported): nothing lost, one version', async (ctx) => {
  const summary = await scenario(ctx, 'uk-swap', /step upgraded .*/);
  console.log(`upgrade-kill: ${summary}`);
});

test.run();
