/**
 * Batched calls (docs/protocol.md, "Batched calls"; wire/batch.ts): a client
 * that has learned which node owns a shard sends the keyed calls of one tick
 * for that node as one message; a call whose shard moved is sent again to its
 * shard's subject, never lost and never run twice; the form is usable from
 * the bare NATS client.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { connect, createInbox, headers as natsHeaders, type NatsConnection } from '@nats-io/transport-node';
import { createClient, createNode, silentLogger, type MoltClient, type MoltNode } from '../../runtime/index.ts';
import service, { counterV1 } from '../fixtures/counter.ts';
import { startEmbeddedNats, type EmbeddedNats } from '../support/nats.ts';
import { decodeAnswer, decodeBatch, encodeAnswer, encodeBatch } from '../../runtime/wire/batch.ts';
import { batchSubject, callSubject, encodeKey, Header } from '../../runtime/wire/protocol.ts';
import { HeaderBlock } from '../../runtime/wire/header-block.ts';
import { createSuperjsonCodec } from '../../runtime/wire/codec.ts';

const test = suite<{ nats: EmbeddedNats; spy: NatsConnection }>('batching');

test.before(async (ctx) => {
  ctx.nats = await startEmbeddedNats();
  ctx.spy = await connect({ servers: ctx.nats.url });
});

test.after(async (ctx) => {
  await ctx.spy.close();
  await ctx.nats.stop();
});

/** Counts the messages on the service's batch subjects, and the calls they carry. */
function watchBatches(nc: NatsConnection): { messages: number; calls: number; stop(): void } {
  const seen = { messages: 0, calls: 0, stop: () => sub.unsubscribe() };
  const sub = nc.subscribe('molt.counters._batch.>', {
    callback: (err, msg) => {
      if (err) return;
      seen.messages++;
      seen.calls += decodeBatch(msg.data).length;
    },
  });
  return seen;
}

test('concurrent keyed calls to one node go in batches once a reply named the node, and all count', async ({ nats, spy }) => {
  const node = await createNode({ service, nats: { servers: nats.url }, nodeId: 'batch-a', logger: silentLogger });
  const client = await createClient({ service: 'counters', nats: { servers: nats.url }, batching: true });
  try {
    const seen = watchBatches(spy);
    await spy.flush();
    const refs = Array.from({ length: 50 }, (_, i) => client.actor(counterV1, `b-${i}`));
    // One call each first: the replies say which node owns each shard.
    await Promise.all(refs.map((r) => r.increment({ by: 1 })));
    for (let round = 0; round < 4; round++) await Promise.all(refs.map((r) => r.increment({ by: 1 })));
    await spy.flush();
    const counts = await Promise.all(refs.map((r) => r.get()));
    assert.equal(counts, refs.map(() => 5));
    assert.ok(seen.calls >= 4 * 50, `the later rounds went batched (${seen.calls} calls in ${seen.messages} batches)`);
    assert.ok(seen.messages <= 4 * 2 + 2, `in about one batch per round: ${seen.messages} batches for ${seen.calls} calls`);
    seen.stop();
  } finally {
    await client.close();
    await node.stop();
  }
});

test('the client batches by default; batching: false sends every call alone', async ({ nats, spy }) => {
  const node = await createNode({ service, nats: { servers: nats.url }, nodeId: 'batch-default', logger: silentLogger });
  const byDefault = await createClient({ service: 'counters', nats: { servers: nats.url } });
  const alone = await createClient({ service: 'counters', nats: { servers: nats.url }, batching: false });
  try {
    for (const [client, prefix, batched] of [[byDefault, 'd', true], [alone, 'a', false]] as const) {
      const seen = watchBatches(spy);
      await spy.flush();
      const refs = Array.from({ length: 20 }, (_, i) => client.actor(counterV1, `${prefix}-${i}`));
      for (let round = 0; round < 3; round++) await Promise.all(refs.map((r) => r.increment({ by: 1 })));
      await spy.flush();
      assert.equal(await Promise.all(refs.map((r) => r.get())), refs.map(() => 3));
      if (batched) assert.ok(seen.calls >= 2 * 20, `the default client batched the later rounds (${seen.calls} calls in ${seen.messages} batches)`);
      else assert.is(seen.messages, 0, 'batching: false sent no batch');
      seen.stop();
    }
  } finally {
    await byDefault.close();
    await alone.close();
    await node.stop();
  }
});

test('a call batched to a node that no longer owns its shard is sent to the shard and applied once', async ({ nats }) => {
  const a = await createNode({ service, nats: { servers: nats.url }, nodeId: 'batch-b1', logger: silentLogger, heartbeatMs: 200, leaseMs: 1000 });
  const client = await createClient({ service: 'counters', nats: { servers: nats.url }, timeoutMs: 8000, batching: true });
  let b: MoltNode | undefined;
  try {
    const refs = Array.from({ length: 40 }, (_, i) => client.actor(counterV1, `moved-${i}`));
    await Promise.all(refs.map((r) => r.increment({ by: 1 })));
    // A second node takes about half the shards while calls keep coming.
    b = await createNode({ service, nats: { servers: nats.url }, nodeId: 'batch-b2', logger: silentLogger, heartbeatMs: 200, leaseMs: 1000 });
    for (let round = 0; round < 20; round++) await Promise.all(refs.map((r) => r.increment({ by: 1 })));
    assert.ok(b.ownedShards().length > 0, 'the second node took shards');
    const counts = await Promise.all(refs.map((r) => r.get()));
    assert.equal(counts, refs.map(() => 21), 'every increment applied exactly once');
  } finally {
    await client.close();
    await b?.stop();
    await a.stop();
  }
});

test('a batch to a node that stopped is sent again call by call: nothing lost', async ({ nats }) => {
  const a = await createNode({ service, nats: { servers: nats.url }, nodeId: 'batch-c1', logger: silentLogger, heartbeatMs: 200, leaseMs: 1000 });
  const b = await createNode({ service, nats: { servers: nats.url }, nodeId: 'batch-c2', logger: silentLogger, heartbeatMs: 200, leaseMs: 1000 });
  const client: MoltClient = await createClient({ service: 'counters', nats: { servers: nats.url }, timeoutMs: 8000, batching: true });
  try {
    const refs = Array.from({ length: 40 }, (_, i) => client.actor(counterV1, `stopped-${i}`));
    await Promise.all(refs.map((r) => r.increment({ by: 1 })));
    await a.stop();
    for (let round = 0; round < 5; round++) await Promise.all(refs.map((r) => r.increment({ by: 1 })));
    const counts = await Promise.all(refs.map((r) => r.get()));
    // Volatile or durable, the fixture's counter keeps state in the KV: every increment is there once.
    assert.equal(counts, refs.map(() => 6));
  } finally {
    await client.close();
    await b.stop();
  }
});

test('the batch form from the bare NATS client: one message in, answers naming each call', async ({ nats }) => {
  const node = await createNode({ service, nats: { servers: nats.url }, nodeId: 'batch-d', logger: silentLogger });
  const nc = await connect({ servers: nats.url });
  try {
    const codec = createSuperjsonCodec();
    const call = (key: string, message: string, request: unknown) => {
      // The header block of the single form, written out as the protocol gives it.
      const headers = new TextEncoder().encode(`NATS/1.0\r\n${Header.Version}: 1\r\n${Header.Message}: ${message}\r\n${Header.IdempotencyKey}: bare-${key}-${message}\r\n\r\n`);
      return { subject: callSubject('counters', 'counter', encodeKey(key), 64), token: `t-${key}`, headers, body: codec.encode(request) };
    };
    const calls = [call('bare-1', 'increment', { by: 2 }), call('bare-2', 'increment', { by: 5 }), { ...call('bare-3', 'increment', { by: 1 }), subject: 'molt.elsewhere.counter.1.x' }];
    // Every shard is this node's: it is the only one. Answers come as the calls finish, in one message or several.
    const answers = new Map<string, { status: string | undefined; node: string | undefined; body: unknown }>();
    const inbox = createInbox();
    const all = new Promise<void>((resolve) => {
      nc.subscribe(inbox, {
        callback: (err, msg) => {
          if (err) return;
          assert.is(msg.headers?.get(Header.Batch), '1', 'an answer says it is one');
          for (const r of decodeAnswer(msg.data)) {
            const h = HeaderBlock.fromBytes(r.headers);
            answers.set(r.token, { status: h.get(Header.Status), node: h.get(Header.Node), body: codec.decode(r.body) });
          }
          if (answers.size === calls.length) resolve();
        },
      });
    });
    const h = natsHeaders();
    h.set(Header.Batch, '1');
    nc.publish(batchSubject('counters', 'batch-d'), encodeBatch(calls), { reply: inbox, headers: h });
    await all;
    assert.equal(answers.get('t-bare-1'), { status: 'ok', node: 'batch-d', body: 2 });
    assert.equal(answers.get('t-bare-2'), { status: 'ok', node: 'batch-d', body: 5 });
    assert.is(answers.get('t-bare-3')?.status, 'error', 'a call of another service is refused');
    assert.is((answers.get('t-bare-3')?.body as { code: string }).code, 'InvalidHeader');
  } finally {
    await nc.close();
    await node.stop();
  }
});

test('a batch answered after its calls timed out still completes them while their retries wait', async ({ nats }) => {
  // A stand-in node on real NATS: it answers single calls at once (naming itself), and
  // answers a batch only after the calls' first timeout, ignoring their retries.
  const node = await connect({ servers: nats.url });
  const codec = createSuperjsonCodec();
  const okHeaders = (): ReturnType<typeof natsHeaders> => {
    const h = natsHeaders();
    h.set(Header.Status, 'ok');
    h.set(Header.Protocol, '1');
    h.set(Header.Node, 'slow');
    return h;
  };
  let singles = 0;
  node.subscribe('molt.late.*.*.*', {
    callback: (err, msg) => {
      if (err || singles++ >= 2) return;
      msg.respond(codec.encode(1), { headers: okHeaders() });
    },
  });
  const replyBlock = new TextEncoder().encode(`NATS/1.0\r\n${Header.Status}: ok\r\n${Header.Protocol}: 1\r\n${Header.Node}: slow\r\n\r\n`);
  node.subscribe(batchSubject('late', 'slow'), {
    callback: (err, msg) => {
      if (err) return;
      const calls = decodeBatch(msg.data);
      setTimeout(() => msg.respond(encodeAnswer(calls.map((c) => ({ token: c.token, headers: replyBlock, body: codec.encode(2) }))), { headers: (() => {
        const h = natsHeaders();
        h.set(Header.Batch, '1');
        return h;
      })() }), 900);
    },
  });
  await node.flush();
  const client = await createClient({ service: 'late', nats: { servers: nats.url }, batching: true, timeoutMs: 600, uncertainRetries: 2 });
  try {
    // The replies name the node that owns both shards.
    assert.equal(await Promise.all([client.call('counter', 1, 'a', 'increment', { by: 1 }), client.call('counter', 1, 'b', 'increment', { by: 1 })]), [1, 1]);
    // Now one batch; its answer comes at 900 ms, after the first timeout (600 ms) and during the retry.
    assert.equal(await Promise.all([client.call('counter', 1, 'a', 'increment', { by: 1 }), client.call('counter', 1, 'b', 'increment', { by: 1 })]), [2, 2]);
  } finally {
    await client.close();
    await node.close();
  }
});

/** A clock whose monotonic time and timers move only when the test says (wall time is real). */
function manualClock() {
  let t = 0;
  let timers: Array<{ at: number; fn: () => void; id: number }> = [];
  let ids = 0;
  return {
    now: () => Date.now(),
    monotonic: () => t,
    setTimeout(fn: () => void, ms: number) {
      const timer = { at: t + ms, fn, id: ++ids };
      timers.push(timer);
      return timer.id as unknown as ReturnType<typeof setTimeout>;
    },
    clearTimeout(handle: unknown) {
      timers = timers.filter((x) => x.id !== (handle as number));
    },
    advance(ms: number) {
      t += ms;
      const due = timers.filter((x) => x.at <= t);
      timers = timers.filter((x) => x.at > t);
      for (const x of due) x.fn();
    },
  };
}

/**
 * A stand-in node on real NATS that answers single calls at once (naming
 * itself) and keeps every batch until the test answers it, and a client of
 * it on a manual clock.
 */
async function heldBatches(nats: EmbeddedNats, service: string) {
  const node = await connect({ servers: nats.url });
  const codec = createSuperjsonCodec();
  const replyBlock = new TextEncoder().encode(`NATS/1.0\r\n${Header.Status}: ok\r\n${Header.Protocol}: 1\r\n${Header.Node}: held\r\n\r\n`);
  node.subscribe(`molt.${service}.*.*.*`, {
    callback: (err, msg) => {
      if (err) return;
      const h = natsHeaders();
      h.set(Header.Status, 'ok');
      h.set(Header.Protocol, '1');
      h.set(Header.Node, 'held');
      msg.respond(codec.encode(0), { headers: h });
    },
  });
  const received: Array<{ msg: import('@nats-io/transport-node').Msg; calls: number }> = [];
  node.subscribe(batchSubject(service, 'held'), {
    callback: (err, msg) => {
      if (!err) received.push({ msg, calls: decodeBatch(msg.data).length });
    },
  });
  await node.flush();
  const clock = manualClock();
  const client = await createClient({ service, nats: { servers: nats.url }, clock });
  await client.call('counter', 1, 'k', 'increment', { by: 1 }); // the reply names the node
  return {
    clock,
    received,
    /** Answers batch `i` (each of its calls with i + 1). */
    answer(i: number) {
      const { msg } = received[i]!;
      const h = natsHeaders();
      h.set(Header.Batch, '1');
      msg.respond(encodeAnswer(decodeBatch(msg.data).map((c) => ({ token: c.token, headers: replyBlock, body: codec.encode(i + 1) }))), { headers: h });
    },
    /** `n` calls made now (a call left waiting when an assertion fails is rejected by close: handled, so the failure shows). */
    calls(n: number) {
      return Array.from({ length: n }, () => {
        const p = client.call('counter', 1, 'k', 'increment', { by: 1 });
        p.catch(() => {});
        return p;
      });
    },
    async until(what: string, ok: () => boolean) {
      for (let i = 0; i < 200 && !ok(); i++) await new Promise((r) => setTimeout(r, 5));
      assert.ok(ok(), what);
    },
    /** `n` calls, then `n` more once their batch arrived: two batches unanswered, both slots taken. */
    async takeBothSlots(n: number) {
      const first = this.calls(n);
      await this.until('the first batch arrived', () => received.length === 1);
      const second = this.calls(n);
      await this.until('the second batch arrived', () => received.length === 2);
      return [first, second] as const;
    },
    async close() {
      await client.close();
      await node.close();
    },
  };
}

test('a client keeps two batches unanswered per node: the calls made meanwhile wait, then go in one batch', async ({ nats }) => {
  const held = await heldBatches(nats, 'slots');
  const { received, calls, until, answer, clock } = held;
  try {
    const [first, second] = await held.takeBothSlots(3);
    // Two unanswered: calls made in two later ticks wait.
    const third = calls(3);
    await new Promise((r) => setImmediate(r));
    third.push(...calls(2));
    await new Promise((r) => setTimeout(r, 100));
    assert.is(received.length, 2, 'no third batch while two wait for their first answer');
    answer(0);
    await until('a third batch followed the answer', () => received.length === 3);
    assert.is(received[2]!.calls, 5, 'the five calls that waited went together');
    assert.equal(await Promise.all(first), [1, 1, 1]);
    // Batches 2 and 3 unanswered: calls wait, until those have held their slots for 5 ms.
    const fourth = calls(2);
    await new Promise((r) => setTimeout(r, 50));
    assert.is(received.length, 3, 'the calls wait for a slot');
    clock.advance(5);
    await until('a batch unanswered for 5 ms no longer holds its slot', () => received.length === 4);
    for (const i of [1, 2, 3]) answer(i);
    assert.equal(await Promise.all(second), [2, 2, 2]);
    assert.equal(await Promise.all(third), [3, 3, 3, 3, 3]);
    assert.equal(await Promise.all(fourth), [4, 4]);
  } finally {
    await held.close();
  }
});

test('calls waiting for a slot go within 5 ms even when the batches holding the slots were sent after they began to wait', async ({ nats }) => {
  const held = await heldBatches(nats, 'slots2');
  const { received, calls, until, answer, clock } = held;
  try {
    const [first, second] = await held.takeBothSlots(2);
    const third = calls(2); // they wait, at 0 ms
    await new Promise((r) => setTimeout(r, 50));
    clock.advance(1);
    answer(0);
    answer(1);
    // Both slots freed at 1 ms: the waiting calls go, and the calls of the next tick take the other slot.
    await until('the waiting calls went', () => received.length === 3);
    const fourth = calls(2);
    await until('the next calls took the other slot', () => received.length === 4);
    const fifth = calls(2); // wait for batches sent at 1 ms
    await new Promise((r) => setTimeout(r, 50));
    clock.advance(4); // 5 ms: what was set when the third calls began to wait finds no batch 5 ms old
    await new Promise((r) => setTimeout(r, 50));
    assert.is(received.length, 4, 'still waiting: the batches holding the slots are 4 ms old');
    clock.advance(5);
    await until('the calls still waiting went once those batches were 5 ms old', () => received.length === 5);
    for (const i of [2, 3, 4]) answer(i);
    assert.equal(await Promise.all([...first, ...second, ...third, ...fourth, ...fifth]), [1, 1, 2, 2, 3, 3, 4, 4, 5, 5]);
  } finally {
    await held.close();
  }
});

test.run();
