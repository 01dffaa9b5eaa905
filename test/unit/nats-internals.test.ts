/**
 * The assumptions runtime/nats/internals.ts makes about nats.js's inside,
 * checked against the installed library and a real server: if an upgrade of
 * nats.js changes one, this test names it.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { connect, headers as natsHeaders } from '@nats-io/transport-node';
import { headerBytes, preEncodedHeaders, rawHeaderBytes, stopWatch } from '../../runtime/nats/internals.ts';
import { Kvm } from '@nats-io/kv';
import { jetstreamManager } from '@nats-io/jetstream';
import { startEmbeddedNats } from '../support/nats.ts';

const text = (b: Uint8Array | undefined | 'unknown') => (b === undefined || b === 'unknown' ? b : new TextDecoder().decode(b));

test('nats internals - a received message keeps its raw header block; published pre-encoded headers arrive as those bytes', async () => {
  const nats = await startEmbeddedNats();
  const nc = await connect({ servers: nats.url });
  try {
    const block = 'NATS/1.0\r\nMolt-Version: 3\r\nMolt-Message: get\r\n\r\n';
    const received = new Promise<{ raw: ReturnType<typeof rawHeaderBytes>; parsed: string | undefined }>((resolve) => {
      nc.subscribe('shape.with', { max: 1, callback: (_e, msg) => resolve({ raw: rawHeaderBytes(msg), parsed: msg.headers?.get('Molt-Message') }) });
    });
    const none = new Promise<ReturnType<typeof rawHeaderBytes>>((resolve) => {
      nc.subscribe('shape.without', { max: 1, callback: (_e, msg) => resolve(rawHeaderBytes(msg)) });
    });
    nc.publish('shape.with', new Uint8Array([1]), { headers: preEncodedHeaders(new TextEncoder().encode(block)) });
    nc.publish('shape.without', new Uint8Array([1]));
    const got = await received;
    assert.is.not(got.raw, 'unknown', 'MsgImpl keeps _rdata and _msg.hdr');
    assert.is(text(got.raw), block, 'the raw header bytes are the published ones');
    assert.is(got.parsed, 'get', 'and nats.js itself reads them');
    assert.is(await none, undefined, 'a message without headers has none');
  } finally {
    await nc.close();
    await nats.stop();
  }
});

test('nats internals - a header map encodes through encode()', () => {
  const h = natsHeaders();
  h.set('Molt-Version', '1');
  const bytes = headerBytes(h);
  assert.ok(bytes, 'MsgHdrs has encode()');
  assert.is(new TextDecoder().decode(bytes), 'NATS/1.0\r\nMolt-Version: 1\r\n\r\n');
});

test('nats internals - a KV watch keeps its consumer in _data; stopWatch deletes it', async () => {
  const nats = await startEmbeddedNats();
  const nc = await connect({ servers: nats.url });
  try {
    const kv = await new Kvm(nc).create('internals_watch');
    const jsm = await jetstreamManager(nc);
    const consumers = async () => (await jsm.streams.info('KV_internals_watch')).state.consumer_count;
    const until = async (count: number, what: string) => {
      for (const end = Date.now() + 5000; (await consumers()) !== count; await new Promise((r) => setTimeout(r, 20))) {
        if (Date.now() > end) assert.unreachable(`${what}: ${await consumers()} consumers, expected ${count}`);
      }
    };
    await kv.put('a', '1');
    const watcher = await kv.watch({ key: '>' });
    const seen: string[] = [];
    void (async () => {
      for await (const e of watcher) seen.push(e.key);
    })();
    await until(1, 'the watch runs on one consumer');
    assert.type((watcher as unknown as { _data?: { delete?: unknown } })._data?.delete, 'function', 'the watch keeps its consumer in _data');
    stopWatch(watcher);
    await until(0, 'after stopWatch');
    // A plain stop leaves the consumer: what stopWatch is for.
    const plain = await kv.watch({ key: '>' });
    await until(1, 'a second watch');
    plain.stop();
    await new Promise((r) => setTimeout(r, 200));
    assert.is(await consumers(), 1, "nats.js's stop leaves the consumer on the server");
  } finally {
    await nc.close();
    await nats.stop();
  }
});

test.run();
