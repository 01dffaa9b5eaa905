/**
 * The durable store: compare-and-set writes published straight to the
 * bucket's subjects, and reads made as `kv.get` makes them (a direct get, or
 * the stream's message get), their answers matched on one inbox. These tests
 * check it keeps exactly the semantics of `kv.create` / `kv.update` /
 * `kv.get` on a real JetStream, and that a write or read nobody answers fails
 * instead of hanging.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { headers, type NatsConnection } from '@nats-io/transport-node';
import { Kvm, type KV } from '@nats-io/kv';
import { connectNats, isMoltError } from '../../runtime/index.ts';
import { createKvStore, RevisionConflict } from '../../runtime/internal.ts';
import { expectedLastSequence } from '../../runtime/host/store.ts';
import { startEmbeddedNats, type EmbeddedNats } from '../support/nats.ts';

const test = suite<{ nats: EmbeddedNats; nc: NatsConnection; kv: KV }>('kv store');

test.before(async (ctx) => {
  ctx.nats = await startEmbeddedNats();
  ctx.nc = await connectNats({ servers: ctx.nats.url });
  ctx.kv = await new Kvm(ctx.nc).create('kvstore_test', { history: 1 });
});

test.after(async (ctx) => {
  await ctx.nc?.close();
  await ctx.nats?.stop();
});

/** The bucket `kv`, but writing every key to `<prefix>.<key>`: a subject that stores nothing. */
const writingTo = (kv: KV, prefix: string): KV => Object.assign(Object.create(Object.getPrototypeOf(kv)) as KV, kv, { subjectForKey: (k: string) => `${prefix}.${k}` });
const bytes = (text: string) => new TextEncoder().encode(text);
const text = (b: Uint8Array | undefined) => (b ? new TextDecoder().decode(b) : undefined);

test('kv store - the header block is byte for byte what headers() encodes', () => {
  for (const revision of [0, 1, 42, 9_007_199_254_740_991]) {
    const h = headers();
    h.set('Nats-Expected-Last-Subject-Sequence', String(revision));
    const expected = (h as unknown as { encode(): Uint8Array }).encode();
    const actual = (expectedLastSequence(revision) as unknown as { encode(): Uint8Array }).encode();
    assert.equal(Buffer.from(actual).toString('latin1'), Buffer.from(expected).toString('latin1'));
  }
});

test('kv store - create, update on the current revision, refuse stale revisions and a second create', async ({ nc, kv }) => {
  const store = createKvStore(kv, nc);
  try {
    const first = await store.save('a', bytes('one'), 0);
    assert.ok(first > 0);
    const second = await store.save('a', bytes('two'), first);
    assert.ok(second > first);
    assert.equal(text((await store.load('a')).bytes), 'two');
    assert.equal((await store.load('a')).revision, second);
    // The KV client sees the same record and revision.
    const entry = await kv.get('a');
    assert.equal(entry?.revision, second);
    assert.equal(entry?.string(), 'two');

    for (const stale of [0, first, second + 5]) {
      try {
        await store.save('a', bytes('lost'), stale);
        assert.unreachable(`revision ${stale} should be refused`);
      } catch (e) {
        assert.instance(e, RevisionConflict, String(e));
      }
    }
    assert.equal(text((await store.load('a')).bytes), 'two', 'a refused write changes nothing');
  } finally {
    store.close();
  }
});

test('kv store - the acknowledgement inbox takes its token from the injected ids, and writes are acknowledged on it', async ({ nc, kv }) => {
  const store = createKvStore(kv, nc, { ids: { next: () => 'fixed-token' } });
  try {
    assert.ok(store.ackInbox.endsWith('.molt-kv.fixed-token'), store.ackInbox);
    assert.ok((await store.save('injected', bytes('x'), 0)) > 0);
  } finally {
    store.close();
  }
});

test('kv store - concurrent writers of one revision: exactly one wins', async ({ nc, kv }) => {
  const store = createKvStore(kv, nc);
  try {
    const base = await store.save('race', bytes('0'), 0);
    const results = await Promise.allSettled(Array.from({ length: 20 }, (_, i) => store.save('race', bytes(String(i + 1)), base)));
    const won = results.filter((r) => r.status === 'fulfilled');
    assert.is(won.length, 1);
    for (const r of results) if (r.status === 'rejected') assert.instance(r.reason, RevisionConflict);
  } finally {
    store.close();
  }
});

test('kv store - a write nobody acknowledges fails with OutcomeUnknown after the timeout (it may have been stored)', async ({ nc, kv }) => {
  // A subscriber that swallows writes stands in for a stream that stores but never answers.
  const sink = nc.subscribe('swallowed.>');
  const silent = writingTo(kv, 'swallowed');
  const store = createKvStore(silent, nc, { writeTimeoutMs: 150 });
  try {
    const started = Date.now();
    await store.save('x', bytes('never'), 0).then(
      () => assert.unreachable('an unacknowledged write must fail'),
      (e) => {
        // Not Unavailable: that would tell the caller nothing changed, and a
        // write held in a cut socket is stored when the connection heals.
        assert.ok(isMoltError(e) && e.code === 'OutcomeUnknown', String(e));
        assert.match(String(e), /may or may not have been applied/);
      },
    );
    assert.ok(Date.now() - started >= 150);
  } finally {
    store.close();
    sink.unsubscribe();
  }
});

test('kv store - a write no stream listens for fails with Unavailable at once (no responders)', async ({ nc, kv }) => {
  const nowhere = writingTo(kv, 'nobody');
  const store = createKvStore(nowhere, nc, { writeTimeoutMs: 10_000 });
  try {
    const started = Date.now();
    await store.save('x', bytes('nowhere'), 0).then(
      () => assert.unreachable('a write nobody receives must fail'),
      (e) => {
        assert.ok(isMoltError(e) && e.code === 'Unavailable', String(e));
        assert.match(String(e), /no responders/);
      },
    );
    assert.ok(Date.now() - started < 5000, 'answered by the server, not by the timeout');
  } finally {
    store.close();
  }
});

test('kv store - close fails the writes still waiting, as outcome unknown', async ({ nc, kv }) => {
  const sink = nc.subscribe('held.>');
  const held = writingTo(kv, 'held');
  const store = createKvStore(held, nc, { writeTimeoutMs: 60_000 });
  const write = store.save('y', bytes('pending'), 0);
  await nc.flush();
  store.close();
  await write.then(
    () => assert.unreachable('a write pending at close must fail'),
    (e) => assert.ok(isMoltError(e) && e.code === 'OutcomeUnknown', String(e)),
  );
  sink.unsubscribe();
});

for (const direct of [true, false]) {
  test(`kv store - a read returns what kv.get returns (${direct ? 'direct get' : "the stream's message get"}): absent, stored, deleted, purged`, async ({ nc }) => {
    const kv = await new Kvm(nc).create(`kvstore_reads_${direct}`, { history: 1, allow_direct: direct });
    assert.is((kv as unknown as { direct: boolean }).direct, direct);
    const store = createKvStore(kv, nc);
    try {
      const same = async (key: string, expected: { text: string | undefined; present: boolean }) => {
        const [read, entry] = await Promise.all([store.load(key), kv.get(key)]);
        assert.is(text(read.bytes), expected.text, `${key}: bytes`);
        assert.is(read.revision, entry?.revision ?? 0, `${key}: revision as kv.get`);
        assert.is(entry !== null, expected.present, `${key}: kv.get has a message`);
      };
      await same('never', { text: undefined, present: false });
      await kv.put('stored', 'value ü');
      await kv.put('stored', 'second');
      await same('stored', { text: 'second', present: true });
      await kv.put('empty', new Uint8Array(0));
      await same('empty', { text: '', present: true });
      await kv.put('deleted', 'x');
      await kv.delete('deleted');
      await same('deleted', { text: undefined, present: true });
      await kv.put('purged', 'x');
      await kv.purge('purged');
      await same('purged', { text: undefined, present: true });
      assert.ok((await store.load('deleted')).revision > 0, 'a deleted key reads at its tombstone: a create must not take it over unseen');
    } finally {
      store.close();
      await kv.destroy();
    }
  });
}

test('kv store - a read nobody answers fails with Unavailable after the timeout', async ({ nc, kv }) => {
  // No stream of that name: the server's JetStream API takes the request and never answers.
  const store = createKvStore(Object.assign(Object.create(Object.getPrototypeOf(kv)) as KV, kv, { stream: 'KV_swallowed_reads', direct: true }), nc, { writeTimeoutMs: 150 });
  try {
    await store.load('x').then(
      () => assert.unreachable('an unanswered read must fail'),
      (e) => assert.ok(isMoltError(e) && e.code === 'Unavailable' && /within 150 ms/.test(e.message), String(e)),
    );
  } finally {
    store.close();
  }
});

test.run();
