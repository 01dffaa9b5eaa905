/**
 * The typed client's retries never turn "may have been applied" into "not
 * applied". A call whose first attempt ended without a known outcome and
 * whose retry is then refused (the new owner runs an older version, say)
 * may still have been applied by that first attempt: the caller gets
 * `OutcomeUnknown`, naming the refusal, not the refusal itself.
 *
 * The node here is a stand-in on the bare NATS client that answers each
 * attempt as the test says, so the sequence is exact.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { connect, headers as natsHeaders, type NatsConnection } from '@nats-io/transport-node';
import { createClient, isMoltError, MoltError, ErrorCode, type MoltClient } from '../../runtime/index.ts';
import { createSuperjsonCodec } from '../../runtime/wire/codec.ts';
import { counterV1 } from '../fixtures/counter.ts';
import { startEmbeddedNats, type EmbeddedNats } from '../support/nats.ts';

interface Ctx {
  nats: EmbeddedNats;
  nc: NatsConnection;
  client: MoltClient;
}
const test = suite<Ctx>('client retries');
const codec = createSuperjsonCodec();

test.before(async (ctx) => {
  ctx.nats = await startEmbeddedNats();
  ctx.nc = await connect({ servers: ctx.nats.url });
  ctx.client = await createClient({ service: 'counters', nats: { servers: ctx.nats.url }, timeoutMs: 1500, uncertainRetries: 2 });
});

test.after(async (ctx) => {
  await ctx.client?.close();
  await ctx.nc?.close();
  await ctx.nats?.stop();
});

/** Answers the attempts of calls to `counters` with the given errors, in order; returns the headers each attempt carried. */
async function standInNode(nc: NatsConnection, answers: MoltError[]): Promise<{ attempts: Array<Record<string, string>>; stop: () => Promise<void> }> {
  const attempts: Array<Record<string, string>> = [];
  const sub = nc.subscribe('molt.counters.>', {
    callback: (_err, msg) => {
      const seen: Record<string, string> = {};
      for (const name of ['Molt-Idempotency-Key', 'Molt-Resend-Age', 'Molt-First-Sent']) {
        const v = msg.headers?.get(name);
        if (v) seen[name] = v;
      }
      attempts.push(seen);
      const answer = answers[attempts.length - 1];
      if (!answer || !msg.reply) return;
      const h = natsHeaders();
      h.set('Molt-Status', 'error');
      h.set('Molt-Protocol', '1');
      nc.publish(msg.reply, codec.encode(answer.toWire()), { headers: h });
    },
  });
  // The server has the subscription before the first call goes out.
  await nc.flush();
  return {
    attempts,
    stop: async () => {
      sub.unsubscribe();
      await nc.flush();
    },
  };
}

test('client retries - an unknown outcome, then a refusal: the caller learns the outcome is unknown', async ({ nc, client }) => {
  const node = await standInNode(nc, [
    new MoltError(ErrorCode.OutcomeUnknown, 'the state write was never acknowledged'),
    new MoltError(ErrorCode.VersionUnsupported, 'this node runs counter@1; the actor is stored at version 2'),
  ]);
  try {
    await client.actor(counterV1, 'retried').increment({ by: 1 });
    assert.unreachable('the call cannot succeed');
  } catch (e) {
    assert.ok(isMoltError(e, 'OutcomeUnknown'), String(e));
    assert.is((e as MoltError).data.retryError, 'VersionUnsupported');
    assert.match((e as MoltError).message, /may have been applied/);
  } finally {
    await node.stop();
  }
  assert.is(node.attempts.length, 2, 'sent once, then again under its key');
  assert.is(node.attempts[1]!['Molt-Idempotency-Key'], node.attempts[0]!['Molt-Idempotency-Key']);
  assert.ok(node.attempts[1]!['Molt-Resend-Age'] !== undefined, 'the retry says how old it is');
  // …and when its first attempt was sent, by the caller's clock: its age before it was sent.
  const firstSent = Number(node.attempts[1]!['Molt-First-Sent']);
  assert.ok(Math.abs(Date.now() - Number(node.attempts[1]!['Molt-Resend-Age']) - firstSent) < 5000, `Molt-First-Sent ${firstSent}`);
  assert.not.ok('Molt-First-Sent' in node.attempts[0]!, 'a first attempt says neither');
});

test('client retries - a call a node did not run (its shard moving) is sent again soon, and the owner answers it', async ({ nc, client }) => {
  // The first attempt reached only the node that no longer serves the shard;
  // the owner subscribed after it went out and never saw it.
  const notRun = new MoltError(ErrorCode.OutcomeUnknown, 'this node no longer serves shard 7; not run', { data: { ran: false } });
  const attempts: number[] = [];
  const sub = nc.subscribe('molt.counters.>', {
    callback: (_err, msg) => {
      attempts.push(Date.now());
      if (!msg.reply) return;
      const h = natsHeaders();
      h.set('Molt-Protocol', '1');
      if (attempts.length === 1) {
        h.set('Molt-Status', 'error');
        nc.publish(msg.reply, codec.encode(notRun.toWire()), { headers: h });
      } else {
        h.set('Molt-Status', 'ok');
        nc.publish(msg.reply, codec.encode(7), { headers: h });
      }
    },
  });
  await nc.flush();
  try {
    const started = Date.now();
    assert.is(await client.actor(counterV1, 'moving').increment({ by: 1 }), 7);
    assert.is(attempts.length, 2);
    assert.ok(Date.now() - started < 1500, 'answered by the resend, before the call timed out');
  } finally {
    sub.unsubscribe();
    await nc.flush();
  }
});

test('client retries - a refusal of the first attempt stands as it is', async ({ nc, client }) => {
  const node = await standInNode(nc, [new MoltError(ErrorCode.VersionUnsupported, 'this node runs counter@1')]);
  try {
    await client.actor(counterV1, 'refused').increment({ by: 1 });
    assert.unreachable('the call cannot succeed');
  } catch (e) {
    assert.ok(isMoltError(e, 'VersionUnsupported'), String(e));
  } finally {
    await node.stop();
  }
  assert.is(node.attempts.length, 1);
});

test('client - a keyed call carries exactly its version, message, protocol and key, each call its own key', async ({ nc, client }) => {
  // The block is built from a per-(version, message) start and the key: every entry must read back as a fresh block's would.
  const seen: Array<Array<[string, string[]]>> = [];
  const sub = nc.subscribe('molt.counters.>', {
    callback: (_err, msg) => {
      seen.push((msg.headers?.keys() ?? []).map((k) => [k, msg.headers!.values(k)]));
      const h = natsHeaders();
      h.set('Molt-Status', 'error');
      h.set('Molt-Protocol', '1');
      if (msg.reply) nc.publish(msg.reply, codec.encode(new MoltError(ErrorCode.VersionUnsupported, 'refused').toWire()), { headers: h });
    },
  });
  await nc.flush();
  const ref = client.actor(counterV1, 'headers');
  const calls: Array<[string, () => Promise<unknown>, string | undefined]> = [
    ['increment', () => ref.increment({ by: 1 }), undefined],
    ['get', () => ref.get(), undefined],
    ['increment', () => ref.increment({ by: 1 }, { idempotencyKey: 'pay-7' }), 'pay-7'],
    ['get', () => ref.get({}, { idempotencyKey: '!"#$%&\'()*+,-./:;<=>?@[\\]^_`{|}~' }), '!"#$%&\'()*+,-./:;<=>?@[\\]^_`{|}~'],
    ['increment', () => ref.increment({ by: 1 }, { idempotencyKey: 'k'.repeat(128) }), 'k'.repeat(128)],
    ['increment', () => ref.increment({ by: 1 }), undefined],
  ];
  try {
    for (const [, call] of calls) await call().catch((e: unknown) => assert.ok(isMoltError(e, 'VersionUnsupported'), String(e)));
  } finally {
    sub.unsubscribe();
    await nc.flush();
  }
  assert.is(seen.length, calls.length);
  const keys = new Set<string>();
  seen.forEach((entries, i) => {
    const [message, , given] = calls[i]!;
    const key = entries.find(([k]) => k === 'Molt-Idempotency-Key')?.[1][0];
    assert.ok(key !== undefined, `call ${i} carries a key`);
    if (given !== undefined) assert.is(key, given);
    keys.add(key!);
    assert.equal(entries, [
      ['Molt-Version', ['1']],
      ['Molt-Message', [message]],
      ['Molt-Protocol', ['1']],
      ['Molt-Idempotency-Key', [key!]],
    ]);
  });
  assert.is(keys.size, calls.length, 'each call its own key');
});

test.run();
