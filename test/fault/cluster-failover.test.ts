/**
 * Issue 7, part 1: Molt on a 3-server NATS cluster with R3 buckets.
 *
 * Two node processes (`molt node --nats url1,url2,url3 --replicas 3`) serve
 * counters under steady load from a client that also knows all three URLs.
 * The nats-server leading the state stream, then one leading neither of
 * Molt's streams, is killed with SIGKILL, left down under load until calls
 * succeed again and a while longer, and started again on the same ports and
 * store. Then:
 *
 * - calls kept succeeding once the clients reconnected; the only failures were
 *   retryable (Timeout, Unavailable);
 * - no acknowledged increment was lost, and none appeared from nowhere
 *   (acked ≤ value ≤ acked + uncertain), and no two answers contradict;
 * - the restarted server rejoined, every server's own replica of the state
 *   stream holds the same log (from its /jsz monitoring endpoint), and the KV
 *   read through each server's client port gives the same records, which
 *   match what Molt answers.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { createClient, createSuperjsonCodec, type MoltClient } from '../../runtime/index.ts';
import { spawnScript, eventually, type ChildNode } from '../support/nats.ts';
import { jetStreamView, placementEvents, startNatsCluster, readBucketVia, replicaStates, streamReplicas, type NatsCluster, type ReplicaState, type ReplicaEntry } from '../support/cluster.ts';
import { History, now, runCounterLoad, timeline } from '../support/load.ts';

const STATE_BUCKET = 'molt_counters_state';
const STATE_STREAM = `KV_${STATE_BUCKET}`;
const UDB_STREAM = 'KV_molt_counters_udb';
/** Longest acceptable outage after a server is killed: election timeout (≤ 9 s) plus fencing and placement. */
const RECOVERY_BOUND_MS = 30_000;
const STEADY_MS = 3000;
/** The nodes' placement lease (--lease). */
const LEASE_MS = 4000;
const RETRYABLE = new Set(['Timeout', 'Unavailable', 'OutcomeUnknown']);

const test = suite<{ cluster: NatsCluster; nodes: ChildNode[]; client: MoltClient }>('cluster');

function startNode(cluster: NatsCluster, id: string): ChildNode {
  return spawnScript('runtime/cli/main.ts', ['node', 'test/fixtures/counter.ts', '--nats', cluster.natsArg, '--id', id, '--replicas', '3', '--lease', String(LEASE_MS), '--heartbeat', '500'], { MOLT_LOG: 'warn' });
}

test.before(async (ctx) => {
  ctx.cluster = await startNatsCluster();
  ctx.nodes = [startNode(ctx.cluster, 'c1'), startNode(ctx.cluster, 'c2')];
  // uvu reports a failed before hook only as "(0 / 1)", without the error: print it.
  await Promise.all(ctx.nodes.map((n) => n.waitFor(/serving counters/, 75_000))).catch((e: Error) => {
    console.error(`a node did not start: ${e.message}`);
    throw e;
  });
  ctx.client = await createClient({ service: 'counters', nats: { servers: ctx.cluster.urls }, timeoutMs: 4000 });
});

/** Stops the callers; test.after calls it too, since callers left running after a failure keep the process alive. */
let stopLoad = async (): Promise<void> => undefined;

test.after(async (ctx) => {
  await stopLoad();
  await ctx.client?.close().catch(() => undefined);
  await Promise.all((ctx.nodes ?? []).map((n) => n.kill('SIGKILL')));
  await ctx.cluster?.stop();
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Index of the server named `name` (n1, n2, ...). */
const indexOf = (name: string | undefined) => Number(name?.slice(1) ?? 1) - 1;

test('cluster - kill the state leader, then a follower, under load: only retryable errors, nothing lost, replicas agree', async ({ cluster, client, nodes }) => {
  const keys = Array.from({ length: 40 }, (_, i) => `cl-${i}`);
  const history = new History();
  // Calls not answered yet count too: a call stuck until its timeout (on a
  // shard nobody serves) is recorded only 4 s later, and leaving it out made
  // a cluster with half its shards unserved look recovered.
  const inFlight = new Set<{ sentAt: number }>();
  const tracked: MoltClient = {
    ...client,
    call(...args) {
      const c = { sentAt: now() };
      inFlight.add(c);
      return client.call(...args).finally(() => inFlight.delete(c));
    },
  };
  /** Calls sent in [from, to): answered ok, and all (answered or not). */
  const sentIn = (from: number, to: number) => {
    const answered = history.ops.filter((o) => o.sentAt >= from && o.sentAt < to);
    const waiting = [...inFlight].filter((c) => c.sentAt >= from && c.sentAt < to).length;
    return { ok: answered.filter((o) => o.ok).length, all: answered.length + waiting };
  };
  const load = runCounterLoad({ client: tracked, keys, workers: 12, readShare: 0.2 }, history);
  stopLoad = load.stop;
  await sleep(2000);

  // The worst case first: the server leading the state stream (a Raft
  // election must replace it), then one that leads neither of our streams.
  const stateLeader = indexOf((await streamReplicas(cluster.urls[0]!, STATE_STREAM)).leader);
  const udbLeader = indexOf((await streamReplicas(cluster.urls[0]!, UDB_STREAM)).leader);
  const follower = [0, 1, 2].find((i) => i !== stateLeader && i !== udbLeader) ?? (stateLeader + 1) % 3;
  const order = [stateLeader, follower];
  const rounds: string[] = [];
  for (const victim of order) {
    const killedAt = now();
    await cluster.kill(victim);
    // Wait for service to come back on the two remaining servers: the clients
    // reconnect at once, but a killed leader is replaced only after a Raft
    // election timeout (4-9 s in nats-server 2.9).
    // Recovered: the calls sent in one second (now answered) were nearly all ok.
    // Only calls sent a lease after the kill count: the nodes fence themselves
    // only after 80% of a lease without a heartbeat, so the calls answered in
    // the first seconds say nothing (they once passed this check just before
    // both nodes fenced).
    await waitUntil(() => {
      const from = now() - 2500;
      const window = sentIn(Math.max(from, killedAt + LEASE_MS), from + 1000);
      return window.all >= 10 && window.ok / window.all >= 0.95;
    }, async () => `calls succeed again with n${victim + 1} down:\n${timeline(history, killedAt)}\n${await jetStreamView(cluster, [STATE_STREAM, UDB_STREAM])}\n${nodes.map(placementEvents).join('\n')}`, RECOVERY_BOUND_MS);
    // Then stay down a while: calls keep succeeding.
    // (Judged a second later, so that a call stuck in the window counts as failed.)
    // nats-server 2.9 sometimes holds a second election among the two servers
    // left, which stalls writes for seconds again whatever its clients do: a
    // window in which a stream's leader changed says nothing about Molt, and
    // is measured again (twice at most).
    const survivor = cluster.urls[(victim + 1) % 3]!;
    let steady = { ok: 0, all: 0 };
    for (let attempt = 0; ; attempt++) {
      const leadersBefore = await streamLeaders(survivor);
      const steadyFrom = now();
      await sleep(STEADY_MS + 1000);
      steady = sentIn(steadyFrom, steadyFrom + STEADY_MS);
      const leadersAfter = await streamLeaders(survivor);
      const held = steady.all > 0 && steady.ok / steady.all > 0.95;
      if (held || attempt === 2 || (leadersBefore !== undefined && leadersBefore === leadersAfter)) break;
      console.log(`cluster:   n${victim + 1} down: ${steady.ok}/${steady.all} ok while the stream leaders went ${leadersBefore ?? '(unknown)'} -> ${leadersAfter ?? '(unknown)'}; measuring again`);
    }
    const steadyOk = steady.ok;
    await cluster.restart(victim);
    await cluster.waitReady();
    // It rejoined: the leader reports every replica current.
    await eventually(async () => {
      try {
        const info = await streamReplicas(cluster.urls[victim]!, STATE_STREAM);
        return info.replicas.length === 2 && info.replicas.every((r) => r.current);
      } catch {
        return false;
      }
    }, `server n${victim + 1} rejoins the state stream`, 30_000);
    const since = history.ops.filter((o) => o.sentAt >= killedAt);
    const failed = since.filter((o) => !o.ok);
    const codes: Record<string, number> = {};
    for (const o of failed) codes[o.code!] = (codes[o.code!] ?? 0) + 1;
    const lastFailure = failed.length ? Math.round(Math.max(...failed.map((o) => o.sentAt)) - killedAt) : 0;
    rounds.push(
      `n${victim + 1} killed: ${failed.length} calls failed ${JSON.stringify(codes)}, the last sent ${lastFailure} ms after the kill; ` +
        `then ${steadyOk}/${steady.all} ok in ${STEADY_MS} ms with it still down; restarted, rejoined`,
    );
    console.log(`cluster:   ${rounds[rounds.length - 1]}`);
    if (!(steady.all > 0 && steadyOk / steady.all > 0.95)) {
      assert.unreachable(`calls keep succeeding with n${victim + 1} down: ${steadyOk}/${steady.all} ok\n${timeline(history, killedAt)}\n${await jetStreamView(cluster, [STATE_STREAM, UDB_STREAM])}\n${nodes.map(placementEvents).join('\n')}`);
    }
    await sleep(1000);
  }
  await stopLoad();

  // Final values through Molt, then the replicas directly.
  const finals = new Map<string, number>();
  for (const key of keys) finals.set(key, (await client.call('counter', 1, key, 'get', {})) as number);
  const { lost, phantom } = history.checkFinal(finals);
  const order_ = history.checkOrder();
  const failures = history.failuresByCode();
  const nonRetryable = Object.keys(failures).filter((c) => !RETRYABLE.has(c));

  // Every server's own replica holds the same log (wait for the last writes to reach all).
  let states: ReplicaState[] = [];
  await eventually(async () => {
    states = await replicaStates(cluster, STATE_STREAM);
    return states.length === 3 && states.every((r) => r.messages === states[0]!.messages && r.bytes === states[0]!.bytes && r.lastSeq === states[0]!.lastSeq);
  }, "every server's replica of the state stream is the same", 15_000).catch((e: Error) => {
    // (The message of eventually() is built before the first check: add what the last one saw.)
    throw new Error(`${e.message}: ${JSON.stringify(states)}`);
  });
  // And reading the KV through each server's client port gives the same records.
  // Retried for a while: a key listing (an ordered consumer) through a server that
  // just rejoined can come back short, and the next listing is complete.
  let replicas: Array<Map<string, ReplicaEntry>> = [];
  await eventually(async () => {
    replicas = await Promise.all(cluster.urls.map((u) => readBucketVia(u, STATE_BUCKET)));
    return replicas.every((r) => sameEntries(r, replicas[0]!));
  }, 'every server answers the same records', 15_000);
  const codec = createSuperjsonCodec();
  for (const key of keys) {
    const rec = replicas[0]!.get(`counter.${key}`);
    const stored = rec ? (codec.decode(rec.bytes) as { json?: unknown; v: number; context: { count: number } }) : undefined;
    assert.is(stored?.context.count ?? 0, finals.get(key), `KV and Molt agree on ${key}`);
  }

  console.log(`cluster: ${history.calls} calls, ${history.okCount} ok, failures by code ${JSON.stringify(failures)}`);
  const totals = [...history.increments().values()].reduce((a, c) => ({ acked: a.acked + c.acked, uncertain: a.uncertain + c.uncertain }), { acked: 0, uncertain: 0 });
  console.log(`cluster: ${totals.acked} acknowledged increments, ${totals.uncertain} uncertain, lost ${lost.length}, phantom ${phantom.length}, order violations ${order_.length}; ${replicas[0]!.size} records, replicas identical (${states.map((r) => `${r.server}: ${r.messages} msgs, last seq ${r.lastSeq}`).join('; ')})`);
  if (lost.length + phantom.length + order_.length > 0) {
    for (const n of nodes) console.log(n.output().split('\n').filter((l) => /lease|fence|serving|heartbeat|watch/.test(l)).slice(-40).join('\n'));
    console.log(order_.slice(0, 10).join('\n'));
  }
  assert.equal(nonRetryable, [], `only retryable errors: ${JSON.stringify(failures)}`);
  assert.equal(lost, [], 'no acknowledged increment lost');
  assert.equal(phantom, [], 'no increment applied that was not sent');
  assert.equal(order_, [], 'no answer contradicts an earlier acknowledged one');
  for (const n of nodes) assert.is(n.process.exitCode, null, `node still running:\n${n.output().slice(-2000)}`);
});

/** The leaders of Molt's state and UDB streams, as `url`'s server reports them; undefined if it cannot say (an election). */
async function streamLeaders(url: string): Promise<string | undefined> {
  try {
    const [state, udb] = await Promise.all([streamReplicas(url, STATE_STREAM), streamReplicas(url, UDB_STREAM)]);
    return state.leader && udb.leader ? `state@${state.leader} udb@${udb.leader}` : undefined;
  } catch {
    return undefined;
  }
}

/** Like `eventually`, with a message built when it fails. */
async function waitUntil(check: () => boolean, what: () => string | Promise<string>, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out: ${await what()}`);
    await sleep(100);
  }
}

function sameEntries(a: Map<string, { revision: number; bytes: Uint8Array }>, b: Map<string, { revision: number; bytes: Uint8Array }>): boolean {
  if (a.size !== b.size) return false;
  for (const [k, e] of a) {
    const o = b.get(k);
    if (!o || o.revision !== e.revision || Buffer.compare(Buffer.from(o.bytes), Buffer.from(e.bytes)) !== 0) return false;
  }
  return true;
}

test.run();
