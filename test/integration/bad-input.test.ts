/**
 * Bad input (issue 2): every malformed call a foreign client can send gets a
 * typed error reply `{ code, message, retryable, data }` with header
 * `Molt-Status: error`, and changes nothing. Calls are sent with the bare
 * NATS client, exactly as docs/protocol.md tells a client in another
 * language to send them; state is read back through the typed client and
 * straight from KV (the record's revision must not move).
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { createClient, createNode, isMoltError, silentLogger, type MoltClient, type MoltNode } from '../../runtime/index.ts';
import { DEFAULT_SHARDS, encodeKey, shardOf } from '../../runtime/internal.ts';
import service, { counterV1 } from '../fixtures/counter.ts';
import versioned, { counterV2 } from '../fixtures/versioned.ts';
import { startEmbeddedNats, type EmbeddedNats } from '../support/nats.ts';
import { rawCall, stateRevision, type RawReply } from '../support/wire.ts';

/** The main node accepts bodies up to this size, so the oversize case is cheap to send. */
const MAX_PAYLOAD = 4096;

interface Ctx {
  nats: EmbeddedNats;
  node: MoltNode;
  versionedNode: MoltNode;
  client: MoltClient;
  nc: NatsConnection;
}

const test = suite<Ctx>('bad input');

test.before(async (ctx) => {
  ctx.nats = await startEmbeddedNats();
  ctx.node = await createNode({ service, nats: { servers: ctx.nats.url }, maxPayload: MAX_PAYLOAD, logger: silentLogger });
  // A second service on the same NATS whose counter runs version 2 with no simulation objects.
  ctx.versionedNode = await createNode({ service: versioned, nats: { servers: ctx.nats.url }, logger: silentLogger });
  ctx.client = await createClient({ service: 'counters', nats: { servers: ctx.nats.url } });
  ctx.nc = await connect({ servers: ctx.nats.url });
});

test.after(async (ctx) => {
  await ctx.nc.close();
  await ctx.client.close();
  await ctx.versionedNode.stop();
  await ctx.node.stop();
  await ctx.nats.stop();
});

/** Asserts that `reply` is an error reply of `code` in the documented form; returns the error. */
function expectError(reply: RawReply, code: string): { code: string; message: string; retryable: boolean; data: Record<string, unknown> } {
  assert.is(reply.status, 'error', `Molt-Status of ${reply.text}`);
  const e = reply.json;
  assert.type(e, 'object', reply.text);
  assert.is(e.code, code, reply.text);
  assert.type(e.message, 'string');
  assert.ok(e.message.length > 0, 'the error says what went wrong');
  assert.type(e.retryable, 'boolean');
  assert.type(e.data, 'object');
  assert.is(reply.headers['Molt-Protocol'], '1');
  return e;
}

/**
 * Gives actor `key` a known state (count 5), runs `bad`, then checks that the
 * state is unchanged: the typed client reads 5 and the KV revision did not move.
 * Finally checks that the actor still serves.
 */
async function unchanged(ctx: Ctx, key: string, bad: () => Promise<void>): Promise<void> {
  const c = ctx.client.actor(counterV1, key);
  await c.reset();
  await c.increment({ by: 5 });
  const revision = await stateRevision(ctx.nc, 'counters', 'counter', key);
  assert.ok(revision > 0, 'the seeded state is in KV');
  await bad();
  assert.is(await c.get(), 5, `state of '${key}' after the bad call`);
  assert.is(await stateRevision(ctx.nc, 'counters', 'counter', key), revision, `KV revision of '${key}' after the bad call`);
  assert.is(await c.increment({ by: 1 }), 6, 'the actor keeps serving');
}

test('malformed body - bytes that are not a superjson document get MalformedBody', async (ctx) => {
  const bodies: Array<string | Uint8Array> = [
    'not json at all',
    '{"by": 1}', // JSON, but not a superjson document (no "json" field)
    '{"json": {"by": 1}', // truncated
    new Uint8Array([0x7b, 0xff, 0xfe, 0x7d]), // not UTF-8
    '{"json":{"by":1},"meta":{"values":{"by":["nonsense"]}}}', // superjson meta naming no known transformation
  ];
  await unchanged(ctx, 'malformed', async () => {
    for (const body of bodies) {
      const e = expectError(await rawCall(ctx.nc, { key: 'malformed', message: 'increment', body }), 'MalformedBody');
      assert.is(e.retryable, false);
    }
  });
});

test('malformed body - a document whose value is not an object gets MalformedBody', async (ctx) => {
  await unchanged(ctx, 'not-object', async () => {
    for (const body of ['{"json":5}', '{"json":[1,2]}', '{"json":null}', '{"json":"by"}']) {
      const e = expectError(await rawCall(ctx.nc, { key: 'not-object', message: 'increment', body }), 'MalformedBody');
      assert.match(e.message, /object/);
    }
  });
});

test('unknown type - a subject naming no actor type of the service gets UnknownType', async (ctx) => {
  await unchanged(ctx, 'typo', async () => {
    const e = expectError(await rawCall(ctx.nc, { type: 'countr', key: 'typo', message: 'increment', body: '{"json":{"by":1}}' }), 'UnknownType');
    assert.is(e.data.type, 'countr');
    assert.match(e.message, /counter/, 'the error lists the types the service has');
    assert.is(e.retryable, false);
  });
});

test('unknown message - a message name the caller version lacks gets UnknownMessage', async (ctx) => {
  await unchanged(ctx, 'unknown-message', async () => {
    for (const message of ['decrement', 'constructor', '__proto__', 'toString']) {
      const e = expectError(await rawCall(ctx.nc, { key: 'unknown-message', message, body: '{"json":{"by":1}}' }), 'UnknownMessage');
      assert.is(e.data.message, message);
      assert.match(e.message, /increment/, 'the error lists the messages the version has');
    }
  });
});

test('invalid payload - a payload failing its schema gets InvalidPayload naming the field', async (ctx) => {
  await unchanged(ctx, 'bad-payload', async () => {
    const wrongType = expectError(await rawCall(ctx.nc, { key: 'bad-payload', message: 'increment', body: '{"json":{"by":"two"}}' }), 'InvalidPayload');
    assert.is(wrongType.data.path, 'by');
    assert.match(wrongType.message, /'by'/);
    assert.match(wrongType.message, /"two"/, 'the error says what was found');
    const missing = expectError(await rawCall(ctx.nc, { key: 'bad-payload', message: 'increment', body: '{"json":{}}' }), 'InvalidPayload');
    assert.is(missing.data.path, 'by');
    // An empty body means `{}`: the same error.
    const empty = expectError(await rawCall(ctx.nc, { key: 'bad-payload', message: 'increment', body: '' }), 'InvalidPayload');
    assert.is(empty.data.path, 'by');
  });
});

test('missing header - no Molt-Version gets InvalidVersion, no Molt-Message gets InvalidHeader', async (ctx) => {
  await unchanged(ctx, 'no-headers', async () => {
    const e = expectError(await rawCall(ctx.nc, { key: 'no-headers', version: null, message: 'increment', body: '{"json":{"by":1}}' }), 'InvalidVersion');
    assert.match(e.message, /Molt-Version/);
    const m = expectError(await rawCall(ctx.nc, { key: 'no-headers', message: null, body: '{"json":{"by":1}}' }), 'InvalidHeader');
    assert.match(m.message, /Molt-Message/);
  });
});

test('invalid version - a Molt-Version that is not a positive integer gets InvalidVersion', async (ctx) => {
  await unchanged(ctx, 'bad-version', async () => {
    for (const version of ['1.5', 'abc', '0', '-1', '01', '1e0', '+1', '0x1', '9999999999']) {
      const reply = await rawCall(ctx.nc, { key: 'bad-version', version, message: 'increment', body: '{"json":{"by":1}}' });
      assert.is(reply.json?.code, 'InvalidVersion', `version ${JSON.stringify(version)}`);
      assert.is(expectError(reply, 'InvalidVersion').retryable, false);
    }
  });
});

test('payload too large - a body over the node maxPayload gets PayloadTooLarge', async (ctx) => {
  const body = JSON.stringify({ json: { by: 1, padding: 'x'.repeat(MAX_PAYLOAD) } });
  await unchanged(ctx, 'oversize', async () => {
    const e = expectError(await rawCall(ctx.nc, { key: 'oversize', message: 'increment', body }), 'PayloadTooLarge');
    assert.is(e.data.limit, MAX_PAYLOAD);
    assert.is(e.data.size, body.length);
  });
  // Just under the limit is accepted (the schema ignores extra fields).
  const fits = JSON.stringify({ json: { by: 1, padding: 'x'.repeat(MAX_PAYLOAD - 100) } });
  const ok = await rawCall(ctx.nc, { key: 'oversize', message: 'increment', body: fits });
  assert.is(ok.status, 'ok', ok.text);
  assert.is(ok.json, 7);
});

test('machine throws - ActorFailed, state as before, the actor keeps serving', async (ctx) => {
  await unchanged(ctx, 'boom-raw', async () => {
    for (let i = 0; i < 3; i++) {
      const e = expectError(await rawCall(ctx.nc, { key: 'boom-raw', message: 'boom' }), 'ActorFailed');
      assert.match(e.message, /exploded on purpose/);
      assert.is(e.retryable, false);
    }
  });
});

test('invalid key - key tokens that are not canonical encodings get InvalidKey', async (ctx) => {
  const tokens = [
    '=' + Buffer.from('abc').toString('base64url'), // 'abc' is sent raw, never encoded
    '=w6R', // 'ä' is '=w6Q'; the low bits of the last character must be zero
    '=w6Q=', // base64 padding is not part of the encoding
    '=w6Q/', // '/' is base64, not base64url
    '=_w', // decodes to the byte 0xff, which is not UTF-8
    '=', // encodes the empty key
    '=' + Buffer.from('ä'.repeat(300)).toString('base64url'), // keys are at most 512 bytes of UTF-8
    'a'.repeat(201), // raw keys are at most 200 characters
    'a+b',
    'a~b',
    'ä', // must be sent as '=w6Q'
  ];
  // Every token above reaches a subscribed shard; keys 'abc' and 'ä' must stay as they were.
  await unchanged(ctx, 'abc', async () => {
    await unchanged(ctx, 'ä', async () => {
      for (const token of tokens) {
        const e = expectError(await rawCall(ctx.nc, { token, message: 'increment', body: '{"json":{"by":1}}' }), 'InvalidKey');
        assert.match(e.message, /docs\/protocol\.md/, 'the error points at the key encoding rules');
      }
    });
  });
  // The canonical spellings of the same keys are accepted.
  const ok = await rawCall(ctx.nc, { token: '=w6Q', message: 'get' });
  assert.is(ok.status, 'ok', ok.text);
  assert.is(ok.json, 6);
});

test('wrong shard - a key sent to another shard than its own gets InvalidHeader with the right shard', async (ctx) => {
  const key = 'sharded';
  const right = shardOf(encodeKey(key), DEFAULT_SHARDS);
  await unchanged(ctx, key, async () => {
    for (const shard of [(right + 1) % DEFAULT_SHARDS, (right + 17) % DEFAULT_SHARDS]) {
      const e = expectError(await rawCall(ctx.nc, { key, shard, message: 'increment', body: '{"json":{"by":1}}' }), 'InvalidHeader');
      assert.is(e.data.expected, right);
      assert.is(e.data.shards, DEFAULT_SHARDS);
    }
  });
});

test('version unsupported - newer is retryable, older is not, and the error lists what is served', async (ctx) => {
  const typed = await createClient({ service: 'versioned', nats: ctx.nc });
  try {
    const seed = await rawCall(ctx.nc, { service: 'versioned', key: 'v', version: '2', message: 'increment', body: '{"json":{"by":3}}' });
    assert.is(seed.status, 'ok', seed.text);
    const revision = await stateRevision(ctx.nc, 'versioned', 'counter', 'v');

    const newerReply = await rawCall(ctx.nc, { service: 'versioned', key: 'v', version: '3', message: 'increment', body: '{"json":{"by":1}}' });
    const newer = expectError(newerReply, 'VersionUnsupported');
    assert.is(newerReply.headers['Molt-Node-Version'], '2', 'the reply says which version the node runs');
    assert.is(newer.retryable, true, 'a newer version may arrive with an upgrade');
    assert.equal(newer.data.served, [2]);
    assert.is(newer.data.current, 2);

    const older = expectError(await rawCall(ctx.nc, { service: 'versioned', key: 'v', version: '1', message: 'increment', body: '{"json":{"by":1}}' }), 'VersionUnsupported');
    assert.is(older.retryable, false, 'version 1 will not come back on this node');
    assert.equal(older.data.served, [2]);

    // The typed client surfaces the same error, with the same retryable flag.
    try {
      await typed.actor(counterV1, 'v').increment({ by: 1 });
      assert.unreachable('counter@1 is not served');
    } catch (e) {
      assert.ok(isMoltError(e, 'VersionUnsupported'), String(e));
      assert.is((e as { retryable: boolean }).retryable, false);
    }
    assert.is(await typed.actor(counterV2, 'v').get(), 3, 'state unchanged');
    assert.is(await stateRevision(ctx.nc, 'versioned', 'counter', 'v'), revision);
  } finally {
    await typed.close();
  }
});

test('correlation - an error reply echoes Molt-Correlation and the caller version', async (ctx) => {
  const reply = await rawCall(ctx.nc, { key: 'corr', version: '1', message: 'nope', correlation: 'abc-123' });
  expectError(reply, 'UnknownMessage');
  assert.is(reply.headers['Molt-Correlation'], 'abc-123');
  assert.is(reply.headers['Molt-Version'], '1');
  assert.is(reply.headers['Molt-Node-Version'], '1');
});

test('typed client - an empty key is refused with InvalidKey before anything is sent', async (ctx) => {
  const seen: string[] = [];
  const spy = ctx.nc.subscribe('molt.counters.>', { callback: (_err, msg) => void seen.push(msg.subject) });
  await ctx.nc.flush();
  try {
    for (const call of [() => ctx.client.actor(counterV1, '').get(), () => ctx.client.actor(counterV1, '').increment({ by: 1 }), () => ctx.client.call('counter', 1, '', 'get')]) {
      try {
        await call();
        assert.unreachable('an empty key must be refused');
      } catch (e) {
        assert.ok(isMoltError(e, 'InvalidKey'), String(e));
        assert.is((e as { retryable: boolean }).retryable, false);
      }
    }
    // A key too long to encode is refused the same way.
    try {
      await ctx.client.actor(counterV1, 'ä'.repeat(300)).get();
      assert.unreachable('a 600-byte key must be refused');
    } catch (e) {
      assert.ok(isMoltError(e, 'InvalidKey'), String(e));
    }
    // So is a key UTF-8 cannot carry (an unpaired surrogate would silently become U+FFFD).
    for (const key of ['\uD800', 'a\uDC00b']) {
      try {
        await ctx.client.actor(counterV1, key).get();
        assert.unreachable('an unpaired surrogate must be refused');
      } catch (e) {
        assert.ok(isMoltError(e, 'InvalidKey'), String(e));
      }
    }
    // A real call still goes out (proves the spy sees calls at all).
    await ctx.client.actor(counterV1, 'spy-check').get();
    await ctx.nc.flush();
    assert.equal(seen, [`molt.counters.counter.${shardOf('spy-check', DEFAULT_SHARDS)}.spy-check`]);
  } finally {
    spy.unsubscribe();
  }
});

test.run();

// ---------------------------------------------------------------------------

const outage = suite<{ storeDir: string; nats?: EmbeddedNats }>('bad input - NATS unavailable', { storeDir: '' });

outage.before((ctx) => {
  ctx.storeDir = mkdtempSync(join(tmpdir(), 'molt-outage-'));
});

outage.after(async (ctx) => {
  await ctx.nats?.stop();
  rmSync(ctx.storeDir, { recursive: true, force: true });
});

outage('NATS down - callers get a retryable error; after a restart the node serves and no acknowledged state is lost', async (ctx) => {
  ctx.nats = await startEmbeddedNats({ storeDir: ctx.storeDir });
  const { port, url } = ctx.nats;
  const node = await createNode({ service, nats: { servers: url }, leaseMs: 1500, heartbeatMs: 300, logger: silentLogger });
  const client = await createClient({ service: 'counters', nats: { servers: url }, timeoutMs: 800, retryUnavailableMs: 800 });
  try {
    const keys = ['outage-a', 'outage-b', 'outage-ä'];
    const acked = new Map<string, number>(keys.map((k) => [k, 0]));
    const ambiguous = new Map<string, number>(keys.map((k) => [k, 0]));
    for (const key of keys) {
      for (let i = 0; i < 10; i++) {
        await client.actor(counterV1, key).increment({ by: 1 });
        acked.set(key, acked.get(key)! + 1);
      }
    }

    await ctx.nats.stop();
    for (const key of keys) {
      try {
        await client.actor(counterV1, key).increment({ by: 1 });
        assert.unreachable('NATS is down: the call cannot be acknowledged');
      } catch (e) {
        assert.ok(isMoltError(e, 'Timeout') || isMoltError(e, 'Unavailable'), String(e));
        assert.is((e as { retryable: boolean }).retryable, true, 'the caller may retry');
        // The client may have buffered the publish and send it on reconnect: it may or may not apply.
        ambiguous.set(key, ambiguous.get(key)! + 1);
      }
    }

    ctx.nats = await startEmbeddedNats({ port, storeDir: ctx.storeDir });
    // Reads change nothing, so retrying them until the node serves again adds no ambiguity.
    const values = new Map<string, number>();
    const deadline = Date.now() + 15_000;
    for (const key of keys) {
      for (;;) {
        try {
          values.set(key, await client.actor(counterV1, key).get());
          break;
        } catch (e) {
          if (!isMoltError(e) || !(e as { retryable: boolean }).retryable || Date.now() > deadline) throw e;
        }
      }
    }
    for (const key of keys) {
      const value = values.get(key)!;
      const lo = acked.get(key)!;
      const hi = lo + ambiguous.get(key)!;
      assert.ok(value >= lo && value <= hi, `${key}: ${lo} acknowledged, ${hi - lo} unacknowledged, value ${value}`);
      // And it keeps counting from there, durably.
      assert.is(await client.actor(counterV1, key).increment({ by: 1 }), value + 1);
    }
  } finally {
    await client.close();
    await node.stop();
  }
});

outage.run();
