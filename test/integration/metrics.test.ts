/**
 * A node's Prometheus metrics (issue 16), read back over HTTP from a live node
 * under load and checked against the calls made: counts by caller version,
 * route and outcome exact, durations counted per call, the totals equal to
 * the counters the node publishes for its health gate, and the gauges of
 * versions, shards, residents, transform failures and rollouts.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { createClient, createNode, isMoltError, silentLogger, type MoltClient, type MoltNode } from '../../runtime/index.ts';
import { Udb } from '../../runtime/udb/index.ts';
import { nodeInternals } from '../../runtime/node/internals.ts';
import counters from '../fixtures/counter-chain.ts';
import { startEmbeddedNats, spawnScript, type EmbeddedNats } from '../support/nats.ts';

const test = suite<{ nats: EmbeddedNats; client: MoltClient }>('metrics');

test.before(async (ctx) => {
  ctx.nats = await startEmbeddedNats();
  ctx.client = await createClient({ service: 'counters', nats: { servers: ctx.nats.url } });
});
test.after(async (ctx) => {
  await ctx.client.close();
  await ctx.nats.stop();
});

interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** The samples of a Prometheus text exposition. */
function parse(text: string): Sample[] {
  const out: Sample[] = [];
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m) throw new Error(`not a sample line: ${line}`);
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[l[1]!] = l[2]!;
    out.push({ name: m[1]!, labels, value: Number(m[3]) });
  }
  return out;
}

async function scrape(port: number): Promise<Sample[]> {
  const res = await fetch(`http://127.0.0.1:${port}/metrics`);
  assert.is(res.status, 200);
  assert.match(res.headers.get('content-type') ?? '', /^text\/plain/);
  return parse(await res.text());
}

/** Sum of the samples of `name` whose labels include `where`. */
function sum(samples: Sample[], name: string, where: Record<string, string> = {}): number {
  return samples.filter((s) => s.name === name && Object.entries(where).every(([k, v]) => s.labels[k] === v)).reduce((n, s) => n + s.value, 0);
}

/** The `molt_calls_total` series as `version route outcome` → count. */
function callSeries(samples: Sample[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const s of samples) if (s.name === 'molt_calls_total') out[`${s.labels.version} ${s.labels.route} ${s.labels.outcome}`] = s.value;
  return out;
}

/** Runs `count` calls, `concurrency` at a time, over `keys` keys; resolves with the outcome of each (`ok` or the error code). */
async function load(count: number, concurrency: number, one: (i: number) => Promise<unknown>): Promise<Record<string, number>> {
  const outcomes: Record<string, number> = {};
  let next = 0;
  const worker = async () => {
    for (let i = next++; i < count; i = next++) {
      const outcome = await one(i).then(
        () => 'ok',
        (e) => (isMoltError(e) ? e.code : `thrown: ${String(e)}`),
      );
      outcomes[outcome] = (outcomes[outcome] ?? 0) + 1;
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  return outcomes;
}

test('metrics - counts by version, route and outcome are exact under load, and equal the health-gate counters', async ({ nats, client }) => {
  const node: MoltNode = await createNode({ service: counters, nats: { servers: nats.url }, versions: { counter: 1 }, metrics: { port: 0, host: '127.0.0.1' }, logger: silentLogger, heartbeatMs: 200 });
  try {
    const port = node.metricsPort!;
    assert.ok(port > 0, 'the node says where its metrics are');
    const keys = 40;
    // The node runs counter@1: v1 native, v2 through the future SO, v3 through the chained future SOs.
    assert.equal(await load(600, 32, (i) => client.call('counter', 1, `k${i % keys}`, 'increment', { by: 1 })), { ok: 600 });
    assert.equal(await load(300, 32, (i) => client.call('counter', 2, `k${i % keys}`, i % 3 === 0 ? 'stats' : 'get', {})), { Disallowed: 100, ok: 200 });
    assert.equal(await load(150, 16, (i) => client.call('counter', 3, `k${i % keys}`, 'total', {})), { ok: 150 });
    assert.equal(await load(20, 8, (i) => client.call('counter', 4, `k${i % keys}`, 'total', {})), { VersionUnsupported: 20 });
    // A counter gone negative fails v2's transform when the node upgrades.
    await client.call('counter', 1, 'negative', 'increment', { by: -5 });

    let samples = await scrape(port);
    assert.equal(callSeries(samples), {
      '1 native ok': 601,
      '2 future ok': 200,
      '2 future disallowed': 100,
      '3 future2 ok': 150,
      '4 none VersionUnsupported': 20,
    });
    assert.is(sum(samples, 'molt_node_version', { type: 'counter' }), 1);
    assert.is(sum(samples, 'molt_actors_resident', { type: 'counter' }), keys + 1);
    assert.is(sum(samples, 'molt_shards_owned'), 64);
    assert.is(sum(samples, 'molt_hold_buffer', { type: 'counter' }), 0);

    const upgraded = await node.upgrade('counter', 2);
    assert.is(upgraded.failed, 1, 'the negative counter fails its transform');
    // Now v1 is served through v2's past SO, v2 natively, v3 through its future SO.
    assert.equal(await load(400, 32, (i) => client.call('counter', 1, `k${i % keys}`, 'get', {})), { ok: 400 });
    assert.equal(await load(250, 32, (i) => client.call('counter', 2, `k${i % keys}`, 'increment', { by: 1 })), { ok: 250 });
    assert.equal(await load(90, 16, (i) => client.call('counter', 3, `k${i % keys}`, i % 2 === 0 ? 'label' : 'add', i % 2 === 0 ? { text: 'x' } : { amount: 1 })), { Disallowed: 45, ok: 45 });
    assert.equal(await load(5, 5, () => client.call('counter', 1, 'negative', 'get', {})), { TransformFailed: 5 });

    samples = await scrape(port);
    assert.equal(callSeries(samples), {
      '1 native ok': 601,
      '1 past ok': 400,
      '1 past TransformFailed': 5,
      '2 future ok': 200,
      '2 future disallowed': 100,
      '2 native ok': 250,
      '3 future2 ok': 150,
      '3 future ok': 45,
      '3 future disallowed': 45,
      '4 none VersionUnsupported': 20,
    });
    assert.is(sum(samples, 'molt_node_version', { type: 'counter' }), 2);
    assert.is(sum(samples, 'molt_transform_failures_total', { type: 'counter', from: '1', to: '2' }), 1);
    // Every call that reached the actor host is timed, under the labels of its series.
    for (const [series, count] of Object.entries(callSeries(samples))) {
      const [version, route] = series.split(' ');
      const timed = sum(samples, 'molt_call_duration_seconds_count', { version: version!, route: route! });
      const counted = Object.entries(callSeries(samples)).filter(([s]) => s.startsWith(`${version} ${route} `)).reduce((n, [, c]) => n + c, 0);
      assert.is(timed, counted, `calls of ${version} by ${route} timed (${count} with this outcome)`);
    }

    // The health gate reads the same counters: the node's status and its UDB record.
    const total = sum(samples, 'molt_calls_total');
    const stats = node.status().types.counter!.stats;
    assert.is(stats.calls, total);
    assert.is(stats.disallowed, sum(samples, 'molt_calls_total', { outcome: 'disallowed' }));
    assert.is(stats.failed, total - stats.disallowed - sum(samples, 'molt_calls_total', { outcome: 'ok' }));
    assert.is(stats.transformFailures, 1);
    const udb = new Udb(nodeInternals(node).udb, 'counters');
    const deadline = Date.now() + 5000;
    let record = await udb.node(node.id);
    while (record?.typeStats?.counter?.calls !== total && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 100));
      record = await udb.node(node.id);
    }
    assert.equal(record?.typeStats?.counter, { calls: total, failed: stats.failed, disallowed: stats.disallowed, transformFailures: 1 });

    // The newest rollout of the type shows its state.
    const now = Date.now();
    const rollout = { rolloutId: 'r-metrics', service: 'counters', type: 'counter', from: 1, to: 2, schedule: { name: 'rolling', params: {} }, publisher: 'test', state: 'paused' as const, counts: {}, startedAt: now, updatedAt: now };
    assert.ok(await udb.createRollout(rollout));
    samples = await scrape(port);
    assert.is(sum(samples, 'molt_rollout_state', { rollout: 'r-metrics', state: 'paused' }), 1);
    assert.is(sum(samples, 'molt_rollout_state', { rollout: 'r-metrics' }), 1, 'one state is set, the others are 0');
  } finally {
    await node.stop();
  }
});

test('metrics - off by default; a taken port fails the start with Environment', async ({ nats }) => {
  const first = await createNode({ service: counters, nats: { servers: nats.url }, metrics: { port: 0, host: '127.0.0.1' }, logger: silentLogger });
  try {
    const plain = await createNode({ service: counters, nats: { servers: nats.url }, logger: silentLogger });
    assert.is(plain.metricsPort, undefined);
    await plain.stop();
    const error = await createNode({ service: counters, nats: { servers: nats.url }, metrics: { port: first.metricsPort!, host: '127.0.0.1' }, logger: silentLogger }).then(
      () => undefined,
      (e: unknown) => e,
    );
    assert.ok(isMoltError(error, 'Environment'), `a taken port is refused: ${String(error)}`);
    assert.match((error as Error).message, /--metrics-port/);
  } finally {
    await first.stop();
  }
  const res = await fetch(`http://127.0.0.1:${first.metricsPort}/metrics`).then(
    () => 'answered',
    () => 'closed',
  );
  assert.is(res, 'closed', 'a stopped node stops serving its metrics');
});

test('metrics - molt node --metrics-port serves them', async ({ nats, client }) => {
  const child = spawnScript('bin/molt.js', ['node', 'test/fixtures/counter-chain.ts', '--nats', nats.url, '--id', 'metrics-cli', '--metrics-port', '0', '--metrics-host', '127.0.0.1'], { MOLT_LOG: 'warn' });
  try {
    const line = await child.waitFor(/metrics on http:\/\/127\.0\.0\.1:(\d+)\/metrics/, 30_000);
    const port = Number(/:(\d+)\/metrics/.exec(line)![1]);
    await child.waitFor(/molt node metrics-cli serving/, 30_000);
    for (let i = 0; i < 7; i++) await client.call('counter', 3, `cli-${i}`, 'add', { amount: 1 });
    const samples = await scrape(port);
    assert.is(sum(samples, 'molt_calls_total', { version: '3', route: 'native', outcome: 'ok' }), 7);
    assert.is(sum(samples, 'molt_node_version', { type: 'counter' }), 3);
  } finally {
    await child.kill('SIGTERM');
  }
});

test.run();
