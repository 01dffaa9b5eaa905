/**
 * Renders a results file as the human-readable tables `npm run bench` prints
 * (markdown-compatible, so docs/performance.md can include them verbatim).
 *
 * Usage: node --import tsx bench/report.ts [bench/results/latest.json]
 *
 * @module
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { fmt, fmtStat, table, type BenchOutcome, type MachineInfo, type Pending, type Row, type RunOptions, type TargetEntry } from './harness.ts';

/** The results file written by `bench/main.ts`. */
export interface Report {
  mode: 'quick' | 'full';
  machine: MachineInfo;
  options: RunOptions;
  seconds: number;
  targets: TargetEntry[];
  rows: Row[];
  pending: Pending[];
  benchmarks: BenchOutcome[];
}

const metricColumns: Array<[string, string, number | undefined]> = [
  ['throughput_per_s', 'calls/s', undefined],
  ['p50_us', 'p50 µs', undefined],
  ['p99_us', 'p99 µs', undefined],
  ['cpu_us_per_call', 'CPU µs/call', undefined],
];

/** The tables of a report, as text. */
export function render(report: Report): string {
  const { machine, options, rows, targets, pending, benchmarks } = report;
  const loadRows = rows.filter((r) => r.metrics.throughput_per_s);
  const otherRows = rows.filter((r) => !r.metrics.throughput_per_s);
  const out: string[] = [];
  out.push(`Molt benchmarks — ${machine.date} on ${machine.host} (${machine.cpu}, ${machine.cores} cores, node ${machine.node}, ${machine.natsServer}; Molt from ${machine.runtime ?? 'source'}; load average at start ${machine.loadAverageAtStart.join(' ')})`);
  out.push(`${options.reps} repetition(s), ${options.cellMs} ms per cell; figures are median (min–max) over repetitions.`);
  out.push('');
  if (loadRows.length) {
    out.push(
      table(
        ['bench', 'system', 'setting', ...metricColumns.map((c) => c[1]), 'errors'],
        loadRows.map((r) => [r.bench, r.system, r.setting, ...metricColumns.map(([k, , d]) => fmtStat(r.metrics[k], d)), String(r.errors ?? 0)]),
      ),
    );
    out.push('');
  }
  if (otherRows.length) {
    out.push(
      table(
        ['bench', 'system', 'setting', 'measurements'],
        otherRows.map((r) => [r.bench, r.system, r.setting, Object.entries(r.metrics).map(([k, s]) => `${k} ${fmtStat(s)}`).join(', ')]),
      ),
    );
    out.push('');
  }
  out.push(
    table(
      ['target', 'value', 'baseline', 'ratio (min–max)', 'target', 'met'],
      targets.map((t) => [
        t.name,
        `${fmt(t.value)} ${t.unit}`,
        t.baseline === null ? '–' : `${fmt(t.baseline)} ${t.unit}`,
        t.ratio === null ? '–' : fmtStat(t.reps.ratio, 2),
        `${t.baseline === null ? 'value' : 'ratio'} ${t.comparison} ${t.target}`,
        t.met ? 'yes' : 'NO',
      ]),
    ),
  );
  if (pending.length) {
    out.push('');
    out.push('Not measured yet:');
    for (const p of pending) out.push(`  ${p.target}: ${p.reason}`);
  }
  const failed = benchmarks.filter((o) => !o.ok);
  if (failed.length) {
    out.push('');
    out.push(`FAILED benchmarks: ${failed.map((o) => o.name).join(', ')} (see the log above)`);
  }
  out.push('');
  out.push(`${targets.filter((t) => t.met).length} of ${targets.length} targets met; ${report.seconds.toFixed(0)} s`);
  return out.join('\n');
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const file = process.argv[2] ?? fileURLToPath(new URL('./results/latest.json', import.meta.url));
  console.log(render(JSON.parse(readFileSync(file, 'utf8')) as Report));
}
