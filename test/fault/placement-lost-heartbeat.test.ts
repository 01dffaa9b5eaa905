/**
 * A heartbeat whose answer is lost with its connection must not keep the
 * node from serving for longer than its lease.
 *
 * When a nats-server restarts (or a link resets), a JetStream write in flight
 * may be stored while its acknowledgement is lost. The NATS client then waits
 * its whole request timeout (5 s) before it gives up on the write; a node
 * whose heartbeat waited that long fenced itself meanwhile and served nothing
 * until the next heartbeat, seconds after the connection was back — longer
 * than the client's own retry window, so reads right after a restart failed.
 *
 * Here the node's connection runs through a proxy. The proxy holds the
 * server's answers until a heartbeat has reached the server, then drops the
 * connection with the acknowledgement in it. A caller on its own connection
 * calls the node throughout: it must be refused for no longer than about a
 * lease.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { Kvm } from '@nats-io/kv';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { createClient, type MoltClient } from '../../runtime/index.ts';
import { bucketNames } from '../../runtime/internal.ts';
import { spawnScript, startEmbeddedNats, type ChildNode, type EmbeddedNats } from '../support/nats.ts';
import { startNatsProxy, type NatsProxy } from '../support/proxy.ts';

const LEASE_MS = 1000;
const HEARTBEAT_MS = 200;
/** What the caller watches for after the drop: well past the NATS client's 5 s request timeout. */
const WATCH_MS = 8000;
/**
 * The longest refusal allowed: the node reconnects (250 ms), its stalled beat
 * gives up within the lease, and the next one renews it. A heartbeat that
 * waited for the client's 5 s request timeout refuses calls for about 4 s.
 */
const OUTAGE_BOUND_MS = 2500;

const test = suite<{ nats: EmbeddedNats; proxy: NatsProxy; node: ChildNode; nc: NatsConnection; client: MoltClient }>('placement: lost heartbeat');

test.after(async (ctx) => {
  await ctx.client?.close().catch(() => undefined);
  await ctx.nc?.close().catch(() => undefined);
  await ctx.node?.kill('SIGKILL');
  await ctx.proxy?.close();
  await ctx.nats?.stop();
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

test('placement - a heartbeat acknowledgement lost with the connection does not fence the node for seconds', async (ctx) => {
  ctx.nats = await startEmbeddedNats();
  ctx.proxy = await startNatsProxy(ctx.nats.url);
  ctx.node = spawnScript('bin/molt.js', ['node', 'test/fixtures/counter.ts', '--nats', ctx.proxy.url, '--id', 'lost-beat', '--lease', String(LEASE_MS), '--heartbeat', String(HEARTBEAT_MS)], { MOLT_LOG: 'info' });
  await ctx.node.waitFor(/serving counters/);
  ctx.nc = await connect({ servers: ctx.nats.url });
  ctx.client = await createClient({ service: 'counters', nats: ctx.nc, timeoutMs: 500, retryUnavailableMs: 0 });
  const udb = await new Kvm(ctx.nc).open(bucketNames('counters').udb);
  const recordRevision = async () => (await udb.get('nodes.lost-beat'))?.revision ?? 0;
  await ctx.client.call('counter', 1, 'k', 'increment', { by: 1 });

  // Answers to the node are held until one of its heartbeats is stored...
  const before = await recordRevision();
  ctx.proxy.cut('to-client');
  const cutAt = Date.now();
  while ((await recordRevision()) === before) {
    assert.ok(Date.now() - cutAt < 5000, 'a heartbeat reaches the server through the cut');
    await sleep(10);
  }
  // ...then the connection goes, and that heartbeat's acknowledgement with it.
  ctx.proxy.drop();
  const droppedAt = Date.now();

  let refusedSince: number | undefined;
  let longestOutage = 0;
  let lastError = '';
  let answered = 0;
  while (Date.now() - droppedAt < WATCH_MS) {
    const at = Date.now();
    try {
      await ctx.client.call('counter', 1, 'k', 'get', {});
      answered++;
      if (refusedSince !== undefined) longestOutage = Math.max(longestOutage, at - refusedSince);
      refusedSince = undefined;
    } catch (e) {
      lastError = String(e);
      refusedSince ??= at;
    }
    await sleep(25);
  }
  if (refusedSince !== undefined) longestOutage = Math.max(longestOutage, Date.now() - refusedSince);
  assert.ok(answered > 0, `the node answers again after the drop (last error: ${lastError})`);
  assert.ok(
    longestOutage <= OUTAGE_BOUND_MS,
    `calls were refused for ${longestOutage} ms in a row after the drop (bound ${OUTAGE_BOUND_MS} ms; last error: ${lastError}); node log:\n${ctx.node.output().slice(-2500)}`,
  );
});

test.run();
