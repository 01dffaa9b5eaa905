/**
 * One client floods one actor with raw calls, as fast as NATS takes them,
 * while another client calls other actors of the same nodes. What must hold:
 * - no node loses its lease to the flood (heartbeats do not queue behind it);
 * - the other actors keep answering: every call to them ends with its reply
 *   (the typed client retries, under the call's idempotency key, one that
 *   waited out its timeout behind the flood), whether it went alone or in a
 *   batch to the flooded node;
 * - the flooded actor sheds what it cannot take with `Overloaded`, which
 *   changed nothing: its final count is at least the acknowledged
 *   increments and at most those plus the ones whose outcome is unknown.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { connect, headers as natsHeaders, type NatsConnection } from '@nats-io/transport-node';
import { createClient, isMoltError, type MoltClient } from '../../runtime/index.ts';
import { callSubject, DEFAULT_SHARDS, encodeKey } from '../../runtime/internal.ts';
import { counterV1 } from '../fixtures/counter.ts';
import { spawnScript, startEmbeddedNats, type ChildNode, type EmbeddedNats } from '../support/nats.ts';

/** The default lease and heartbeat: the flood, not tight timing, must be what a node survives. */
const LEASE_MS = 5000;
const HEARTBEAT_MS = 1000;
/** Calls in the flood. */
const FLOOD = 300_000;

const test = suite<{ nats: EmbeddedNats; nodes: ChildNode[]; client: MoltClient; nc: NatsConnection }>('overload');

test.before(async (ctx) => {
  ctx.nats = await startEmbeddedNats();
  ctx.nodes = ['flood-a', 'flood-b'].map((id) =>
    spawnScript('bin/molt.js', ['node', 'test/fixtures/counter.ts', '--nats', ctx.nats.url, '--id', id, '--lease', String(LEASE_MS), '--heartbeat', String(HEARTBEAT_MS)], { MOLT_LOG: 'warn' }),
  );
  await Promise.all(ctx.nodes.map((n) => n.waitFor(/serving counters/, 30_000)));
  ctx.client = await createClient({ service: 'counters', nats: { servers: ctx.nats.url }, timeoutMs: 3000, retryUnavailableMs: 3000 });
  ctx.nc = await connect({ servers: ctx.nats.url, noAsyncTraces: true });
});

test.after(async (ctx) => {
  await ctx.nc?.close().catch(() => undefined);
  await ctx.client?.close().catch(() => undefined);
  await Promise.all((ctx.nodes ?? []).map((n) => n.kill('SIGKILL')));
  await ctx.nats?.stop();
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Runs a call until it succeeds (setting up, before the flood starts). */
async function retried<T>(call: () => Promise<T>): Promise<T> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await call();
    } catch (e) {
      if (attempt >= 20 || !isMoltError(e) || !e.retryable) throw e;
      await sleep(250);
    }
  }
}

test('overload - a flood on one actor sheds load with Overloaded, fences no node, and others keep being answered', async (ctx) => {
  const flooded = ctx.client.actor(counterV1, 'hot');
  await retried(() => flooded.reset());

  // The flood: raw increments; the first reply to each call decides its outcome.
  const outcome: Array<string | undefined> = new Array(FLOOD);
  const inbox = `_INBOX.flood.${Date.now()}`;
  const sub = ctx.nc.subscribe(`${inbox}.*`, {
    callback: (_err, msg) => {
      const i = Number(msg.subject.slice(inbox.length + 1));
      if (outcome[i] !== undefined) return;
      const status = msg.headers?.get('Molt-Status');
      if (status === 'ok') outcome[i] = 'ok';
      else if (status === 'error') outcome[i] = (JSON.parse(new TextDecoder().decode(msg.data)) as { json: { code: string } }).json.code;
      // A status message (503: no node subscribed at that instant) was not delivered to any node.
      else outcome[i] = `status ${msg.headers?.code ?? '?'}`;
    },
  });
  const tally = (): Record<string, number> => {
    const out: Record<string, number> = {};
    for (const code of outcome) if (code !== undefined) out[code] = (out[code] ?? 0) + 1;
    return out;
  };
  const h = natsHeaders();
  h.set('Molt-Version', '1');
  h.set('Molt-Message', 'increment');
  const subject = callSubject('counters', 'counter', encodeKey('hot'), DEFAULT_SHARDS);
  const body = new TextEncoder().encode('{"json":{"by":1}}');

  // Well-behaved callers on other actors: each keeps four calls in flight
  // together, so the client sends them in batches to the flooded nodes.
  const others = Array.from({ length: 8 }, (_, i) => `calm-${i}`);
  const otherErrors: string[] = [];
  let otherCalls = 0;
  let running = true;
  let batches = 0;
  const spy = ctx.nc.subscribe('molt.counters._batch.>', {
    callback: () => {
      batches++;
    },
  });
  const calm = Promise.all(
    others.map(async (caller) => {
      const refs = [0, 1, 2, 3].map((j) => ({ key: `${caller}-${j}`, ref: ctx.client.actor(counterV1, `${caller}-${j}`), expected: 0 as number | undefined }));
      for (const r of refs) await retried(() => r.ref.reset());
      while (running) {
        await Promise.all(
          refs.map(async (r) => {
            try {
              const value = await r.ref.increment({ by: 1 });
              if (r.expected !== undefined && value !== r.expected + 1) otherErrors.push(`${r.key}: ${value} after ${r.expected}`);
              r.expected = value;
              otherCalls++;
            } catch (e) {
              otherErrors.push(`${r.key}: ${isMoltError(e) ? e.code : String(e)}`);
              r.expected = undefined; // unknown until the next acknowledged increment
            }
          }),
        );
        await sleep(20);
      }
    }),
  );

  for (let i = 0; i < FLOOD; i++) {
    ctx.nc.publish(subject, body, { reply: `${inbox}.${i}`, headers: h });
    if (i % 5000 === 4999) await ctx.nc.flush();
  }
  await ctx.nc.flush();
  // Let the nodes work through what reached them.
  let last = -1;
  for (let waited = 0; waited < 60_000; waited += 500) {
    const total = outcome.filter((o) => o !== undefined).length;
    if (total === FLOOD || total === last) break;
    last = total;
    await sleep(500);
  }
  running = false;
  await calm;
  sub.unsubscribe();
  spy.unsubscribe();

  const replies = tally();
  const answered = Object.values(replies).reduce((a, b) => a + b, 0);
  const acked = replies.ok ?? 0;
  const uncertain = (replies.OutcomeUnknown ?? 0) + (FLOOD - answered);
  const final = await flooded.get();
  const fenced = ctx.nodes.filter((n) => /lease expired/.test(n.output())).length;
  const summary = `flood of ${FLOOD}: replies ${JSON.stringify(replies)}, unanswered ${FLOOD - answered}, final ${final}; other actors: ${otherCalls} calls, ${batches} batch messages, errors ${otherErrors.length} ${otherErrors.slice(0, 5).join('; ')}; nodes fenced ${fenced}`;
  console.log(`overload: ${summary}`);
  for (const n of ctx.nodes) console.log(n.output().split('\n').filter((l) => /warn|error/.test(l)).slice(0, 8).map((l) => l.slice(0, 240)).join('\n'));

  assert.is(fenced, 0, `no node lost its lease (${summary})`);
  assert.equal(otherErrors, [], `every call to another actor was answered (${summary})`);
  assert.ok(otherCalls > 0);
  assert.ok(batches > 0, `the other callers' calls went in batches too (${summary})`);
  assert.ok(final >= acked, `no acknowledged increment lost (${summary})`);
  assert.ok(final <= acked + uncertain, `no increment refused with an error was applied (${summary})`);
  // Unavailable (a refused write) and Overloaded changed nothing; OutcomeUnknown and no reply are the uncertain ones.
  const unexpected = Object.keys(replies).filter((c) => !['ok', 'Overloaded', 'OutcomeUnknown', 'Unavailable'].includes(c));
  assert.equal(unexpected, [], `only ok, Overloaded, Unavailable or OutcomeUnknown (${summary})`);
});

test.run();
