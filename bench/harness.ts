/**
 * The shared benchmark harness: repetitions, statistics, same-run baselines,
 * target entries, child processes and the nats-server each benchmark starts.
 *
 * A benchmark is one file under `bench/benchmarks/` exporting a
 * {@link Benchmark}. It receives a {@link BenchContext}, starts what it needs
 * (its own nats-server, agent processes), measures Molt and its baseline
 * side by side in every repetition, and reports:
 *
 * - rows (`ctx.row`): one line of the human table per system and setting,
 *   with min/median/max over repetitions of each metric;
 * - targets (`ctx.target`): one entry per target of issue 6, computed from
 *   the repetitions of this run — value and baseline medians, the median of
 *   the per-repetition ratios (each repetition measures both sides back to
 *   back, so their ratio is the least noisy number we have), and `met`.
 *
 * @module
 */
import { fork, execFileSync, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { cpus, hostname, loadavg, totalmem, platform, release } from 'node:os';
import { fileURLToPath } from 'node:url';
import { startEmbeddedNats, findNatsServer, type EmbeddedNats } from '../runtime/index.ts';

// ---- statistics ------------------------------------------------------------

/** min / median / max of a metric over repetitions. */
export interface Stat {
  min: number;
  median: number;
  max: number;
  n: number;
}

/** The median of `values` (mean of the middle two for an even count). */
export function median(values: readonly number[]): number {
  if (values.length === 0) return NaN;
  const s = [...values].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 === 1 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

/** Summarises repetitions of one metric. */
export function stat(values: readonly number[]): Stat {
  const finite = values.filter((v) => Number.isFinite(v));
  if (finite.length === 0) return { min: NaN, median: NaN, max: NaN, n: 0 };
  return { min: Math.min(...finite), median: median(finite), max: Math.max(...finite), n: finite.length };
}

/** The `p`-quantile (0..1) of an ascending-sorted array (nearest rank). */
export function quantile(sorted: ArrayLike<number>, p: number): number {
  if (sorted.length === 0) return NaN;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil(p * sorted.length) - 1));
  return sorted[i]!;
}

// ---- what a run reports ----------------------------------------------------

/** One measured setting of one system, over repetitions. */
export interface Row {
  bench: string;
  /** What is measured, e.g. "volatile ask" or "raw request/reply". */
  system: string;
  /** Free-form setting, e.g. "c=128". */
  setting: string;
  /** Metric name → repetitions summary. Units are in the names (`_per_s`, `_us`, `_bytes`). */
  metrics: Record<string, Stat>;
  /** Calls that failed during the measurement (all repetitions). */
  errors?: number;
}

/** One target of issue 6, as written to `latest.json`. */
export interface TargetEntry {
  /** Stable identifier, e.g. "messaging.volatile.throughput.c128". */
  name: string;
  description: string;
  /** Unit of `value` and `baseline`. */
  unit: string;
  /** Molt's median over repetitions. */
  value: number;
  /** The same-run baseline's median, or null for absolute targets. */
  baseline: number | null;
  /** Median of per-repetition ratios value/baseline, or null for absolute targets. */
  ratio: number | null;
  /** The bound: on the ratio when there is a baseline, else on the value. */
  target: number;
  /** How the bound applies: ratio (or value) `>=` / `<=` target. */
  comparison: '>=' | '<=';
  met: boolean;
  /** Repetition summaries of value, baseline and ratio. */
  reps: { value: Stat; baseline?: Stat; ratio?: Stat };
  /** Parameters the measurement ran with (e.g. concurrency, actor count). */
  params?: Record<string, unknown>;
}

/** A benchmark that is not implemented yet, and why. */
export interface Pending {
  bench: string;
  target: string;
  reason: string;
}

/** The options of one run. */
export interface RunOptions {
  /** A smoke run: tiny sizes, one repetition, short cells. */
  quick: boolean;
  /** Repetitions per comparison. */
  reps: number;
  /** Measured time of one load cell, ms. */
  cellMs: number;
  /** Unmeasured warm-up before each cell, ms. */
  warmupMs: number;
  /** If set, every agent runs with `--cpu-prof` and writes its profiles to `<dir>/<bench>-<agent>/` (one per thread; the largest is the main thread). */
  profileDir?: string;
}

/** What a benchmark sees. */
export interface BenchContext {
  readonly options: RunOptions;
  /** Prints a progress line (stderr). */
  log(message: string): void;
  /** Adds a row to the table. */
  row(row: Omit<Row, 'bench'>): void;
  /**
   * Adds a target entry from repetitions. With `baseline`, the ratio of each
   * repetition is value[i] / baseline[i] and the bound applies to the median
   * ratio; without, the bound applies to the median value.
   */
  target(spec: {
    name: string;
    description: string;
    unit: string;
    value: readonly number[];
    baseline?: readonly number[];
    target: number;
    comparison: '>=' | '<=';
    params?: Record<string, unknown>;
  }): void;
  /** Records a target this benchmark cannot measure yet. */
  pending(target: string, reason: string): void;
  /** Starts a nats-server (JetStream on, free port) stopped when the benchmark ends. */
  nats(): Promise<EmbeddedNats>;
  /** Starts an agent process stopped when the benchmark ends. */
  agent(name: string, options?: AgentOptions): Promise<Agent>;
}

/** One benchmark: a file under bench/benchmarks/. */
export interface Benchmark {
  /** Short id used by `--only`. */
  name: string;
  title: string;
  run(ctx: BenchContext): Promise<void>;
}

/** Builds a target entry from repetitions (exported for tests). */
export function makeTarget(spec: Parameters<BenchContext['target']>[0]): TargetEntry {
  const value = stat(spec.value);
  if (spec.baseline) {
    const baseline = stat(spec.baseline);
    const ratios = spec.value.map((v, i) => v / spec.baseline![i]!).filter((r) => Number.isFinite(r));
    const ratio = stat(ratios);
    const met = spec.comparison === '>=' ? ratio.median >= spec.target : ratio.median <= spec.target;
    return {
      name: spec.name,
      description: spec.description,
      unit: spec.unit,
      value: value.median,
      baseline: baseline.median,
      ratio: ratio.median,
      target: spec.target,
      comparison: spec.comparison,
      met: Number.isFinite(ratio.median) && met,
      reps: { value, baseline, ratio },
      ...(spec.params ? { params: spec.params } : {}),
    };
  }
  const met = spec.comparison === '>=' ? value.median >= spec.target : value.median <= spec.target;
  return {
    name: spec.name,
    description: spec.description,
    unit: spec.unit,
    value: value.median,
    baseline: null,
    ratio: null,
    target: spec.target,
    comparison: spec.comparison,
    met: Number.isFinite(value.median) && met,
    reps: { value },
    ...(spec.params ? { params: spec.params } : {}),
  };
}

// ---- agents: child processes driven over IPC -------------------------------

const agentPath = fileURLToPath(new URL('./agent.ts', import.meta.url));
/** Imported by every agent before anything else: Molt's runtime from `dist/`. */
const compiledRuntime = new URL('./compiled/register.ts', import.meta.url).href;

export interface AgentOptions {
  /** Extra Node flags, e.g. ['--expose-gc'] or ['--cpu-prof']. */
  execArgv?: string[];
  env?: Record<string, string>;
}

/**
 * A child process running `bench/agent.ts`: it plays one or more roles
 * (responder, node, requester) on command and reports measurements.
 */
export class Agent {
  private seq = 0;
  private readonly waiting = new Map<number, { resolve(v: unknown): void; reject(e: Error): void }>();
  private exited = false;

  private constructor(
    readonly name: string,
    private readonly child: ChildProcess,
  ) {
    child.on('message', (m: { id: number; ok: boolean; result?: unknown; error?: string }) => {
      const w = this.waiting.get(m.id);
      if (!w) return;
      this.waiting.delete(m.id);
      if (m.ok) w.resolve(m.result);
      else w.reject(new Error(`agent ${name}: ${m.error}`));
    });
    child.on('exit', (code, signal) => {
      this.exited = true;
      for (const w of this.waiting.values()) w.reject(new Error(`agent ${name} exited (${code ?? signal})`));
      this.waiting.clear();
    });
  }

  static async start(name: string, options: AgentOptions = {}): Promise<Agent> {
    const child = fork(agentPath, [name], {
      // Molt from dist/, as the package ships it (bench/compiled/).
      execArgv: ['--import', 'tsx', '--import', compiledRuntime, ...(options.execArgv ?? [])],
      env: { ...process.env, ...options.env },
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    const agent = new Agent(name, child);
    await agent.call('ping');
    return agent;
  }

  get pid(): number {
    return this.child.pid!;
  }

  /** Runs a command in the agent and returns its result. */
  call<T = unknown>(cmd: string, args: Record<string, unknown> = {}): Promise<T> {
    if (this.exited) return Promise.reject(new Error(`agent ${this.name} has exited`));
    const id = ++this.seq;
    return new Promise<T>((resolve, reject) => {
      this.waiting.set(id, { resolve: resolve as (v: unknown) => void, reject });
      this.child.send({ id, cmd, args });
    });
  }

  /** Asks the agent to clean up and exit; kills it if it does not within 5 s. */
  async stop(): Promise<void> {
    if (this.exited) return;
    const gone = new Promise<void>((resolve) => this.child.once('exit', () => resolve()));
    const timer = setTimeout(() => this.child.kill('SIGKILL'), 5000);
    this.call('exit').catch(() => undefined);
    await gone;
    clearTimeout(timer);
  }
}

// ---- CPU of processes we did not start with Node (nats-server) -------------

const clockTicks = (() => {
  try {
    return Number(execFileSync('getconf', ['CLK_TCK']).toString().trim()) || 100;
  } catch {
    return 100;
  }
})();

/** User+system CPU time of process `pid` in µs, from /proc (Linux), or NaN. */
export function processCpuMicros(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command name (which may contain spaces) start after ')'.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const utime = Number(fields[11]);
    const stime = Number(fields[12]);
    return ((utime + stime) * 1e6) / clockTicks;
  } catch {
    return NaN;
  }
}

// ---- the machine -----------------------------------------------------------

/** What the results file says about where it was measured. */
export interface MachineInfo {
  host: string;
  cpu: string;
  cores: number;
  memoryBytes: number;
  os: string;
  node: string;
  natsServer: string;
  date: string;
  loadAverageAtStart: number[];
  commit: string | null;
  /** Where this process loaded Molt's runtime from: `dist` (compiled, as the package ships it) or `source`. */
  runtime: 'dist' | 'source';
}

export function machineInfo(): MachineInfo {
  let natsServer = 'unknown';
  try {
    natsServer = execFileSync(findNatsServer(), ['--version']).toString().trim();
  } catch {
    // reported as unknown
  }
  let commit: string | null = null;
  try {
    commit = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: fileURLToPath(new URL('..', import.meta.url)) }).toString().trim();
  } catch {
    commit = null;
  }
  return {
    host: hostname().split('.')[0]!,
    cpu: cpus()[0]?.model ?? 'unknown',
    cores: cpus().length,
    memoryBytes: totalmem(),
    os: `${platform()} ${release()}`,
    node: process.version,
    natsServer,
    date: new Date().toISOString(),
    loadAverageAtStart: loadavg().map((l) => Math.round(l * 100) / 100),
    commit,
    runtime: import.meta.resolve('../runtime/index.ts').includes('/dist/runtime/') ? 'dist' : 'source',
  };
}

// ---- running benchmarks ----------------------------------------------------

/** The outcome of one benchmark. */
export interface BenchOutcome {
  name: string;
  title: string;
  ok: boolean;
  error?: string;
  seconds: number;
}

/** Runs benchmarks in order, collecting rows, targets and pending targets. */
export async function runBenchmarks(
  benchmarks: readonly Benchmark[],
  options: RunOptions,
  log: (line: string) => void,
): Promise<{ rows: Row[]; targets: TargetEntry[]; pending: Pending[]; outcomes: BenchOutcome[] }> {
  const rows: Row[] = [];
  const targets: TargetEntry[] = [];
  const pending: Pending[] = [];
  const outcomes: BenchOutcome[] = [];
  for (const bench of benchmarks) {
    const started = Date.now();
    const cleanups: Array<() => Promise<void>> = [];
    const ctx: BenchContext = {
      options,
      log: (message) => log(`[${bench.name}] ${message}`),
      row: (row) => rows.push({ bench: bench.name, ...row }),
      target: (spec) => targets.push(makeTarget(spec)),
      pending: (target, reason) => pending.push({ bench: bench.name, target, reason }),
      async nats() {
        const server = await startEmbeddedNats();
        cleanups.push(() => server.stop());
        return server;
      },
      async agent(name, agentOptions) {
        const profile = options.profileDir
          ? ['--cpu-prof', `--cpu-prof-dir=${options.profileDir}/${bench.name}-${name}`]
          : [];
        const agent = await Agent.start(name, { ...agentOptions, execArgv: [...(agentOptions?.execArgv ?? []), ...profile] });
        cleanups.push(() => agent.stop());
        return agent;
      },
    };
    log(`[${bench.name}] ${bench.title}`);
    try {
      await bench.run(ctx);
      outcomes.push({ name: bench.name, title: bench.title, ok: true, seconds: (Date.now() - started) / 1000 });
    } catch (e) {
      const error = e instanceof Error ? e.stack ?? e.message : String(e);
      log(`[${bench.name}] FAILED: ${error}`);
      outcomes.push({ name: bench.name, title: bench.title, ok: false, error, seconds: (Date.now() - started) / 1000 });
    } finally {
      // Agents first (they hold connections), then the server.
      for (const cleanup of cleanups.reverse()) await cleanup().catch(() => undefined);
    }
  }
  return { rows, targets, pending, outcomes };
}

// ---- formatting ------------------------------------------------------------

/** Formats a number with a sensible precision for the table. */
export function fmt(n: number | null | undefined, digits?: number): string {
  if (n === null || n === undefined || !Number.isFinite(n)) return '–';
  if (digits !== undefined) return n.toFixed(digits);
  const a = Math.abs(n);
  if (a >= 100_000) return `${(n / 1000).toFixed(0)}k`;
  if (a >= 10_000) return `${(n / 1000).toFixed(1)}k`;
  if (a >= 100) return n.toFixed(0);
  if (a >= 10) return n.toFixed(1);
  return n.toFixed(2);
}

/** A stat as "median (min–max)". */
export function fmtStat(s: Stat | undefined, digits?: number): string {
  if (!s || s.n === 0) return '–';
  if (s.n === 1 || s.min === s.max) return fmt(s.median, digits);
  return `${fmt(s.median, digits)} (${fmt(s.min, digits)}–${fmt(s.max, digits)})`;
}

/** Renders rows of cells as an aligned text table (markdown-compatible). */
export function table(header: readonly string[], body: readonly (readonly string[])[]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...body.map((r) => (r[i] ?? '').length)));
  const line = (cells: readonly string[]) => `| ${cells.map((c, i) => c.padEnd(widths[i]!)).join(' | ')} |`;
  return [line(header), `|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`, ...body.map(line)].join('\n');
}
