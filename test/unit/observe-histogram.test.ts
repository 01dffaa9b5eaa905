/**
 * The request-path histogram (runtime/observe/histogram.ts) against
 * prom-client's own: the same observations give the same exposition text, so
 * a change in how prom-client's registry reads metrics fails here.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Histogram, Registry } from 'prom-client';
import { FastHistogram } from '../../runtime/observe/histogram.ts';

const bounds = [0.001, 0.01, 0.1, 1];
const observations: Array<[string, number]> = [
  ['native', 0.0005],
  ['native', 0.001], // on a bound: counted in that bucket, as prom-client does
  ['native', 0.05],
  ['past', 3], // above every bound: only +Inf
  ['past', 0.01],
  ['native', 0],
];

test('histogram - the same exposition text as prom-client for the same observations', async () => {
  const ours = new Registry();
  const theirs = new Registry();
  const fast = new FastHistogram('molt_call_duration_seconds', 'call durations', bounds, ours);
  const reference = new Histogram({ name: 'molt_call_duration_seconds', help: 'call durations', labelNames: ['type', 'route'], buckets: bounds, registers: [theirs] });
  const series = { native: fast.series({ type: 'counter', route: 'native' }), past: fast.series({ type: 'counter', route: 'past' }) };
  for (const [route, value] of observations) {
    series[route as 'native' | 'past'].observe(value);
    reference.observe({ type: 'counter', route }, value);
  }
  const text = await ours.metrics();
  assert.is(text, await theirs.metrics());
  assert.match(text, /molt_call_duration_seconds_bucket\{le="0.001",type="counter",route="native"\} 3/);
  assert.match(text, /molt_call_duration_seconds_count\{type="counter",route="past"\} 2/);
});

test('histogram - a series never observed is not exposed; reset zeroes', async () => {
  const registry = new Registry();
  const fast = new FastHistogram('h', 'help', bounds, registry);
  fast.series({ route: 'future' });
  const used = fast.series({ route: 'native' });
  used.observe(0.5);
  assert.not.match(await registry.metrics(), /future/);
  assert.match(await registry.metrics(), /h_count\{route="native"\} 1/);
  registry.resetMetrics();
  assert.not.match(await registry.metrics(), /h_count/);
  used.observe(0.5);
  assert.match(await registry.metrics(), /h_sum\{route="native"\} 0.5/);
});

test.run();
