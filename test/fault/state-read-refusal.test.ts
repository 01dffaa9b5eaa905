/**
 * Every server of a cluster receives a JetStream API request, and a server
 * that cannot tell who leads the stream — one that has just rejoined its
 * cluster after a partition, still catching up — answers at once "JetStream
 * system temporarily unavailable", while the stream's leader answers the same
 * request properly a moment later. A node on such a server took the first,
 * local refusal as the answer: every actor read failed `Unavailable` for
 * seconds after a partition healed, though the leader was answering.
 *
 * Here the node's store reads through a server that is not the state
 * stream's leader; a responder on that server answers every message get of
 * the stream with that refusal, as the catching-up server does; and the
 * server's routes stall for a moment, so the leader's answer comes second,
 * after the refusal, every time.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import type { NatsConnection } from '@nats-io/transport-node';
import { Kvm } from '@nats-io/kv';
import { connectNats, ErrorCode, isMoltError } from '../../runtime/index.ts';
import { createKvStore } from '../../runtime/internal.ts';
import { startNatsCluster, streamReplicas, type NatsCluster } from '../support/cluster.ts';

const BUCKET = 'refusal_test';
const STREAM = `KV_${BUCKET}`;
/** What a server that knows no leader for the stream answers to its message get (JetStream error 10008). */
const REFUSAL = JSON.stringify({ type: 'io.nats.jetstream.api.v1.stream_msg_get_response', error: { code: 503, err_code: 10008, description: 'JetStream system temporarily unavailable' } });

interface Ctx {
  cluster: NatsCluster;
  connections: NatsConnection[];
}

const test = suite<Ctx>('state read refusal');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

test.before(async (ctx) => {
  ctx.connections = [];
  ctx.cluster = await startNatsCluster({ partitionable: true });
  const admin = await connectNats({ servers: ctx.cluster.urls[0]! });
  ctx.connections.push(admin);
  // As `molt setup` makes a replicated state bucket: read from the stream leader only.
  const kv = await new Kvm(admin).create(BUCKET, { history: 1, replicas: 3, allow_direct: false });
  await kv.put('counter.a', 'stored value');
});

test.after(async (ctx) => {
  for (const nc of ctx.connections) await nc.close().catch(() => undefined);
  await ctx.cluster?.stop();
});

/** A server that does not lead the stream, a store reading through it, and a responder there refusing every message get of the stream. */
async function throughFollower(ctx: Ctx, timeoutMs = 5000) {
  const leader = Number((await streamReplicas(ctx.cluster.urls[0]!, STREAM)).leader!.slice(1)) - 1;
  const follower = (leader + 1) % 3;
  const nc = await connectNats({ servers: ctx.cluster.urls[follower]! });
  const refuser = await connectNats({ servers: ctx.cluster.urls[follower]! });
  ctx.connections.push(nc, refuser);
  let refused = 0;
  refuser.subscribe(`$JS.API.STREAM.MSG.GET.${STREAM}`, {
    callback: (_err, msg) => {
      refused++;
      msg.respond(REFUSAL);
    },
  });
  await refuser.flush();
  const kv = await new Kvm(nc).open(BUCKET, { allow_direct: false });
  const store = createKvStore(kv, nc, { writeTimeoutMs: timeoutMs });
  await nc.flush();
  // Until a read is answered, the leader's server may not know of the store's inbox yet.
  for (let tries = 0; tries < 20; tries++) {
    if (await store.load('counter.a').then(() => true, () => false)) break;
    await sleep(100);
  }
  return { follower, store, refusals: () => refused };
}

test('a read refused by a server that knows no leader is answered by the leader that answers after it', async (ctx) => {
  const { follower, store, refusals } = await throughFollower(ctx);
  try {
    const refusedBefore = refusals();
    ctx.cluster.isolate(follower);
    const reading = store.load('counter.a').catch((e: unknown) => e as Error);
    // The local refusal comes at once; the leader's answer waits for the routes.
    await sleep(150);
    assert.is(refusals() - refusedBefore, 1, 'the refusal was sent first');
    ctx.cluster.heal(follower);
    const loaded = await reading;
    if (loaded instanceof Error) throw new Error(`the read failed, taking the refusal for the answer: ${loaded.message}`);
    assert.is(new TextDecoder().decode(loaded.bytes), 'stored value');
    assert.ok(loaded.revision > 0);
  } finally {
    ctx.cluster.heal(follower);
    store.close();
  }
});

test('a refusal nobody contradicts ends the read Unavailable within a moment, not at its timeout', async (ctx) => {
  const { follower, store } = await throughFollower(ctx, 20_000);
  const started = performance.now();
  try {
    ctx.cluster.isolate(follower);
    const error = await store.load('counter.a').then(
      () => undefined,
      (e: unknown) => e,
    );
    const tookMs = performance.now() - started;
    assert.ok(isMoltError(error, ErrorCode.Unavailable), `refused as Unavailable: ${String(error)}`);
    assert.match(String((error as Error).message), /temporarily unavailable/);
    assert.ok(tookMs < 10_000, `ended in ${Math.round(tookMs)} ms, not at the read's 20 s timeout`);
  } finally {
    ctx.cluster.rejoin(follower);
    store.close();
  }
  await ctx.cluster.waitReady();
});

test.run();
