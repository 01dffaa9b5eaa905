/**
 * What a client written from docs/protocol.md alone relies on, from the bare
 * NATS client: the data of the errors it provokes carries what the document
 * says, and the header rules the document settles hold.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { connect, headers as natsHeaders, type NatsConnection } from '@nats-io/transport-node';
import { Kvm } from '@nats-io/kv';
import { createNode, silentLogger, type MoltNode } from '../../runtime/index.ts';
import { bucketNames, DEFAULT_SHARDS, encodeKey, shardOf, stateKey } from '../../runtime/internal.ts';
import { createSuperjsonCodec } from '../../runtime/wire/codec.ts';
import service from '../fixtures/counter.ts';
import { startEmbeddedNats, type EmbeddedNats } from '../support/nats.ts';
import { rawCall } from '../support/wire.ts';

const test = suite<{ nats: EmbeddedNats; node: MoltNode; nc: NatsConnection }>('protocol errors');

test.before(async (ctx) => {
  ctx.nats = await startEmbeddedNats();
  ctx.node = await createNode({ service, nats: { servers: ctx.nats.url }, logger: silentLogger });
  ctx.nc = await connect({ servers: ctx.nats.url });
});

test.after(async (ctx) => {
  await ctx.nc.close();
  await ctx.node.stop();
  await ctx.nats.stop();
});

test('InvalidKey - data.token holds the whole token, and the message says how long it is', async ({ nc }) => {
  const token = 'k'.repeat(301); // raw keys are at most 200 characters
  const reply = await rawCall(nc, { token, shard: shardOf(token, DEFAULT_SHARDS) });
  assert.is(reply.json.code, 'InvalidKey', reply.text);
  assert.is(reply.json.data.token, token);
  assert.match(reply.json.message, /301 characters/);
});

test('VersionUnsupported - state written by a newer version carries data.served, data.current and data.stateVersion', async ({ nc }) => {
  const key = 'from-the-future';
  const kv = await new Kvm(nc).open(bucketNames('counters').state);
  await kv.put(stateKey('counter', encodeKey(key)), createSuperjsonCodec().encode({ v: 7, value: {}, context: { count: 1 } }));
  const reply = await rawCall(nc, { key });
  assert.is(reply.json.code, 'VersionUnsupported', reply.text);
  assert.is(reply.json.retryable, true);
  assert.equal(reply.json.data.served, [1]);
  assert.is(reply.json.data.current, 1);
  assert.is(reply.json.data.stateVersion, 7);
});

/** A call with a hand-written header block, so names and repeats are exactly as given. */
async function withHeaders(nc: NatsConnection, lines: Array<[string, string]>): Promise<{ status?: string; code?: string; value?: unknown }> {
  const h = natsHeaders();
  for (const [name, value] of lines) h.append(name, value);
  const subject = `molt.counters.counter.${shardOf('hdr', DEFAULT_SHARDS)}.hdr`;
  const reply = await nc.request(subject, new TextEncoder().encode('{"json":{}}'), { headers: h, timeout: 5000 });
  const json = (JSON.parse(new TextDecoder().decode(reply.data)) as { json: { code?: string } | unknown }).json;
  const status = reply.headers?.get('Molt-Status');
  return status === 'error' ? { status, code: (json as { code: string }).code } : { status, value: json };
}

test('headers - names match exactly, the first of a repeated header counts, an empty value is none', async ({ nc }) => {
  assert.equal(await withHeaders(nc, [['molt-version', '1'], ['Molt-Message', 'get']]), { status: 'error', code: 'InvalidVersion' }, 'lower-case name: absent');
  assert.equal(await withHeaders(nc, [['Molt-Version', '1'], ['Molt-Version', '9'], ['Molt-Message', 'get']]), { status: 'ok', value: 0 }, 'repeated: the first');
  assert.equal(await withHeaders(nc, [['Molt-Version', '1'], ['Molt-Message', '']]), { status: 'error', code: 'InvalidHeader' }, 'empty message: missing');
});

test.run();
