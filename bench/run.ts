/**
 * The body of `npm run bench` (see bench/main.ts for its usage), loaded by
 * main.ts once the compiled runtime is in place.
 *
 * @module
 */
import { mkdirSync, writeFileSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { machineInfo, runBenchmarks, type Benchmark, type RunOptions } from './harness.ts';
import { render, type Report } from './report.ts';
import { messaging } from './benchmarks/messaging.ts';
import { durable } from './benchmarks/durable.ts';
import { peer } from './benchmarks/peer.ts';
import { restate } from './benchmarks/restate.ts';
import { crossVersion } from './benchmarks/cross-version.ts';
import { pastChain } from './benchmarks/past-chain.ts';
import { simulate } from './benchmarks/simulate.ts';
import { upgrade } from './benchmarks/upgrade.ts';
import { memory } from './benchmarks/memory.ts';
import { dissemination } from './benchmarks/dissemination.ts';
import { availability } from './benchmarks/availability.ts';
import { breakdown } from './benchmarks/breakdown.ts';
import { observe } from './benchmarks/observe.ts';
import { idempotent } from './benchmarks/idempotent.ts';
import { startup } from './benchmarks/startup.ts';
import { stateRead } from './benchmarks/state-read.ts';
import { verify } from './benchmarks/verify.ts';

/** Every benchmark, in the order they run. Add new ones here. */
export const benchmarks: readonly Benchmark[] = [messaging, breakdown, durable, idempotent, peer, restate, crossVersion, pastChain, upgrade, stateRead, memory, dissemination, availability, observe, startup, simulate, verify];

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



// ---- the table and the results files ---------------------------------------

const report: Report = {
  mode: options.quick ? 'quick' : 'full',
  machine,
  options,
  seconds: (Date.now() - started) / 1000,
  targets,
  rows,
  pending,
  benchmarks: outcomes,
};
console.log(render(report));
const failed = outcomes.filter((o) => !o.ok);
const resultsDir = fileURLToPath(new URL('./results/', import.meta.url));
// Only a complete, unprofiled run is a result: a partial (--only), quick or
// profiled run would replace latest.json with a table missing targets, or with
// figures slowed by the profiler.
const complete = !options.quick && !args.only && !args.profile;
const dir = args.dir ?? (complete ? resultsDir : mkdtempSync(join(tmpdir(), 'molt-bench-partial-')));
mkdirSync(dir, { recursive: true });
const stamp = machine.date.replace(/:/g, '-').replace(/\.\d+Z$/, 'Z');
const file = join(dir, `${stamp}-${machine.host}.json`);
const json = JSON.stringify(report, null, 2) + '\n';
writeFileSync(file, json);
writeFileSync(join(dir, 'latest.json'), json);
log(`wrote ${file} and latest.json`);
process.exit(failed.length ? 1 : 0);
