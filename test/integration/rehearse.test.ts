/**
 * `molt rehearse` against a real state bucket of 10,000 counters, a few of
 * them in a state the transform cannot take: it names exactly those, through
 * the library and the command, and writes nothing.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { Kvm, type KV } from '@nats-io/kv';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { createSuperjsonCodec } from '../../runtime/wire/codec.ts';
import { bucketNames, encodeKey, stateKey } from '../../runtime/wire/protocol.ts';
import { rehearse } from '../../runtime/verify/rehearse.ts';
import { counter } from '../fixtures/counter-v2.ts';
import { losesUnit, throwsAt13 } from '../fixtures/verify-broken.ts';
import { startEmbeddedNats, type EmbeddedNats } from '../support/nats.ts';
import { molt, moltRoot } from '../support/projects.ts';

interface Ctx {
  nats: EmbeddedNats;
  nc: NatsConnection;
  kv: KV;
}
const test = suite<Ctx>('rehearse: an upgrade tried on the stored actors, read-only');

const ACTORS = 10_000;
/** The actors stored with a count of 13, which the transform of counter-v2-buggy.ts cannot take. */
const UNLUCKY = ['acct-00013', 'acct-04321', 'acct-09999'];

test.before(async (ctx) => {
  ctx.nats = await startEmbeddedNats();
  ctx.nc = await connect({ servers: ctx.nats.url });
  ctx.kv = await new Kvm(ctx.nc).create(bucketNames('counters').state);
  const codec = createSuperjsonCodec();
  const keys = Array.from({ length: ACTORS }, (_, i) => `acct-${String(i).padStart(5, '0')}`);
  for (let i = 0; i < keys.length; i += 500) {
    await Promise.all(
      keys.slice(i, i + 500).map((key, j) => {
        const n = i + j;
        const count = UNLUCKY.includes(key) ? 13 : n % 13; // 0…12: never 13 but for the unlucky ones
        return ctx.kv.put(stateKey('counter', encodeKey(key)), codec.encode({ v: 1, value: {}, context: { count } }));
      }),
    );
  }
});

test.after(async (ctx) => {
  await ctx.nc?.drain().catch(() => undefined);
  await ctx.nats?.stop();
});

const lastSeq = async (kv: KV) => (await kv.status()).streamInfo.state.last_seq;

test('10,000 actors: exactly those the TF cannot take are named, and nothing is written', async (ctx) => {
  const before = await lastSeq(ctx.kv);
  let progress = 0;
  const report = await rehearse({ nats: ctx.nc, service: 'counters', type: throwsAt13, to: 2, onProgress: (done) => (progress = done) });
  assert.is(report.stored, ACTORS);
  assert.is(report.checked, ACTORS);
  assert.is(progress, ACTORS);
  assert.equal(report.failures.map((f) => f.key), UNLUCKY);
  for (const f of report.failures) {
    assert.is(f.problem, 'transform-failed');
    assert.is(f.version, 1);
    assert.match(f.detail, 'unlucky thirteen');
  }
  assert.is(await lastSeq(ctx.kv), before, 'the bucket is unchanged');
});

test('a TF that loses one unit: every sampled actor is named, with the read that shows it', async (ctx) => {
  const report = await rehearse({ nats: ctx.nc, service: 'counters', type: losesUnit, to: 2, sample: 50, seed: 3 });
  assert.is(report.checked, 50);
  assert.is(report.failures.length, 50);
  assert.is(report.failures[0]!.problem, 'identity');
  assert.match(report.failures[0]!.detail, /answered \d+ before the upgrade \(at 1\) .* but answered -?\d+ after it \(at 2\)/);
});

test('a correct upgrade: no actor named; actors already at the version are counted, not carried', async (ctx) => {
  const codec = createSuperjsonCodec();
  await ctx.kv.put(stateKey('counter', encodeKey('already-there')), codec.encode({ v: 2, value: {}, context: { count: 4, steps: 1, via: ['tf2'] } }));
  const report = await rehearse({ nats: ctx.nc, service: 'counters', type: counter, to: 2, sample: 2000, seed: 9 });
  assert.equal(report.failures, []);
  const all = await rehearse({ nats: ctx.nc, service: 'counters', type: counter, to: 2, reads: 0 });
  assert.is(all.current, 1);
  assert.equal(all.failures, []);
});

test('molt rehearse: the command names the actors and exits 1; a correct module exits 0', async (ctx) => {
  const bad = await molt(['rehearse', 'test/fixtures/counter-v2-buggy.ts', '--type', 'counter', '--to', '2', '--nats', ctx.nats.url], moltRoot);
  assert.is(bad.status, 1, bad.output);
  for (const key of UNLUCKY) assert.match(bad.output, `✗ ${key} at counter@1: transform-failed: transform counter 1→2 failed for actor '${key}': unlucky thirteen`);
  assert.match(bad.output, /^counter → 2: 10001 of 10001 stored actors checked \(1 already at 2 or later\) in \d+ ms, \d+ actors\/s; nothing was written$/m);
  assert.match(bad.output, '3 actors would fail the upgrade');
  const good = await molt(['rehearse', 'test/fixtures/counter-v2.ts', '--type', 'counter', '--to', '2', '--sample', '500', '--nats', ctx.nats.url], moltRoot);
  assert.is(good.status, 0, good.output);
  assert.match(good.output, '✓ no actor would fail the upgrade');
});

test('only values are rehearsed: deleted and purged actors are skipped, and a bucket with none of the type is empty', async (ctx) => {
  await ctx.kv.delete(stateKey('counter', encodeKey('acct-00100')));
  await ctx.kv.purge(stateKey('counter', encodeKey('acct-00200')));
  let total = 0;
  const report = await rehearse({ nats: ctx.nc, service: 'counters', type: throwsAt13, to: 2, onProgress: (_done, t) => (total = t) });
  assert.is(report.stored, ACTORS - 1, 'the 10,000 and already-there, less the two removed');
  assert.is(report.checked, ACTORS - 1);
  assert.ok(total >= report.stored, 'progress counts every entry read');
  assert.equal(report.failures.map((f) => f.key), UNLUCKY);

  // Another service's bucket holding only another type's actors: nothing to read, and no wait for any.
  const other = await new Kvm(ctx.nc).create(bucketNames('others').state);
  await other.put(stateKey('gauge', encodeKey('g1')), createSuperjsonCodec().encode({ v: 1, value: {}, context: { count: 1 } }));
  const none = await rehearse({ nats: ctx.nc, service: 'others', type: throwsAt13, to: 2 });
  assert.equal({ stored: none.stored, checked: none.checked, failures: none.failures }, { stored: 0, checked: 0, failures: [] });
});

test.run();
