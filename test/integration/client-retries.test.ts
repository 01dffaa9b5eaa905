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
function standInNode(nc: NatsConnection, answers: MoltError[]): { attempts: Array<Record<string, string>>; stop: () => void } {
  const attempts: Array<Record<string, string>> = [];
  const sub = nc.subscribe('molt.counters.>', {
    callback: (_err, msg) => {
      const seen: Record<string, string> = {};
      for (const name of ['Molt-Idempotency-Key', 'Molt-Resend-Age']) {
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
  return { attempts, stop: () => sub.unsubscribe() };
}

test('client retries - an unknown outcome, then a refusal: the caller learns the outcome is unknown', async ({ nc, client }) => {
  const node = standInNode(nc, [
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
    node.stop();
  }
  assert.is(node.attempts.length, 2, 'sent once, then again under its key');
  assert.is(node.attempts[1]!['Molt-Idempotency-Key'], node.attempts[0]!['Molt-Idempotency-Key']);
  assert.ok(node.attempts[1]!['Molt-Resend-Age'] !== undefined, 'the retry says how old it is');
});

test('client retries - a refusal of the first attempt stands as it is', async ({ nc, client }) => {
  const node = standInNode(nc, [new MoltError(ErrorCode.VersionUnsupported, 'this node runs counter@1')]);
  try {
    await client.actor(counterV1, 'refused').increment({ by: 1 });
    assert.unreachable('the call cannot succeed');
  } catch (e) {
    assert.ok(isMoltError(e, 'VersionUnsupported'), String(e));
  } finally {
    node.stop();
  }
  assert.is(node.attempts.length, 1);
});

test.run();
