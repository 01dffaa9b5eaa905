/**
 * Side-by-side load comparisons: several systems (Molt and its baselines),
 * each a requester agent driving a named caller against its server agents,
 * measured in the same run, interleaved within every repetition (the order
 * rotates per repetition so no system always runs first or last), at each
 * concurrency, after one unmeasured warm-up pass over every cell. CPU per call
 * sums the requester, the servers and nats-server.
 *
 * @module
 */
import type { EmbeddedNats } from '../runtime/index.ts';
import type { LoadResult } from './agent.ts';
import { processCpuMicros, stat, type Agent, type BenchContext } from './harness.ts';

/** One side of a comparison. */
export interface LoadSystem {
  /** Short id used in keys and target names. */
  id: string;
  /** Human label for the table. */
  label: string;
  requester: Agent;
  /** Caller name registered in the requester. */
  caller: string;
  /** Processes serving this system (their CPU counts towards it). */
  servers: Agent[];
}

/** One measured cell. */
export interface Cell {
  throughput: number;
  p50Us: number;
  p99Us: number;
  /** Requester + servers + nats-server CPU time per successful call, µs. */
  cpuPerCallUs: number;
  /** The same, split by process: requester, servers (responder / node), nats-server. */
  cpuSplitUs: { requester: number; servers: number; nats: number };
  calls: number;
  errors: number;
  firstError?: string;
}

/** Repetitions of each system at each concurrency: `results.get(id)!.get(c)![rep]`. */
export type Results = Map<string, Map<number, Cell[]>>;

async function cpuOf(agents: readonly Agent[]): Promise<number> {
  const values = await Promise.all(agents.map((a) => a.call<number>('cpu')));
  return values.reduce((s, v) => s + v, 0);
}

/**
 * One repetition's figures of a system measured twice in it: the mean of
 * the two cells (CPU per call weighted by their calls).
 */
function meanOfCells(a: Cell, b: Cell): Cell {
  const calls = a.calls + b.calls;
  const weighted = (x: number, y: number) => (calls > 0 ? (x * a.calls + y * b.calls) / calls : NaN);
  const cell: Cell = {
    throughput: (a.throughput + b.throughput) / 2,
    p50Us: (a.p50Us + b.p50Us) / 2,
    p99Us: (a.p99Us + b.p99Us) / 2,
    cpuPerCallUs: weighted(a.cpuPerCallUs, b.cpuPerCallUs),
    cpuSplitUs: {
      requester: weighted(a.cpuSplitUs.requester, b.cpuSplitUs.requester),
      servers: weighted(a.cpuSplitUs.servers, b.cpuSplitUs.servers),
      nats: weighted(a.cpuSplitUs.nats, b.cpuSplitUs.nats),
    },
    calls,
    errors: a.errors + b.errors,
  };
  const firstError = a.firstError ?? b.firstError;
  if (firstError !== undefined) cell.firstError = firstError;
  return cell;
}

/**
 * Runs every system at every concurrency, `ctx.options.reps` times (or
 * `options.reps`), interleaved. `mirrored`: each repetition measures the
 * systems in its order and then in the reverse order (A B C C B A), and
 * takes the mean of each system's two cells — a machine whose speed drifts
 * during the repetition then weighs on every system alike, which a single
 * pass cannot promise for differences of a few percent.
 */
export async function compare(
  ctx: BenchContext,
  nats: EmbeddedNats,
  systems: readonly LoadSystem[],
  concurrencies: readonly number[],
  options: { reps?: number; mirrored?: boolean } = {},
): Promise<Results> {
  const { cellMs, warmupMs } = ctx.options;
  const reps = options.reps ?? ctx.options.reps;
  const results: Results = new Map(systems.map((s) => [s.id, new Map(concurrencies.map((c) => [c, [] as Cell[]]))]));
  const natsPid = nats.process.pid!;
  // One unmeasured pass over every cell first: the first measured cell would
  // otherwise also pay for JIT compilation and actor activation.
  for (const c of concurrencies) {
    for (const s of systems) await s.requester.call('warm', { caller: s.caller, concurrency: c, durationMs: warmupMs });
  }
  for (let rep = 0; rep < reps; rep++) {
    for (const c of concurrencies) {
      const rotated = systems.map((_, i) => systems[(i + rep) % systems.length]!);
      const order = options.mirrored ? [...rotated, ...[...rotated].reverse()] : rotated;
      const firstCells = new Map<string, Cell>();
      for (const s of order) {
        await s.requester.call('warm', { caller: s.caller, concurrency: c, durationMs: warmupMs });
        const servers0 = await cpuOf(s.servers);
        const nats0 = processCpuMicros(natsPid);
        const r = await s.requester.call<LoadResult>('measure', { caller: s.caller, concurrency: c, durationMs: cellMs });
        const servers1 = await cpuOf(s.servers);
        const nats1 = processCpuMicros(natsPid);
        const cpu = r.cpuUs + (servers1 - servers0) + (nats1 - nats0);
        const per = (us: number) => (r.calls > 0 ? us / r.calls : NaN);
        const cell: Cell = {
          throughput: r.throughput,
          p50Us: r.p50Us,
          p99Us: r.p99Us,
          cpuPerCallUs: per(cpu),
          cpuSplitUs: { requester: per(r.cpuUs), servers: per(servers1 - servers0), nats: per(nats1 - nats0) },
          calls: r.calls,
          errors: r.errors,
        };
        if (r.firstError !== undefined) cell.firstError = r.firstError;
        const first = firstCells.get(s.id);
        if (options.mirrored && first === undefined) firstCells.set(s.id, cell);
        else results.get(s.id)!.get(c)!.push(first === undefined ? cell : meanOfCells(first, cell));
        ctx.log(
          `rep ${rep + 1}/${reps} c=${c} ${s.label}: ${Math.round(r.throughput)}/s p50 ${r.p50Us.toFixed(0)}µs p99 ${r.p99Us.toFixed(0)}µs ` +
            `cpu ${cell.cpuPerCallUs.toFixed(1)}µs/call (req ${cell.cpuSplitUs.requester.toFixed(1)}, server ${cell.cpuSplitUs.servers.toFixed(1)}, nats ${cell.cpuSplitUs.nats.toFixed(1)})${r.errors ? ` errors ${r.errors} (${r.firstError})` : ''}`,
        );
      }
    }
  }
  return results;
}

/** Adds one table row per system and concurrency. */
export function addRows(ctx: BenchContext, systems: readonly LoadSystem[], results: Results): void {
  for (const s of systems) {
    for (const [c, cells] of results.get(s.id)!) {
      ctx.row({
        system: s.label,
        setting: `c=${c}`,
        metrics: {
          throughput_per_s: stat(cells.map((x) => x.throughput)),
          p50_us: stat(cells.map((x) => x.p50Us)),
          p99_us: stat(cells.map((x) => x.p99Us)),
          cpu_us_per_call: stat(cells.map((x) => x.cpuPerCallUs)),
          cpu_requester_us_per_call: stat(cells.map((x) => x.cpuSplitUs.requester)),
          cpu_server_us_per_call: stat(cells.map((x) => x.cpuSplitUs.servers)),
          cpu_nats_us_per_call: stat(cells.map((x) => x.cpuSplitUs.nats)),
        },
        errors: cells.reduce((n, x) => n + x.errors, 0),
      });
    }
  }
}

/** The per-repetition values of one metric of one system at one concurrency. */
export function series(results: Results, id: string, c: number, metric: 'throughput' | 'p50Us' | 'p99Us' | 'cpuPerCallUs'): number[] {
  return results.get(id)!.get(c)!.map((cell) => cell[metric]);
}
