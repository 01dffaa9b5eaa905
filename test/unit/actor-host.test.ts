/**
 * The actor host without NATS: group commit, the hold buffer during an
 * upgrade, conflicts, passivation.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { createSuperjsonCodec, isMoltError, silentLogger, SimulatedClock } from '../../runtime/index.ts';
import { ActorHost, createMemoryStore, type StateStore } from '../../runtime/internal.ts';
import { counterV1 } from '../fixtures/counter.ts';
import { counterV2 } from '../fixtures/counter-chain.ts';

/** A store whose writes wait until released, counting them. */
function gatedStore() {
  const inner = createMemoryStore();
  let gate: Promise<void> = Promise.resolve();
  let open: () => void = () => {};
  const stats = { saves: 0 };
  const store: StateStore = {
    load: (k) => inner.load(k),
    async save(k, b, r) {
      stats.saves++;
      await gate;
      return inner.save(k, b, r);
    },
  };
  return {
    store,
    stats,
    inner,
    close() {
      gate = new Promise((r) => (open = r));
    },
    release() {
      open();
    },
  };
}

function host(store: StateStore, options: { holdLimit?: number; clock?: SimulatedClock; passivateAfterMs?: number } = {}) {
  return new ActorHost({
    types: [counterV1, counterV2],
    current: 1,
    volatile: false,
    passivateAfterMs: options.passivateAfterMs ?? 60_000,
    holdLimit: options.holdLimit ?? 100,
    store,
    codec: createSuperjsonCodec(),
    clock: options.clock ?? new SimulatedClock(),
    logger: silentLogger,
  });
}

const test = suite('actor host');

test('group commit - calls that arrive during a write are committed together by the next write', async () => {
  const g = gatedStore();
  const h = host(g.store);
  g.close();
  const first = h.deliver('a', 1, 'increment', { by: 1 });
  await new Promise((r) => setTimeout(r, 5));
  const rest = Array.from({ length: 50 }, () => h.deliver('a', 1, 'increment', { by: 1 }));
  g.release();
  const replies = await Promise.all([first, ...rest]);
  assert.equal(replies, Array.from({ length: 51 }, (_, i) => i + 1));
  assert.is(g.stats.saves, 2, 'one write for the first call, one for the 50 that queued behind it');
  h.stop();
});

test('durability - a reply is not sent before its write completes', async () => {
  const g = gatedStore();
  const h = host(g.store);
  g.close();
  let answered = false;
  const p = h.deliver('d', 1, 'increment', { by: 1 }).then(() => (answered = true));
  await new Promise((r) => setTimeout(r, 20));
  assert.is(answered, false);
  g.release();
  await p;
  assert.is(answered, true);
  h.stop();
});

test('upgrade - calls arriving during the switch are held and delivered after it', async () => {
  const g = gatedStore();
  const h = host(g.store);
  h.addVersion(counterV2);
  await h.deliver('u', 1, 'increment', { by: 2 });
  g.close();
  const upgrading = h.upgrade(2);
  const held = [h.deliver('u', 1, 'get', {}), h.deliver('u', 2, 'decrement', { by: 1 }), h.deliver('u', 2, 'stats', {})];
  await new Promise((r) => setTimeout(r, 10));
  g.release();
  assert.equal(await upgrading, { transformed: 1, failed: 0 });
  const [v1get, v2dec, v2stats] = await Promise.all(held);
  assert.is(v1get, 2, 'a v1 call held during the switch is served by the past SO after it');
  assert.is(v2dec, 1);
  assert.equal(v2stats, { count: 1, ops: 1 }, 'stats, disallowed by the future SO, is native after the switch');
  h.stop();
});

test('upgrade - past the hold limit, calls fail with a retryable Upgrading error', async () => {
  const g = gatedStore();
  const h = host(g.store, { holdLimit: 2 });
  h.addVersion(counterV2);
  await h.deliver('u', 1, 'increment', { by: 1 });
  g.close();
  const upgrading = h.upgrade(2);
  const calls = Array.from({ length: 4 }, () => h.deliver('u', 2, 'get', {}).then((v) => v, (e) => e));
  g.release();
  await upgrading;
  const results = await Promise.all(calls);
  assert.equal(results.slice(0, 2), [1, 1]);
  for (const r of results.slice(2)) {
    assert.ok(isMoltError(r, 'Upgrading'), String(r));
    assert.is((r as { retryable: boolean }).retryable, true);
  }
  h.stop();
});

test('conflict - a stale revision (another node wrote) reloads and re-runs the batch once', async () => {
  const store = createMemoryStore();
  const a = host(store);
  const b = host(store);
  assert.is(await a.deliver('c', 1, 'increment', { by: 1 }), 1);
  assert.is(await b.deliver('c', 1, 'increment', { by: 1 }), 2);
  // a's cached revision is stale now: its write conflicts, it reloads and applies on top.
  assert.is(await a.deliver('c', 1, 'increment', { by: 1 }), 3);
  assert.is(a.stats.conflicts, 1);
  a.stop();
  b.stop();
});

test('passivation - idle actors leave memory and come back from the store', async () => {
  const clock = new SimulatedClock(1_000);
  const store = createMemoryStore();
  const h = host(store, { clock, passivateAfterMs: 1000 });
  await h.deliver('p', 1, 'increment', { by: 7 });
  assert.is(h.residentCount, 1);
  await new Promise((r) => setImmediate(r)); // let the mailbox loop finish
  clock.advance(999);
  assert.is(h.residentCount, 1, 'not idle long enough yet');
  clock.advance(600);
  assert.is(h.residentCount, 0);
  assert.is(await h.deliver('p', 1, 'get', {}), 7);
  h.stop();
});

test('fixed upgrade - reloading a version with a fixed TF lets actors whose TF failed upgrade', async () => {
  const store = createMemoryStore();
  const h = host(store);
  h.addVersion(counterV2);
  await h.deliver('neg', 1, 'increment', { by: -3 });
  assert.equal(await h.upgrade(2), { transformed: 0, failed: 1 });
  const failed = await h.deliver('neg', 2, 'get', {}).then(() => undefined, (e) => e);
  assert.ok(isMoltError(failed, 'TransformFailed'), String(failed));
  assert.is(h.transformFailures.size, 1);
  const fixed = counterV2.from(counterV1, {
    ...(counterV2.upgrade as object),
    transform: ({ context }: { context: { count: number } }) => ({ context: { count: context.count, ops: 0 } }),
  } as never);
  h.addVersion(fixed);
  assert.is(h.transformFailures.size, 0);
  assert.is(await h.deliver('neg', 2, 'get', {}), -3);
  h.stop();
});

test.run();
