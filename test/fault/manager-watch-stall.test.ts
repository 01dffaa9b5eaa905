/**
 * A node whose upgrade manager's watches stop delivering must still learn of
 * a publish within seconds.
 *
 * The manager learns of descriptors, rollouts, commands and retirements
 * through KV watches, each an ordered push consumer on one nats-server. When
 * that server dies (or the consumer is lost), the watch delivers nothing
 * more, and the NATS client notices only after two missed idle heartbeats of
 * 30 s each; until then the node would learn of a publish, a pause or an
 * abort only at its next full read (every 12th period: a minute at the
 * default 5 s). Here, on one nats-server, the manager's watch consumers are
 * deleted while the node is frozen (so it misses the server's notice, as it
 * would miss a dead server's), the node is resumed, and an upgrade is
 * published: the node must notice that its watches no longer deliver, restart
 * them, and upgrade.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import type { NatsConnection } from '@nats-io/transport-node';
import { jetstreamManager } from '@nats-io/jetstream';
import type { Udb } from '../../runtime/udb/index.ts';
import type { ChildNode, EmbeddedNats } from '../support/nats.ts';
import { startEmbeddedNats } from '../support/nats.ts';
import { killAll, openCounters, publish, startUpgradableNode, testPublisher, waitForVersions } from '../support/upgrades.ts';

/** The manager's default period: a full read every 12th, a minute apart. */
const RECONCILE_MS = 5000;
/** Two periods for the stall to show, one for the read and the upgrade; well under the next full read's minute. */
const UPGRADED_WITHIN_MS = 25_000;

const test = suite<{ nats: EmbeddedNats; node: ChildNode; nc: NatsConnection; udb: Udb }>('manager: a stalled watch');

test.before(async (ctx) => {
  ctx.nats = await startEmbeddedNats();
  ({ nc: ctx.nc, udb: ctx.udb } = await openCounters(ctx.nats.url));
});

test.after(async (ctx) => {
  ctx.node?.process.kill('SIGCONT');
  await killAll([ctx.node], 'SIGKILL');
  await ctx.nc?.drain().catch(() => undefined);
  await ctx.nats?.stop();
});

/** Deletes the consumers of every watch but the node records' (placement checks that one itself); returns their filters. */
async function deleteManagerWatches(nc: NatsConnection): Promise<string[]> {
  const jsm = await jetstreamManager(nc);
  const deleted: string[] = [];
  for (const stream of ['KV_molt_counters_udb', 'KV_molt_counters_upgrades']) {
    const doomed: Array<{ name: string; filter: string }> = [];
    for await (const ci of jsm.consumers.list(stream)) {
      const filter = ci.config.filter_subject ?? '';
      if (!filter.endsWith('.nodes.>')) doomed.push({ name: ci.name, filter });
    }
    for (const { name, filter } of doomed) {
      await jsm.consumers.delete(stream, name);
      deleted.push(filter);
    }
  }
  return deleted.sort();
}

test('a manager whose watches stalled learns of a publish and upgrades', async (ctx) => {
  const publisher = testPublisher();
  ctx.node = await startUpgradableNode(ctx.nats.url, 'stall-a', { trust: [publisher.publicKey], args: ['--reconcile', String(RECONCILE_MS)] });
  // The first full read has passed once the descriptors bucket is watched.
  const deleted = await (async () => {
    for (const until = Date.now() + 10_000; Date.now() < until; await new Promise((r) => setTimeout(r, 200))) {
      const jsm = await jetstreamManager(ctx.nc);
      if ((await jsm.streams.info('KV_molt_counters_upgrades')).state.consumer_count > 0) break;
    }
    ctx.node.process.kill('SIGSTOP');
    try {
      return await deleteManagerWatches(ctx.nc);
    } finally {
      ctx.node.process.kill('SIGCONT');
    }
  })();
  assert.equal(
    deleted,
    ['$KV.molt_counters_udb.control.>', '$KV.molt_counters_udb.retired.>', '$KV.molt_counters_udb.rollouts.>', '$KV.molt_counters_upgrades.upgrade.>'],
    'the four watches of the manager were found and deleted',
  );

  const publishedAt = Date.now();
  await publish(ctx.nats.url, publisher.signer, 'test/fixtures/counter-v2.ts');
  try {
    await waitForVersions(ctx.udb, ['stall-a'], 'counter', 2, UPGRADED_WITHIN_MS);
  } catch (e) {
    throw new Error(`${(e as Error).message}\nnode log:\n${ctx.node.output().slice(-3000)}`);
  }
  console.log(`manager watch stall: upgraded ${Date.now() - publishedAt} ms after the publish, its four watch consumers deleted before it`);
  assert.match(ctx.node.output(), /upgrade watch stalled: restarting it/);
});

test.run();
