/**
 * A benchmark agent: a child process that plays roles on command from the
 * harness (over the IPC channel) — a raw NATS responder, a Molt node, a
 * Moleculer broker, or a requester driving load — and reports measurements:
 * throughput, latency percentiles and its own CPU time.
 *
 * Roles live in `bench/systems/*.ts`; each adds commands to the table below.
 * A requester registers named *callers*; `warm` and `measure` drive a caller
 * with a closed loop of `concurrency` workers, worker i always calling actor
 * (or key) i, so in-flight calls never queue behind each other on one actor.
 *
 * @module
 */
import { commands as raw } from './systems/raw.ts';
import { commands as molt } from './systems/molt.ts';
import { commands as moleculer } from './systems/moleculer.ts';
import { commands as kv } from './systems/kv.ts';
import { commands as upgrades } from './systems/upgrades.ts';
import { commands as verify } from './systems/verify.ts';
import { callers, childCpu, cleanups, type Command } from './systems/common.ts';
import { commands as restate } from './systems/restate.ts';

const name = process.argv[2] ?? 'agent';

/** One load cell as the agent measured it. */
export interface LoadResult {
  calls: number;
  errors: number;
  firstError?: string;
  elapsedMs: number;
  throughput: number;
  p50Us: number;
  p99Us: number;
  /** CPU time of this process during the cell (user + system), µs. */
  cpuUs: number;
}

let latencies = new Float64Array(1 << 20);

async function drive(callerName: string, concurrency: number, durationMs: number, record: boolean): Promise<LoadResult> {
  const caller = callers.get(callerName);
  if (!caller) throw new Error(`no caller '${callerName}' in agent ${name}; have: ${[...callers.keys()].join(', ')}`);
  let n = 0;
  let errors = 0;
  let firstError: string | undefined;
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  const until = t0 + durationMs;
  const worker = async (w: number) => {
    while (performance.now() < until) {
      const start = performance.now();
      try {
        await caller.call(w);
      } catch (e) {
        errors++;
        firstError ??= e instanceof Error ? e.message : String(e);
        continue;
      }
      if (record) {
        if (n === latencies.length) {
          const grown = new Float64Array(latencies.length * 2);
          grown.set(latencies);
          latencies = grown;
        }
        latencies[n] = performance.now() - start;
      }
      n++;
    }
  };
  await Promise.all(Array.from({ length: concurrency }, (_, w) => worker(w)));
  const elapsedMs = performance.now() - t0;
  const cpu = process.cpuUsage(cpu0);
  const sorted = latencies.subarray(0, record ? n : 0).sort();
  const q = (p: number) => (sorted.length === 0 ? NaN : sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(p * sorted.length) - 1))]! * 1000);
  const result: LoadResult = {
    calls: n,
    errors,
    elapsedMs,
    throughput: (n / elapsedMs) * 1000,
    p50Us: q(0.5),
    p99Us: q(0.99),
    cpuUs: cpu.user + cpu.system,
  };
  if (firstError !== undefined) result.firstError = firstError;
  return result;
}

const table: Record<string, Command> = {
  ping: async () => ({ pid: process.pid }),
  cpu: async () => {
    const c = process.cpuUsage();
    return c.user + c.system + childCpu.reduce((sum, of) => sum + of(), 0);
  },
  memory: async (args) => {
    const gc = (globalThis as { gc?: () => void }).gc;
    if (args.gc && gc) {
      for (let i = 0; i < 3; i++) {
        gc();
        await new Promise((r) => setImmediate(r));
      }
    }
    const m = process.memoryUsage();
    return { ...m, maxRssBytes: process.resourceUsage().maxRSS * 1024, gc: Boolean(args.gc && gc) };
  },
  warm: async (args) => drive(String(args.caller), Number(args.concurrency), Number(args.durationMs), false),
  measure: async (args) => drive(String(args.caller), Number(args.concurrency), Number(args.durationMs), true),
  /** Calls keys `<from>..<to-1>` of a caller once each, `concurrency` at a time (`latencies: true` returns each call's latency, µs). */
  sweep: async (args) => {
    const caller = callers.get(String(args.caller));
    if (!caller?.callKey) throw new Error(`caller '${String(args.caller)}' cannot address keys`);
    const from = Number(args.from ?? 0);
    const to = Number(args.to);
    let next = from;
    let errors = 0;
    let firstError: string | undefined;
    const latenciesUs: number[] = [];
    const t0 = performance.now();
    const worker = async () => {
      while (next < to) {
        const i = next++;
        try {
          const start = performance.now();
          await caller.callKey!(i);
          if (args.latencies) latenciesUs.push((performance.now() - start) * 1000);
        } catch (e) {
          errors++;
          firstError ??= e instanceof Error ? e.message : String(e);
        }
      }
    };
    await Promise.all(Array.from({ length: Number(args.concurrency ?? 64) }, worker));
    return { ms: performance.now() - t0, count: to - from, errors, firstError, ...(args.latencies ? { latenciesUs } : {}) };
  },
  ...raw,
  ...molt,
  ...moleculer,
  ...restate,
  ...kv,
  ...upgrades,
  ...verify,
};

async function shutdown(): Promise<void> {
  for (const c of cleanups.splice(0).reverse()) await c().catch(() => undefined);
}

process.on('message', (m: { id: number; cmd: string; args: Record<string, unknown> }) => {
  if (m.cmd === 'exit') {
    void shutdown().finally(() => process.exit(0));
    return;
  }
  const command = table[m.cmd];
  if (!command) {
    process.send!({ id: m.id, ok: false, error: `unknown command '${m.cmd}'` });
    return;
  }
  command(m.args ?? {}).then(
    (result) => process.send!({ id: m.id, ok: true, result }),
    (e: unknown) => process.send!({ id: m.id, ok: false, error: e instanceof Error ? e.stack ?? e.message : String(e) }),
  );
});
// The harness going away (crash, Ctrl-C) takes the agent with it.
process.on('disconnect', () => void shutdown().finally(() => process.exit(0)));
