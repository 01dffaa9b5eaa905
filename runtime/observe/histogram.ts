/**
 * A histogram for the request path. prom-client's `Histogram.observe` checks
 * and hashes its labels on every call (most of a microsecond, as much as the
 * rest of the metrics together); this one keeps a series object per label
 * set, found once, whose `observe` is a bucket search and three additions.
 *
 * It is registered on a prom-client `Registry` as a metric whose `get()`
 * returns its values in prom-client's own form (`MetricObjectWithValues`),
 * so prom-client still writes the exposition text. The registry reads a
 * metric only through `name`, `type`, `get()` and `reset()`;
 * test/unit/observe-histogram.test.ts fails if that stops being so.
 *
 * @module
 */
import type { Metric, Registry } from 'prom-client';

/** One label set's counts. */
export class HistogramSeries {
  /** Observations per bucket (not cumulative); the last slot counts those above every bound. */
  readonly counts: number[];
  sum = 0;
  count = 0;

  constructor(
    private readonly bounds: readonly number[],
    readonly labels: Readonly<Record<string, string>>,
  ) {
    this.counts = new Array<number>(bounds.length + 1).fill(0);
  }

  observe(value: number): void {
    const bounds = this.bounds;
    let i = 0;
    while (i < bounds.length && value > bounds[i]!) i++;
    this.counts[i]!++;
    this.sum += value;
    this.count++;
  }
}

interface HistogramValue {
  value: number;
  labels: Record<string, string | number>;
  metricName: string;
}

/** A histogram whose series are made once per label set and observed without label handling. */
export class FastHistogram {
  readonly type = 'histogram';
  readonly aggregator = 'sum';
  private readonly all: HistogramSeries[] = [];

  constructor(
    readonly name: string,
    readonly help: string,
    private readonly bounds: readonly number[],
    registry: Registry,
  ) {
    registry.registerMetric(this as unknown as Metric);
  }

  /** The series of `labels` (a new one each call: keep it). */
  series(labels: Record<string, string>): HistogramSeries {
    const s = new HistogramSeries(this.bounds, { ...labels });
    this.all.push(s);
    return s;
  }

  /** The values in prom-client's form: cumulative buckets with `le`, then `_sum` and `_count`, per series. */
  async get(): Promise<{ name: string; help: string; type: string; aggregator: string; values: HistogramValue[] }> {
    const values: HistogramValue[] = [];
    for (const s of this.all) {
      if (s.count === 0) continue;
      let cumulative = 0;
      this.bounds.forEach((bound, i) => {
        cumulative += s.counts[i]!;
        values.push({ value: cumulative, labels: { le: bound, ...s.labels }, metricName: `${this.name}_bucket` });
      });
      values.push({ value: s.count, labels: { le: '+Inf', ...s.labels }, metricName: `${this.name}_bucket` });
      values.push({ value: s.sum, labels: { ...s.labels }, metricName: `${this.name}_sum` });
      values.push({ value: s.count, labels: { ...s.labels }, metricName: `${this.name}_count` });
    }
    return { name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, values };
  }

  /** Zeroes every series (the registry's `resetMetrics`). */
  reset(): void {
    for (const s of this.all) {
      s.counts.fill(0);
      s.sum = 0;
      s.count = 0;
    }
  }
}
