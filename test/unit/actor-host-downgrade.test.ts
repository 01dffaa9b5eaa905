/**
 * The actor host's rollback (`ActorHost.downgrade`) without NATS: the same
 * soft restart as an upgrade, downward through `down` — held calls,
 * compare-and-set writes, a failing `down` contained to its actor, and lazy
 * down-transforms only on a node that was rolled back.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { createSuperjsonCodec, isMoltError, silentLogger, SimulatedClock } from '../../runtime/index.ts';
import { ActorHost, createMemoryStore, type StateStore } from '../../runtime/internal.ts';
import type { AnyActorVersion } from '../../runtime/define/version.ts';
import { counterV1 } from '../fixtures/counter.ts';
import { counterV2 as chainV2 } from '../fixtures/counter-chain.ts';

/** counter-chain's v2 with a down transform: `ops` cannot be represented by v1 and is dropped; a count of 13 makes it throw. */
const counterV2 = chainV2.from(counterV1, {
  ...(chainV2.upgrade as object),
  down: ({ context }: { context: { count: number; ops: number } }) => {
    if (context.count === 13) throw new Error('unlucky thirteen');
    return { context: { count: context.count } };
  },
} as never) as AnyActorVersion;

/** A store whose writes wait until released. */
function gatedStore() {
  const inner = createMemoryStore();
  let gate: Promise<void> = Promise.resolve();
  let open: () => void = () => {};
  const store: StateStore = {
    load: (k) => inner.load(k),
    async save(k, b, r) {
      await gate;
      return inner.save(k, b, r);
    },
  };
  return {
    store,
    inner,
    close() {
      gate = new Promise((r) => (open = r));
    },
    release() {
      open();
    },
  };
}

const codec = createSuperjsonCodec();

function host(store: StateStore, current: number) {
  return new ActorHost({
    types: [counterV1, counterV2],
    current,
    volatile: false,
    passivateAfterMs: 60_000,
    holdLimit: 100,
    store,
    codec,
    clock: new SimulatedClock(),
    logger: silentLogger,
  });
}

/** The stored version stamp and context of an actor. */
async function stored(store: StateStore, h: ActorHost, key: string): Promise<{ v: number; context: unknown }> {
  const { bytes } = await store.load(h.storeKey(key));
  const p = codec.decode(bytes!) as { v: number; context: unknown };
  return { v: p.v, context: p.context };
}

const failure = (p: Promise<unknown>) => p.then((v) => assert.unreachable(`expected a failure, got ${JSON.stringify(v)}`), (e: unknown) => e);

const test = suite('actor host: rollback');

test('downgrade - calls during the switch are held, then served by v1 and by v2 future SO', async () => {
  const g = gatedStore();
  const h = host(g.store, 2);
  await h.deliver('a', 2, 'increment', { by: 5 });
  await h.deliver('a', 2, 'decrement', { by: 1 });
  g.close();
  const rolling = h.downgrade(1);
  const held = [h.deliver('a', 2, 'increment', { by: 10 }), h.deliver('a', 1, 'get', {}), failure(h.deliver('a', 2, 'stats', {}))];
  await new Promise((r) => setTimeout(r, 10));
  assert.is(h.currentVersion, 1, 'switched while the write waits');
  g.release();
  assert.equal(await rolling, { transformed: 1, failed: 0 });
  const [inc, get, stats] = await Promise.all(held);
  assert.is(inc, 14, 'a held v2 call is served through the future SO after the switch');
  assert.is(get, 14);
  assert.ok(isMoltError(stats, 'Disallowed'), `stats is disallowed by the future SO: ${String(stats)}`);
  assert.equal(await stored(g.inner, h, 'a'), { v: 1, context: { count: 14 } });
  assert.is(h.rolledBackFrom, 2);
  h.stop();
});

test('downgrade - refused without down, or anywhere but one version below', async () => {
  const h = host(createMemoryStore(), 2);
  const far = await failure(h.downgrade(0));
  assert.ok(isMoltError(far, 'OperationRefused'), String(far));
  const plain = new ActorHost({ types: [counterV1, chainV2], current: 2, volatile: false, passivateAfterMs: 60_000, holdLimit: 10, store: createMemoryStore(), codec, clock: new SimulatedClock(), logger: silentLogger });
  const noDown = await failure(plain.downgrade(1));
  assert.match((noDown as Error).message, /declares no down transform/);
  assert.is(plain.currentVersion, 2);
  h.stop();
  plain.stop();
});

test('downgrade - the write is compare-and-set: a change made elsewhere is carried down, not lost', async () => {
  const store = createMemoryStore();
  const a = host(store, 2);
  const b = host(store, 2);
  await a.deliver('c', 2, 'increment', { by: 1 });
  // Another node (b) changes the actor behind a's back: a's revision is stale.
  await b.deliver('c', 2, 'increment', { by: 2 });
  assert.equal(await a.downgrade(1), { transformed: 1, failed: 0 });
  assert.equal(await stored(store, a, 'c'), { v: 1, context: { count: 3 } });
  assert.is(await a.deliver('c', 1, 'get', {}), 3);
  a.stop();
  b.stop();
});

test('downgrade - a down that throws leaves that actor at v2, reported like a TF failure', async () => {
  const store = createMemoryStore();
  const h = host(store, 2);
  await h.deliver('bad', 2, 'increment', { by: 13 });
  await h.deliver('good', 2, 'increment', { by: 4 });
  assert.equal(await h.downgrade(1), { transformed: 1, failed: 1 });
  assert.equal(await stored(store, h, 'bad'), { v: 2, context: { count: 13, ops: 1 } }, 'untouched');
  assert.equal(await stored(store, h, 'good'), { v: 1, context: { count: 4 } });
  const err = await failure(h.deliver('bad', 1, 'get', {}));
  assert.ok(isMoltError(err, 'TransformFailed'), String(err));
  assert.match((err as Error).message, /down transform counter 2→1 failed for actor 'bad': unlucky thirteen/);
  assert.is(h.stats.transformFailures, 1);
  assert.equal([...h.transformFailures.values()].map((f) => [f.key, f.from, f.to]), [['bad', 2, 1]]);
  assert.is(await h.deliver('good', 2, 'increment', { by: 1 }), 5, 'other actors are served');
  h.stop();
});

test('lazy down - state written at v2 is carried down only on a node that was rolled back', async () => {
  const store = createMemoryStore();
  const upgraded = host(store, 2);
  for (const k of ['x', 'y', 'z']) await upgraded.deliver(k, 2, 'increment', { by: 7 });
  upgraded.stop();

  // A node merely behind (at v1, knows v2): never carries down.
  const behind = host(store, 1);
  const err = await failure(behind.deliver('x', 1, 'get', {}));
  assert.ok(isMoltError(err, 'VersionUnsupported'), String(err));
  assert.is((err as { retryable: boolean }).retryable, true);
  assert.equal(await stored(store, behind, 'x'), { v: 2, context: { count: 7, ops: 1 } });

  // Once marked rolled back (it was at v1 when the rollout was rolled back): carried down on load.
  behind.markRolledBack(2);
  assert.is(await behind.deliver('x', 1, 'increment', { by: 1 }), 8);
  assert.equal(await stored(store, behind, 'x'), { v: 1, context: { count: 8 } });
  assert.is(await behind.deliver('y', 2, 'get', {}), 7, 'callers of v2 through the future SO');

  // The rolled-back version published again: carrying down stops until this node upgrades.
  behind.clearRollback();
  assert.ok(isMoltError(await failure(behind.deliver('z', 1, 'get', {})), 'VersionUnsupported'));
  behind.stop();

  // A node that downgraded itself carries down the actors it did not have in memory.
  const rolled = host(store, 2);
  await rolled.downgrade(1);
  assert.is(await rolled.deliver('z', 1, 'get', {}), 7);
  rolled.stop();
});

test('upgrade after rollback - ends it: the node runs v2 natively again', async () => {
  const store = createMemoryStore();
  const h = host(store, 2);
  await h.deliver('r', 2, 'increment', { by: 2 });
  await h.downgrade(1);
  await h.deliver('r', 1, 'increment', { by: 1 });
  assert.equal(await h.upgrade(2), { transformed: 1, failed: 0 });
  assert.is(h.rolledBackFrom, undefined);
  assert.equal(await h.deliver('r', 2, 'stats', {}), { count: 3, ops: 0 }, 'the TF ran again from the v1 state');
  h.stop();
});

test.run();
