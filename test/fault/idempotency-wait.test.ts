/**
 * A resend that waits at its actor must not seem younger than it is.
 *
 * A resend says how long ago its first attempt was sent (`Molt-Resend-Age`),
 * and the actor answers it `OutcomeUnknown` if that attempt may have been
 * applied and forgotten since — first sent no later than the newest call it
 * dropped for its limit. The age is the caller's, as the resend left it; a
 * resend that then waits in the actor's mailbox (behind a state write) or is
 * held through an upgrade is older by that wait when the actor looks at it.
 * Counted from the moment the actor looked rather than from its arrival, a
 * wait longer than the clock margin made a forgotten first attempt look
 * later than the calls that pushed it out: the resend ran a second time.
 *
 * Here a node remembers 8 calls per actor and writes its state through a
 * proxy. A keyed call is applied, nine more push it out, and then, while a
 * state write is held by the proxy for a second, the first call is sent again
 * with its true age: it arrives, waits behind the write, and must be refused
 * as unknown, not applied twice.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { connect, headers as natsHeaders, type NatsConnection } from '@nats-io/transport-node';
import { createClient, createNode, silentLogger, type MoltClient, type MoltNode } from '../../runtime/index.ts';
import { callSubject, DEFAULT_SHARDS, encodeKey } from '../../runtime/internal.ts';
import upgradable from '../fixtures/counter-v2.ts';
import { counterV1 } from '../fixtures/counter.ts';
import { startEmbeddedNats, type EmbeddedNats } from '../support/nats.ts';
import { startNatsProxy, type NatsProxy } from '../support/proxy.ts';

/** How long the proxy holds the node's state write: well past the clock margin (100 ms). */
const HOLD_MS = 1000;

const test = suite<{ nats: EmbeddedNats; proxy: NatsProxy; node: MoltNode; client: MoltClient; nc: NatsConnection }>('idempotency: a resend that waits');

test.after(async (ctx) => {
  await ctx.client?.close().catch(() => undefined);
  await ctx.nc?.close().catch(() => undefined);
  await ctx.node?.stop().catch(() => undefined);
  await ctx.proxy?.close();
  await ctx.nats?.stop();
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** An increment from the bare NATS client with idempotency key `key`, resent `resendAgeMs` after its first attempt. */
async function rawIncrement(nc: NatsConnection, actor: string, key: string, resendAgeMs?: number): Promise<{ status: string | undefined; value: unknown }> {
  const h = natsHeaders();
  h.set('Molt-Version', '1');
  h.set('Molt-Message', 'increment');
  h.set('Molt-Idempotency-Key', key);
  if (resendAgeMs !== undefined) h.set('Molt-Resend-Age', String(resendAgeMs));
  const reply = await nc.request(callSubject('counters', 'counter', encodeKey(actor), DEFAULT_SHARDS), new TextEncoder().encode('{"json":{"by":1}}'), { headers: h, timeout: 10_000 });
  return { status: reply.headers?.get('Molt-Status'), value: (JSON.parse(new TextDecoder().decode(reply.data)) as { json: unknown }).json };
}

test('idempotency - a resend that waits behind a state write is judged by when it arrived, and a forgotten first attempt is not run again', async (ctx) => {
  ctx.nats = await startEmbeddedNats();
  ctx.proxy = await startNatsProxy(ctx.nats.url);
  ctx.node = await createNode({ service: upgradable, nats: { servers: ctx.proxy.url }, versions: { counter: 1 }, logger: silentLogger, idempotency: { windowMs: 60_000, limit: 8 } });
  ctx.client = await createClient({ service: 'counters', nats: { servers: ctx.nats.url }, timeoutMs: 10_000 });
  ctx.nc = await connect({ servers: ctx.nats.url });
  const counter = ctx.client.actor(counterV1, 'waiting');

  const firstSent = Date.now();
  assert.equal(await rawIncrement(ctx.nc, 'waiting', 'first'), { status: 'ok', value: 1 });
  // Nine newer keyed changes: 'first' falls out of the limit of 8.
  for (let i = 0; i < 9; i++) await counter.increment({ by: 1 });

  // A state write the proxy holds: the actor waits for it, and the resend waits behind it.
  ctx.proxy.cut('to-server');
  const held = counter.increment({ by: 1 });
  await sleep(100);
  let answeredAt = 0;
  const resent = rawIncrement(ctx.nc, 'waiting', 'first', Date.now() - firstSent).finally(() => (answeredAt = Date.now()));
  await sleep(HOLD_MS);
  const healedAt = Date.now();
  ctx.proxy.heal();

  assert.is(await held, 11);
  const answer = await resent;
  assert.ok(answeredAt >= healedAt, 'the resend waited behind the held write');
  assert.is(answer.status, 'error', `the resend was answered ${JSON.stringify(answer)}`);
  assert.is((answer.value as { code: string }).code, 'OutcomeUnknown');
  assert.is(await counter.get(), 11, 'the first call was not applied a second time');
});

test.run();
