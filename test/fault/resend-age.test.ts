/**
 * A resend must not seem younger than it is.
 *
 * A resend says how long ago its first attempt was sent (`Molt-Resend-Age`),
 * and the actor answers it `OutcomeUnknown` if that attempt may have been
 * applied and forgotten since — first sent no later than the newest call it
 * dropped for its limit. The age is the caller's, as the resend left it:
 *
 * - a resend that then waits in the actor's mailbox (behind a state write)
 *   or is held through an upgrade is older by that wait when the actor looks
 *   at it. Counted from that moment rather than from its arrival, a wait
 *   longer than the clock margin made a forgotten first attempt look later
 *   than the calls that pushed it out: the resend ran a second time;
 * - a resend held up on its way — its caller cut off from the server, its
 *   bytes delivered when the link comes back, as TCP does after a partition —
 *   arrives older than it says, by however long the cut lasted.
 *
 * Each test makes a node remember 8 calls per actor, applies a keyed call,
 * pushes it out with nine more, and sends it again the way the case above
 * does: it must be refused as unknown, never applied twice.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { connect, headers as natsHeaders, type NatsConnection } from '@nats-io/transport-node';
import { createClient, createNode, isMoltError, silentLogger, type MoltClient, type MoltNode } from '../../runtime/index.ts';
import { callSubject, DEFAULT_SHARDS, encodeKey } from '../../runtime/internal.ts';
import upgradable from '../fixtures/counter-v2.ts';
import { counterV1 } from '../fixtures/counter.ts';
import { startEmbeddedNats, type EmbeddedNats } from '../support/nats.ts';
import { startNatsProxy, type NatsProxy } from '../support/proxy.ts';

/** How long the proxy holds the node's state write: well past the clock margin (100 ms). */
const HOLD_MS = 1000;

const test = suite<{ nats: EmbeddedNats; proxy: NatsProxy; node: MoltNode; client: MoltClient; nc: NatsConnection; caller?: MoltClient }>('idempotency: the age of a resend');

test.after.each(async (ctx) => {
  await ctx.caller?.close().catch(() => undefined);
  await ctx.client?.close().catch(() => undefined);
  await ctx.nc?.close().catch(() => undefined);
  await ctx.node?.stop().catch(() => undefined);
  await ctx.proxy?.close();
  await ctx.nats?.stop();
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

type Ctx = Parameters<Parameters<typeof test>[1]>[0];

/** A nats-server, a proxy to it, a node remembering 8 calls per actor, a client and a bare connection; `proxied` says who goes through the proxy. */
async function start(ctx: Ctx, proxied: 'node' | 'caller'): Promise<void> {
  ctx.nats = await startEmbeddedNats();
  ctx.proxy = await startNatsProxy(ctx.nats.url);
  const nodeUrl = proxied === 'node' ? ctx.proxy.url : ctx.nats.url;
  ctx.node = await createNode({ service: upgradable, nats: { servers: nodeUrl }, versions: { counter: 1 }, logger: silentLogger, idempotency: { windowMs: 60_000, limit: 8 } });
  ctx.client = await createClient({ service: 'counters', nats: { servers: ctx.nats.url }, timeoutMs: 10_000 });
  ctx.nc = await connect({ servers: ctx.nats.url });
}

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
  await start(ctx, 'node');
  const counter = ctx.client.actor(counterV1, 'waiting');

  const firstSent = Date.now();
  assert.equal(await rawIncrement(ctx.nc, 'waiting', 'first'), { status: 'ok', value: 1 });
  // Nine newer keyed changes: 'first' falls out of the limit of 8.
  for (let i = 0; i < 9; i++) await counter.increment({ by: 1 });

  // A state write the proxy holds: the actor waits for it, and the resend waits behind it.
  ctx.proxy.cut('to-server');
  const held = counter.increment({ by: 1 }).catch((e: unknown) => e);
  // The node has sent something into the cut — its write, or a heartbeat just before it: the actor waits for the write.
  await waitFor(() => ctx.proxy.held().toServer > 0, 'the state write sent');
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

test('idempotency - a resend held up on its way by a partition is not taken for a younger one, and a forgotten first attempt is not run again', async (ctx) => {
  await start(ctx, 'caller');
  // The caller's connection runs through the proxy; it gives up on a reply after 500 ms and resends.
  ctx.caller = await createClient({ service: 'counters', nats: { servers: ctx.proxy.url }, timeoutMs: 500 });
  const others = ctx.client.actor(counterV1, 'partitioned');
  await others.reset();

  // The first attempt reaches the node and is applied; its reply is held by the cut.
  ctx.proxy.cut('to-client');
  const call = ctx.caller.actor(counterV1, 'partitioned').increment({ by: 1 }).then(
    (value) => value,
    (e: unknown) => (isMoltError(e) ? e.code : e),
  );
  await waitFor(async () => (await others.get()) === 1, 'the first attempt applied');
  // Now nothing gets through either way: the caller's resend, made once its 500 ms are up, waits in the link.
  ctx.proxy.cut('both');
  await waitFor(() => ctx.proxy.held().toServer > 0, 'the resend sent into the cut');
  // Nine newer keyed changes: the first attempt's key falls out of the limit of 8.
  for (let i = 0; i < 9; i++) await others.increment({ by: 1 });
  await sleep(HOLD_MS);
  ctx.proxy.heal();

  // The caller ran out of retries in the cut (its outcome unknown), or got the first attempt's reply once healed.
  const outcome = await call;
  assert.ok(outcome === 1 || outcome === 'Timeout' || outcome === 'OutcomeUnknown', `the caller's outcome: ${String(outcome)}`);
  await sleep(300); // the resends, delivered with the heal, reach the node
  assert.is(await others.get(), 10, 'the first attempt was not applied a second time');
});

/** Polls `check` every 20 ms until it holds, for 5 s at most. */
async function waitFor(check: () => boolean | Promise<boolean>, what: string): Promise<void> {
  const until = Date.now() + 5000;
  while (!(await check())) {
    if (Date.now() > until) throw new Error(`timed out waiting for: ${what}`);
    await sleep(20);
  }
}

test.run();
