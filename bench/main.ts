/**
 * `npm run bench`: Molt against the raw NATS floor, raw JetStream KV and a
 * peer framework, in the same run, with repetitions; prints a table and
 * writes `bench/results/<date>-<host>.json` and `bench/results/latest.json`.
 *
 * Usage: npm run bench -- [--quick] [--only a,b] [--reps N] [--cell-ms N] [--out DIR] [--list]
 *   --quick   a smoke run in seconds (tiny sizes, one repetition); writes to a
 *             temporary directory unless --out is given, never to latest.json
 *   --only    run only these benchmarks (see --list)
 *   --profile DIR  run every agent with `node --cpu-prof`, profiles in DIR
 *             (summarise one with `node --import tsx bench/profile.ts FILE`)
 *
 * @module
 */
import { mkdirSync, writeFileSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { fmt, fmtStat, machineInfo, runBenchmarks, table, type Benchmark, type RunOptions } from './harness.ts';
import { messaging } from './benchmarks/messaging.ts';
import { durable } from './benchmarks/durable.ts';
import { peer } from './benchmarks/peer.ts';
import { crossVersion } from './benchmarks/cross-version.ts';
import { upgrade } from './benchmarks/upgrade.ts';
import { memory } from './benchmarks/memory.ts';
import { dissemination } from './benchmarks/dissemination.ts';
import { availability } from './benchmarks/availability.ts';

/** Every benchmark, in the order they run. Add new ones here. */
export const benchmarks: readonly Benchmark[] = [messaging, durable, peer, crossVersion, upgrade, memory, dissemination, availability];

function parseArgs(argv: string[]) {
  const out = { quick: false, only: undefined as string[] | undefined, reps: undefined as number | undefined, cellMs: undefined as number | undefined, dir: undefined as string | undefined, list: false, profile: undefined as string | undefined };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const value = () => {
      const v = argv[++i];
      if (v === undefined) throw new Error(`${a} needs a value`);
      return v;
    };
    if (a === '--quick') out.quick = true;
    else if (a === '--only') out.only = value().split(',').map((s) => s.trim()).filter(Boolean);
    else if (a === '--reps') out.reps = Number(value());
    else if (a === '--cell-ms') out.cellMs = Number(value());
    else if (a === '--out') out.dir = value();
    else if (a === '--list') out.list = true;
    else if (a === '--profile') out.profile = value();
    else throw new Error(`unknown option ${a}; see the header of bench/main.ts`);
  }
  return out;
}

const args = parseArgs(process.argv.slice(2));
if (args.list) {
  for (const b of benchmarks) console.log(`${b.name.padEnd(14)} ${b.title}`);
  process.exit(0);
}
const selected = args.only ? benchmarks.filter((b) => args.only!.includes(b.name)) : benchmarks;
if (args.only) {
  const unknown = args.only.filter((n) => !benchmarks.some((b) => b.name === n));
  if (unknown.length) throw new Error(`unknown benchmark(s) ${unknown.join(', ')}; have: ${benchmarks.map((b) => b.name).join(', ')}`);
}
const options: RunOptions = args.quick
  ? { quick: true, reps: args.reps ?? 1, cellMs: args.cellMs ?? 150, warmupMs: 100 }
  : { quick: false, reps: args.reps ?? 3, cellMs: args.cellMs ?? 1500, warmupMs: 400 };
if (args.profile) {
  options.profileDir = resolve(args.profile);
  mkdirSync(options.profileDir, { recursive: true });
}

const started = Date.now();
const machine = machineInfo();
const log = (line: string) => process.stderr.write(`${((Date.now() - started) / 1000).toFixed(1).padStart(6)}s ${line}\n`);
log(`molt bench${options.quick ? ' (quick)' : ''}: ${machine.cpu}, ${machine.cores} cores, node ${machine.node}, ${machine.natsServer}; load ${machine.loadAverageAtStart.join(' ')}`);
const { rows, targets, pending, outcomes } = await runBenchmarks(selected, options, log);

// ---- the human table -------------------------------------------------------

const metricColumns: Array<[string, string, number | undefined]> = [
  ['throughput_per_s', 'calls/s', undefined],
  ['p50_us', 'p50 µs', undefined],
  ['p99_us', 'p99 µs', undefined],
  ['cpu_us_per_call', 'CPU µs/call', undefined],
];
const loadRows = rows.filter((r) => r.metrics.throughput_per_s);
const otherRows = rows.filter((r) => !r.metrics.throughput_per_s);
const out: string[] = [];
out.push(`Molt benchmarks — ${machine.date} on ${machine.host} (${machine.cpu}, ${machine.cores} cores, node ${machine.node}, ${machine.natsServer})`);
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
const failed = outcomes.filter((o) => !o.ok);
if (failed.length) {
  out.push('');
  out.push(`FAILED benchmarks: ${failed.map((o) => o.name).join(', ')} (see the log above)`);
}
const met = targets.filter((t) => t.met).length;
out.push('');
out.push(`${met} of ${targets.length} targets met; ${((Date.now() - started) / 1000).toFixed(0)} s`);
console.log(out.join('\n'));

// ---- the results files -----------------------------------------------------

const report = {
  mode: options.quick ? 'quick' : 'full',
  machine,
  options,
  seconds: (Date.now() - started) / 1000,
  targets,
  rows,
  pending,
  benchmarks: outcomes,
};
const resultsDir = fileURLToPath(new URL('./results/', import.meta.url));
const dir = args.dir ?? (options.quick ? mkdtempSync(join(tmpdir(), 'molt-bench-quick-')) : resultsDir);
mkdirSync(dir, { recursive: true });
const stamp = machine.date.replace(/:/g, '-').replace(/\.\d+Z$/, 'Z');
const file = join(dir, `${stamp}-${machine.host}.json`);
const json = JSON.stringify(report, null, 2) + '\n';
writeFileSync(file, json);
writeFileSync(join(dir, 'latest.json'), json);
log(`wrote ${file} and latest.json`);
process.exit(failed.length ? 1 : 0);
