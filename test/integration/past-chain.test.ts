/**
 * Chained past SOs on a live node, through NATS (issue 19): a node that
 * upgrades colorset 1→2→3→4 in place keeps answering every caller version the
 * same across each upgrade (the identity condition), and at v4 serves v1
 * callers through the past SOs of v2, v3 and v4 — actors carried eagerly by
 * the upgrades and actors carried lazily through the TF chain alike.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import fc from 'fast-check';
import { Kvm } from '@nats-io/kv';
import { connect } from '@nats-io/transport-node';
import { createClient, createNode, createSuperjsonCodec, isMoltError, silentLogger, type MoltClient } from '../../runtime/index.ts';
import colors from '../fixtures/colorset-chain.ts';
import { startEmbeddedNats, type EmbeddedNats } from '../support/nats.ts';

const test = suite<{ nats: EmbeddedNats; client: MoltClient }>('past SO chain');

test.before(async (ctx) => {
  ctx.nats = await startEmbeddedNats();
  ctx.client = await createClient({ service: 'colors', nats: { servers: ctx.nats.url } });
});
test.after(async (ctx) => {
  await ctx.client.close();
  await ctx.nats.stop();
});

interface Call {
  version: number;
  message: string;
  request: Record<string, unknown>;
}

const xs = [0, 1, 2, 3];
/** Every read of each version. */
const readsOf: Record<number, Call[]> = {
  1: [...xs.map((x) => ({ version: 1, message: 'contains', request: { x } })), { version: 1, message: 'elements', request: {} }],
  2: [...xs.map((x) => ({ version: 2, message: 'getColor', request: { x } })), { version: 2, message: 'elements', request: {} }],
  3: [...xs.map((x) => ({ version: 3, message: 'colorOf', request: { x } })), { version: 3, message: 'size', request: {} }],
  4: [...xs.map((x) => ({ version: 4, message: 'contains', request: { x } })), { version: 4, message: 'size', request: {} }],
};

/** A writing call of one of `versions`, drawn from a seeded generator (the run is the same every time). */
function writes(versions: number[], count: number, seed: number): Call[] {
  const x = fc.constantFrom(...xs);
  const colour = fc.constantFrom('red', 'green');
  const byVersion: Record<number, fc.Arbitrary<Call>> = {
    1: fc.oneof(x.map((v) => ({ version: 1, message: 'insert', request: { x: v } })), x.map((v) => ({ version: 1, message: 'delete', request: { x: v } }))),
    2: fc.oneof(fc.tuple(x, colour).map(([v, c]) => ({ version: 2, message: 'insertColor', request: { x: v, color: c } })), x.map((v) => ({ version: 2, message: 'delete', request: { x: v } }))),
    3: fc.oneof(fc.tuple(x, colour).map(([v, c]) => ({ version: 3, message: 'put', request: { x: v, color: c } })), x.map((v) => ({ version: 3, message: 'delete', request: { x: v } }))),
    4: fc.oneof(x.map((v) => ({ version: 4, message: 'insert', request: { x: v } })), x.map((v) => ({ version: 4, message: 'delete', request: { x: v } }))),
  };
  return fc.sample(fc.oneof(...versions.map((v) => byVersion[v]!)), { numRuns: count, seed });
}

/** What each read answers now, by read (a disallowed read has no answer to compare). */
async function readAll(client: MoltClient, key: string, versions: number[]): Promise<Map<string, unknown>> {
  const out = new Map<string, unknown>();
  for (const read of versions.flatMap((v) => readsOf[v]!)) {
    const answer = await client.call('colorset', read.version, key, read.message, read.request).catch((e) => {
      if (isMoltError(e, 'Disallowed')) return '<disallowed>';
      throw e;
    });
    out.set(JSON.stringify(read), answer);
  }
  return out;
}

function assertSameReads(before: Map<string, unknown>, after: Map<string, unknown>, what: string): void {
  for (const [read, answer] of before) {
    const now = after.get(read);
    if (answer === '<disallowed>' || now === '<disallowed>' || !after.has(read)) continue;
    assert.equal(now, answer, `${what}: ${read} answered ${JSON.stringify(answer)} before and ${JSON.stringify(now)} after`);
  }
}

async function eventually(check: () => boolean, what: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

async function readRecord(url: string, key: string): Promise<{ v: number; so?: { past?: unknown } } | undefined> {
  const nc = await connect({ servers: url });
  try {
    const entry = await (await new Kvm(nc).open('molt_colors_state')).get(`colorset.${key}`);
    return entry?.value.length ? (createSuperjsonCodec().decode(entry.value) as { v: number; so?: { past?: unknown } }) : undefined;
  } finally {
    await nc.close();
  }
}

test('v1 callers of a node upgraded 1→2→3→4 in place: every reader answers the same across each upgrade, and v1 is served through three past SOs', async ({ nats, client }) => {
  // The 'idle' actor is out of memory at each upgrade and is carried lazily
  // (TF 1→2→3→4 at once) when next called; 'busy' is resident and carried by
  // each upgrade in turn.
  const node = await createNode({ service: colors, versions: { colorset: 1 }, nats: { servers: nats.url }, passivateAfterMs: 1000, logger: silentLogger });
  try {
    const served = (v: number) => [1, 2, 3, 4].filter((u) => u <= v + 2);
    const idle = writes([1, 2, 3], 20, 1);
    for (const c of idle) await client.call('colorset', c.version, 'idle', c.message, c.request);
    const idleAtV1 = await readAll(client, 'idle', [1, 2, 3]);
    await eventually(() => node.status().types.colorset?.resident === 0, 'the idle actor is passivated', 10_000);

    for (let at = 1; at < 4; at++) {
      for (const c of writes(served(at), 20, 100 + at)) await client.call('colorset', c.version, 'busy', c.message, c.request);
      const before = await readAll(client, 'busy', served(at));
      const result = await node.upgrade('colorset', at + 1);
      assert.ok(result.transformed >= 1, `the resident actor was carried to v${at + 1}`);
      assert.is((await readRecord(nats.url, 'busy'))?.v, at + 1, `stored at v${at + 1}`);
      assertSameReads(before, await readAll(client, 'busy', served(at + 1)), `upgrade ${at}→${at + 1}`);
    }

    assert.equal(node.status().types.colorset?.served, [1, 2, 3, 4], 'a v4 node serves v1, v2 and v3 through past SOs');
    // The idle actor was written at v1 and never resident during an upgrade.
    assert.is((await readRecord(nats.url, 'idle'))?.v, 1, 'still stored at v1');
    assertSameReads(idleAtV1, await readAll(client, 'idle', [1, 2, 3]), 'loaded at v4 through TF 1→2→3→4');

    // The sequence requirement along the chain, on the v4 node: a v2 caller's
    // colour, a v4 caller's delete, a v1 caller's insert.
    await client.call('colorset', 2, 'seq', 'insertColor', { x: 7, color: 'red' });
    assert.is(await client.call('colorset', 1, 'seq', 'contains', { x: 7 }), true);
    assert.is(await client.call('colorset', 3, 'seq', 'colorOf', { x: 7 }), 'red');
    await client.call('colorset', 4, 'seq', 'delete', { x: 7 });
    await client.call('colorset', 1, 'seq', 'insert', { x: 7 });
    assert.is(await client.call('colorset', 2, 'seq', 'getColor', { x: 7 }), 'none', 'reinserted by a v1 caller after a v4 delete: the default colour, never red');
    assert.equal((await readRecord(nats.url, 'seq'))?.so?.past, { 7: 'none' }, 'the past SO of v4 keeps the colours in the actor record');
  } finally {
    await node.stop();
  }
});

test.run();
