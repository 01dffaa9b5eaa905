/**
 * Issue 7, part 3: a node that loses NATS for longer than its placement lease
 * stops serving before another node takes its shards, and never answers from
 * the state it had before.
 *
 * Two node processes, A and B, share the counters under open-loop load
 * (increments and reads). A is frozen with SIGSTOP — to A it is as if the
 * network were cut — for well past its lease: B takes A's shards and serves
 * writes to A's actors. Then A gets SIGCONT: it finds its lease expired,
 * runs none of the calls that queued up for it and answers them
 * `OutcomeUnknown` (B may have received and run the same messages, so A
 * cannot say "not applied"), renews, and takes its shards back only after B
 * has let go.
 *
 * Proof that no two nodes answered for one actor with different states:
 * every increment reply of a key is distinct, and for each key the
 * acknowledged increment replies are exactly 1, 2, …, n with a final value of
 * n (every acknowledged increment present, nothing else applied); no answer
 * is older than an answer acknowledged before its call was sent.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { connect } from '@nats-io/transport-node';
import { Kvm } from '@nats-io/kv';
import { createClient, type MoltClient } from '../../runtime/index.ts';
import { assignShards, DEFAULT_SHARDS, encodeKey, shardOf } from '../../runtime/internal.ts';
import { logEvents, spawnScript, startEmbeddedNats, type ChildNode, type EmbeddedNats } from '../support/nats.ts';
import { History, now, runOpenLoad } from '../support/load.ts';
import { tearDown } from '../support/nodes.ts';

const LEASE_MS = 2000;
const HEARTBEAT_MS = 300;
/** How long A stays frozen: well past its lease, so B takes over and serves a while. */
const PAUSE_MS = 5000;

const test = suite<{ nats: EmbeddedNats; a: ChildNode; b: ChildNode; client: MoltClient }>('lease');

function startNode(url: string, id: string): ChildNode {
  return spawnScript('bin/molt.js', ['node', 'test/fixtures/counter.ts', '--nats', url, '--id', id, '--lease', String(LEASE_MS), '--heartbeat', String(HEARTBEAT_MS)], { MOLT_LOG: 'debug' });
}

test.before(async (ctx) => {
  ctx.nats = await startEmbeddedNats();
  ctx.a = startNode(ctx.nats.url, 'lease-a');
  ctx.b = startNode(ctx.nats.url, 'lease-b');
  await Promise.all([ctx.a.waitFor(/serving counters/), ctx.b.waitFor(/serving counters/)]);
  // Longer than the pause: every call gets a definite answer (a reply, or
  // A's Unavailable once it runs again), so no outcome is left uncertain.
  ctx.client = await createClient({ service: 'counters', nats: { servers: ctx.nats.url }, timeoutMs: 20_000, retryUnavailableMs: 10_000 });
});

test.after((ctx) => tearDown({ nodes: [ctx.a, ctx.b], client: ctx.client, nats: ctx.nats }));

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** `heartbeatAt` of a node's record in the upgrade database (the start of its last successful heartbeat). */
async function lastHeartbeatOf(url: string, id: string): Promise<number> {
  const nc = await connect({ servers: url });
  try {
    const kv = await new Kvm(nc).open('molt_counters_udb');
    const entry = await kv.get(`nodes.${id}`);
    return entry!.json<{ heartbeatAt: number }>().heartbeatAt;
  } finally {
    await nc.close();
  }
}

/** Waits until a node logs `msg` (with an `owned` count that passes `owned`, if given) after `since`; returns when it did. */
async function logged(node: ChildNode, since: number, msg: string, owned?: number | ((n: number) => boolean), timeoutMs = 15_000): Promise<number> {
  const deadline = Date.now() + timeoutMs;
  const ownedOk = (n: number | undefined) => owned === undefined || (typeof owned === 'number' ? n === owned : n !== undefined && owned(n));
  for (;;) {
    const hit = logEvents(node).find((e) => e.at >= since && e.msg === msg && ownedOk(e.owned));
    if (hit) return hit.at;
    if (Date.now() > deadline) throw new Error(`timed out waiting for '${msg}'${owned === undefined ? '' : ` (owned ${owned})`}; log:\n${node.output().slice(-3000)}`);
    await sleep(50);
  }
}

test('lease - a node frozen past its lease is fenced before its shards move, and never answers from stale state', async ({ nats, a, b, client }) => {
  // Keys on A's shards (most) and on B's, by the same rendezvous the nodes use.
  const owners = assignShards(['lease-a', 'lease-b'], DEFAULT_SHARDS);
  const all = Array.from({ length: 400 }, (_, i) => `lp-${i}`);
  const onA = all.filter((k) => owners[shardOf(encodeKey(k), DEFAULT_SHARDS)] === 'lease-a').slice(0, 16);
  const onB = all.filter((k) => owners[shardOf(encodeKey(k), DEFAULT_SHARDS)] === 'lease-b').slice(0, 8);
  const keys = [...onA, ...onB];

  // A healthy cluster of one nats-server: Unavailable here only ever means "not applied".
  const history = new History({ notApplied: ['Unavailable'] });
  const load = runOpenLoad({ client, keys, ratePerSec: 150, readShare: 0.3 }, history);
  await sleep(1500);

  const pausedAt = Date.now();
  const pausedPerf = now();
  a.process.kill('SIGSTOP');
  // A's last heartbeat (its lease counts from there): the record it can no longer renew.
  await sleep(HEARTBEAT_MS * 2);
  const lastHeartbeat = await lastHeartbeatOf(nats.url, 'lease-a');
  // B takes every shard once A's lease ran out (and not before).
  const takeover = await logged(b, pausedAt, 'shards changed', DEFAULT_SHARDS);
  await sleep(Math.max(0, PAUSE_MS - (Date.now() - pausedAt)));
  const servedByB = history.ops.filter((o) => o.kind === 'inc' && o.ok && onA.includes(o.key) && o.sentAt > pausedPerf + (takeover - pausedAt)).length;

  const resumedAt = Date.now();
  a.process.kill('SIGCONT');
  const fenced = await logged(a, resumedAt, 'lease expired: no longer serving any shard until the heartbeat is renewed');
  const renewed = await logged(a, resumedAt, 'lease renewed; serving again');
  // A takes its shards back only after B released them.
  const released = await logged(b, resumedAt, 'shards changed');
  const regained = await logged(a, renewed, 'shards changed', (n) => n > 0);
  const regainedCount = logEvents(a).find((e) => e.at === regained && e.msg === 'shards changed')?.owned;
  await sleep(2500);
  await load.stop();

  const finals = new Map<string, number>();
  for (const key of keys) finals.set(key, (await client.call('counter', 1, key, 'get', {})) as number);
  const { lost, phantom } = history.checkFinal(finals);
  const order = history.checkOrder();
  const failures = history.failuresByCode();
  const fenceReplies = history.ops.filter((o) => o.code === 'OutcomeUnknown' && /did not run this call/.test(o.message ?? '')).length;

  // Exactly 1..n per key: every acknowledged increment saw its own state, none was applied twice or lost.
  const gaps: string[] = [];
  for (const key of keys) {
    const replies = history.ops.filter((o) => o.key === key && o.kind === 'inc' && o.ok).map((o) => o.value!).sort((x, y) => x - y);
    const exact = replies.every((v, i) => v === i + 1) && finals.get(key) === replies.length;
    if (!exact) gaps.push(`${key}: replies ${replies.slice(0, 8).join(',')}… (${replies.length}), final ${finals.get(key)}`);
  }

  const t = (at: number) => `+${at - pausedAt} ms`;
  if (process.env.MOLT_DEBUG_LEASE) for (const [n, node] of [['A', a], ['B', b]] as const) for (const e of logEvents(node).filter((e) => e.at >= pausedAt - 500)) console.log(n, t(e.at), e.msg, e.owned ?? '');
  console.log(`lease: A frozen at 0 ms (lease ${LEASE_MS} ms, heartbeat ${HEARTBEAT_MS} ms); its last heartbeat at ${t(lastHeartbeat)}, so it could serve until ${t(lastHeartbeat + 0.8 * LEASE_MS)} at most; B took all shards at ${t(takeover)} and acknowledged ${servedByB} increments to A's actors while A was frozen`);
  console.log(`lease: A resumed at ${t(resumedAt)}, fenced itself at ${t(fenced)}, answered ${fenceReplies} queued calls OutcomeUnknown without running them, renewed at ${t(renewed)}; B released at ${t(released)}; A took back ${regainedCount} shards at ${t(regained)}`);
  console.log(`lease: ${history.calls} calls, ${history.okCount} ok, failures ${JSON.stringify(failures)}; lost ${lost.length}, phantom ${phantom.length}, order violations ${order.length}, keys not exactly 1..n ${gaps.length}`);

  assert.ok(takeover - lastHeartbeat > LEASE_MS, `B must not take A's shards before A's lease ran out (took them ${takeover - lastHeartbeat} ms after A's last heartbeat)`);
  assert.ok(servedByB > 0, 'B served writes to A\'s actors while A was frozen');
  assert.ok(regained >= released, 'A took its shards back only after B released them');
  assert.equal(Object.keys(failures).filter((c) => c !== 'Unavailable' && c !== 'OutcomeUnknown'), [], `only Unavailable and OutcomeUnknown failures: ${JSON.stringify(failures)}`);
  assert.equal(order, [], 'no answer older than one acknowledged before it was sent');
  assert.equal(lost, [], 'no acknowledged increment lost');
  assert.equal(phantom, [], 'no increment applied that was not acknowledged');
  assert.equal(gaps, [], 'increment replies are exactly 1..n per key and the final value is n');
  assert.is(a.process.exitCode, null, 'A still runs');
});

test.run();
