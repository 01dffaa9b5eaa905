/**
 * NATS services discovery, from the bare NATS client: a node answers
 * `$SRV.PING`, `$SRV.INFO` and `$SRV.STATS` (every service, by service name,
 * by name and node id) in the NATS micro format, listing Molt's endpoints,
 * the versions each serves, and the shard count — and, as for calls, never
 * answers into a reply subject that is not a caller inbox.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { connect, createInbox, type Msg, type NatsConnection } from '@nats-io/transport-node';
import { Kvm } from '@nats-io/kv';
import { createNode, silentLogger, type MoltNode } from '../../runtime/index.ts';
import { bucketNames, encodeKey, shardOf } from '../../runtime/internal.ts';
import service from '../fixtures/counter.ts';
import { counterV2 } from '../fixtures/counter-v2.ts';
import { startEmbeddedNats, type EmbeddedNats } from '../support/nats.ts';
import { rawCall } from '../support/wire.ts';
import { connect as connectV2 } from 'nats';

const test = suite<{ nats: EmbeddedNats; nodes: MoltNode[]; nc: NatsConnection }>('discovery');

test.before(async (ctx) => {
  ctx.nats = await startEmbeddedNats();
  ctx.nodes = [await createNode({ service, nats: { servers: ctx.nats.url }, logger: silentLogger, shards: 16 })];
  ctx.nc = await connect({ servers: ctx.nats.url });
});

test.after(async (ctx) => {
  await ctx.nc.close();
  for (const node of ctx.nodes) await node.stop();
  await ctx.nats.stop();
});

const decode = (msg: Msg) => JSON.parse(new TextDecoder().decode(msg.data)) as any;

/** Publishes one request and collects replies until `count` have arrived (or 5 s passed). */
async function gather(nc: NatsConnection, subject: string, count: number): Promise<any[]> {
  const inbox = createInbox();
  const replies: any[] = [];
  const sub = nc.subscribe(inbox);
  nc.publish(subject, new Uint8Array(0), { reply: inbox });
  const timer = setTimeout(() => sub.unsubscribe(), 5000);
  for await (const msg of sub) {
    replies.push(decode(msg));
    if (replies.length === count) break;
  }
  clearTimeout(timer);
  sub.unsubscribe();
  return replies;
}

test('PING from the bare client: $SRV.PING, by name, by name and id', async ({ nc, nodes }) => {
  const id = nodes[0]!.id;
  for (const subject of ['$SRV.PING', '$SRV.PING.counters', `$SRV.PING.counters.${id}`]) {
    const reply = decode(await nc.request(subject, new Uint8Array(0), { timeout: 5000 }));
    assert.is(reply.type, 'io.nats.micro.v1.ping_response', subject);
    assert.is(reply.name, 'counters');
    assert.is(reply.id, id);
    assert.match(reply.version, /^\d+\.\d+\.\d+/);
    assert.is(reply.metadata['molt.shards'], '16', 'the shard count, without provoking an error');
    assert.is(reply.metadata['molt.protocol'], '1');
  }
});

test('a plain NATS request to $SRV.INFO.<service> lists Molt\'s endpoints and the versions they serve', async ({ nc, nodes }) => {
  const info = decode(await nc.request('$SRV.INFO.counters', new Uint8Array(0), { timeout: 5000 }));
  assert.is(info.type, 'io.nats.micro.v1.info_response');
  assert.is(info.id, nodes[0]!.id);
  assert.equal(
    info.endpoints.map((e: any) => [e.name, e.subject, e.metadata['molt.version'], e.metadata['molt.served'], e.metadata['molt.volatile']]),
    [
      ['counter', 'molt.counters.counter.*.*', '1', '1', 'false'],
      ['cache', 'molt.counters.cache.*.*', '1', '1', 'true'],
    ],
  );
  // A node that loads version 2 serves its callers through the future SO: discovery says so.
  nodes[0]!.loadVersion(counterV2);
  const after = decode(await nc.request(`$SRV.INFO.counters.${nodes[0]!.id}`, new Uint8Array(0), { timeout: 5000 }));
  assert.is(after.endpoints[0].metadata['molt.served'], '1,2');
});

test('STATS counts the calls of each endpoint', async ({ nc, nodes }) => {
  for (let i = 0; i < 3; i++) {
    const key = `stats-${i}`;
    const reply = await rawCall(nc, { key, shard: shardOf(encodeKey(key), 16), message: 'get' });
    assert.is(reply.status, 'ok', reply.text);
  }
  const stats = decode(await nc.request('$SRV.STATS.counters', new Uint8Array(0), { timeout: 5000 }));
  assert.is(stats.type, 'io.nats.micro.v1.stats_response');
  assert.is(stats.id, nodes[0]!.id);
  assert.ok(!Number.isNaN(Date.parse(stats.started)));
  const counter = stats.endpoints.find((e: any) => e.name === 'counter');
  assert.ok(counter.num_requests >= 3, JSON.stringify(counter));
  assert.is(counter.num_errors, 0);
  assert.is(counter.data.ownedShards, 16);
});

test('another service name, another id, an unknown verb: no node answers', async ({ nc, nodes }) => {
  for (const subject of ['$SRV.INFO.other', `$SRV.INFO.counters.not-${nodes[0]!.id}`, '$SRV.SCHEMA.counters']) {
    try {
      await nc.request(subject, new Uint8Array(0), { timeout: 2000 });
      assert.unreachable(`${subject} must not be answered`);
    } catch (e) {
      assert.ok((e as { isNoResponders?: () => boolean }).isNoResponders?.() === true, `${subject}: ${String(e)}`);
    }
  }
});

test('every node answers $SRV.PING.<service>, each with its own id', async (ctx) => {
  ctx.nodes.push(await createNode({ service, nats: { servers: ctx.nats.url }, logger: silentLogger, shards: 16 }));
  const replies = await gather(ctx.nc, '$SRV.PING.counters', 2);
  assert.equal(replies.map((r) => r.id).sort(), ctx.nodes.map((n) => n.id).sort());
});

/** Every key of `reference` is in `ours`, with a value of the same JSON type (recursively for objects, and for the first element of arrays). */
function sameShape(ours: any, reference: any, path: string): void {
  for (const [key, value] of Object.entries(reference)) {
    const at = `${path}.${key}`;
    assert.ok(key in ours, `${at} is missing: ${JSON.stringify(ours)}`);
    const kind = (v: unknown) => (Array.isArray(v) ? 'array' : v === null ? 'null' : typeof v);
    assert.is(kind(ours[key]), kind(value), at);
    if (kind(value) === 'object' && key !== 'metadata') sameShape(ours[key], value, at);
    if (kind(value) === 'array' && (value as unknown[]).length > 0) sameShape(ours[key][0], (value as unknown[])[0], `${at}[0]`);
  }
}

test('the NATS services client of nats.js lists Molt, in the shape of a nats.js service of its own', async (ctx) => {
  const nc = await connectV2({ servers: ctx.nats.url });
  try {
    // A service made with the nats.js services framework, for reference.
    const reference = await nc.services.add({ name: 'reference', version: '1.0.0', metadata: { a: 'b' } });
    reference.addEndpoint('echo', (_err, msg) => msg.respond(msg.data));
    const monitor = nc.services.client();
    const collect = async (verb: 'ping' | 'info' | 'stats', name: string) => {
      const out: any[] = [];
      for await (const r of await monitor[verb](name)) out.push(r);
      return out;
    };
    for (const verb of ['ping', 'info', 'stats'] as const) {
      const [ref] = await collect(verb, 'reference');
      const molt = await collect(verb, 'counters');
      assert.equal(molt.map((r) => r.id).sort(), ctx.nodes.map((n) => n.id).sort(), `${verb}: every node answers the monitoring client`);
      for (const r of molt) sameShape(r, ref, verb);
    }
    await reference.stop();
  } finally {
    await nc.close();
  }
});

test('a discovery request whose reply subject is not a caller inbox is not answered (no write through the reply)', async ({ nc, nodes }) => {
  const kv = await new Kvm(nc).open(bucketNames('counters').state);
  const key = 'counter.discovery-target';
  nc.publish('$SRV.INFO.counters', new Uint8Array(0), { reply: `$KV.${bucketNames('counters').state}.${key}` });
  await nc.flush();
  // Answers to a request sent afterwards prove every node has handled the one before (one subscription, in order).
  assert.is((await gather(nc, '$SRV.INFO.counters', nodes.length)).length, nodes.length);
  assert.is(await kv.get(key), null, 'the INFO reply was not written into actor state');
});

test.run();
