/**
 * Test support for fault tests: a load generator that records every call it
 * makes (what, when sent, when answered, the reply or the error code), and the
 * checks run over that history afterwards:
 *
 * - **bounds**: the final value of each counter is at least the number of
 *   acknowledged increments and at most that plus the calls whose outcome is
 *   uncertain (no reply, or a retryable failure that may have been applied);
 * - **no two answers from different states**: an acknowledged increment's
 *   reply is never seen twice for one key, and answers respect real time — a
 *   call sent after another call on the same key was acknowledged sees at
 *   least that call's effect (strictly more, for an increment);
 * - **error codes**: which codes occurred, so a test can allow only retryable ones.
 *
 * Only counters incremented by 1 are modelled: that keeps every check exact.
 */
import { isMoltError, type MoltClient } from '../../runtime/index.ts';

/** One call as the caller saw it. */
export interface Op {
  key: string;
  kind: 'inc' | 'get';
  sentAt: number;
  recvAt: number;
  ok: boolean;
  value?: number;
  code?: string;
  /** The error message (first 160 characters), for diagnostics. */
  message?: string;
}

/** Codes after which the call was certainly not applied (rejected before any state change). */
const DEFINITELY_NOT_APPLIED = new Set(['InvalidPayload', 'UnknownMessage', 'UnknownType', 'InvalidVersion', 'InvalidHeader', 'InvalidKey', 'PayloadTooLarge', 'MalformedBody', 'VersionUnsupported', 'VersionRetired', 'Disallowed', 'TransformFailed', 'ActorFailed']);

/** Monotonic milliseconds with sub-ms resolution (real-time order of calls in this process). */
export const now = (): number => performance.now();

/**
 * Paces one caller: each `await pace()` returns at least `gapMs` after the
 * previous one returned, so the caller starts a call at most every `gapMs`.
 */
export function pacer(gapMs: number): () => Promise<void> {
  let last = -Infinity;
  return async () => {
    const wait = last + gapMs - performance.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    last = performance.now();
  };
}

/** A record of calls, with the checks above. */
export class History {
  readonly ops: Op[] = [];
  private readonly notApplied: ReadonlySet<string>;

  /**
   * @param options.notApplied more codes that, in this test's setting, prove
   *   the call was not applied (e.g. `Unavailable` where NATS itself never fails).
   */
  constructor(options: { notApplied?: string[] } = {}) {
    this.notApplied = new Set([...DEFINITELY_NOT_APPLIED, ...(options.notApplied ?? [])]);
  }

  /** Runs `call` as operation `kind` on `key` and records it; never throws. */
  async run(key: string, kind: Op['kind'], call: () => Promise<unknown>): Promise<Op> {
    const sentAt = now();
    let op: Op;
    try {
      const value = await call();
      op = { key, kind, sentAt, recvAt: now(), ok: true, value: typeof value === 'number' ? value : undefined };
    } catch (e) {
      op = { key, kind, sentAt, recvAt: now(), ok: false, code: isMoltError(e) ? e.code : `non-Molt error: ${String(e).slice(0, 120)}`, message: String((e as Error)?.message ?? e).slice(0, 160) };
    }
    this.ops.push(op);
    return op;
  }

  get calls(): number {
    return this.ops.length;
  }

  get okCount(): number {
    return this.ops.filter((o) => o.ok).length;
  }

  /** Failures by code. */
  failuresByCode(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const o of this.ops) if (!o.ok) out[o.code!] = (out[o.code!] ?? 0) + 1;
    return out;
  }

  /** Acknowledged and uncertain increments per key. */
  increments(): Map<string, { acked: number; uncertain: number }> {
    const out = new Map<string, { acked: number; uncertain: number }>();
    for (const o of this.ops) {
      if (o.kind !== 'inc') continue;
      const c = out.get(o.key) ?? { acked: 0, uncertain: 0 };
      if (o.ok) c.acked++;
      else if (!this.notApplied.has(o.code!)) c.uncertain++;
      out.set(o.key, c);
    }
    return out;
  }

  /**
   * Keys whose final value breaks the bounds: below the acknowledged
   * increments (a lost update) or above acknowledged + uncertain (a phantom).
   */
  checkFinal(finals: Map<string, number>, base: Map<string, number> = new Map()): { lost: string[]; phantom: string[] } {
    const lost: string[] = [];
    const phantom: string[] = [];
    for (const [key, { acked, uncertain }] of this.increments()) {
      const start = base.get(key) ?? 0;
      const v = finals.get(key) ?? 0;
      if (v < start + acked) lost.push(`${key}: value ${v} < ${start} + ${acked} acknowledged`);
      if (v > start + acked + uncertain) phantom.push(`${key}: value ${v} > ${start} + ${acked} acknowledged + ${uncertain} uncertain`);
    }
    return { lost, phantom };
  }

  /**
   * Violations of "one state per actor at a time": an increment reply seen
   * twice for a key, or an answer older than an earlier acknowledged answer
   * (by real time: sent after the other was received).
   */
  checkOrder(): string[] {
    const problems: string[] = [];
    const byKey = new Map<string, Op[]>();
    for (const o of this.ops) if (o.ok && o.value !== undefined) (byKey.get(o.key) ?? byKey.set(o.key, []).get(o.key)!).push(o);
    for (const [key, ops] of byKey) {
      const seen = new Set<number>();
      for (const o of ops) {
        if (o.kind !== 'inc') continue;
        if (seen.has(o.value!)) problems.push(`${key}: two increments both answered ${o.value}`);
        seen.add(o.value!);
      }
      // Sweep in send order; `floor` is the largest value acknowledged before this call was sent.
      const bySend = [...ops].sort((a, b) => a.sentAt - b.sentAt);
      const byRecv = [...ops].sort((a, b) => a.recvAt - b.recvAt);
      let r = 0;
      let floor = -Infinity;
      let floorOp: Op | undefined;
      for (const o of bySend) {
        while (r < byRecv.length && byRecv[r]!.recvAt < o.sentAt) {
          const done = byRecv[r++]!;
          if (done.value! > floor) {
            floor = done.value!;
            floorOp = done;
          }
        }
        const bad = o.kind === 'inc' ? o.value! <= floor : o.value! < floor;
        if (bad && problems.length < 20) {
          problems.push(`${key}: ${o.kind} sent at ${o.sentAt.toFixed(1)} answered ${o.value}, but ${floorOp!.kind} answered ${floor} at ${floorOp!.recvAt.toFixed(1)} before it was sent`);
        }
      }
    }
    return problems;
  }
}

/** Options of {@link runCounterLoad}. */
export interface CounterLoad {
  client: MoltClient;
  keys: readonly string[];
  /** Concurrent callers, each one call at a time. */
  workers: number;
  /** Share of calls that are `get` instead of `increment` (0..1). */
  readShare?: number;
  /** Interface version the callers speak (default 1); every version used must have increment({ by }) and get(). */
  version?: number | ((worker: number, i: number) => number);
  /** Pause between a worker's calls (default 0). */
  pauseMs?: number;
  type?: string;
}

/** Starts workers calling counters until `stop()`; resolves `stop()` once every worker has finished its last call. */
export function runCounterLoad(o: CounterLoad, history = new History()): { history: History; stop(): Promise<void> } {
  let running = true;
  const type = o.type ?? 'counter';
  const worker = async (w: number) => {
    for (let i = 0; running; i++) {
      const key = o.keys[Math.floor(Math.random() * o.keys.length)]!;
      const version = typeof o.version === 'function' ? o.version(w, i) : (o.version ?? 1);
      if (Math.random() < (o.readShare ?? 0)) await history.run(key, 'get', () => o.client.call(type, version, key, 'get', {}));
      else await history.run(key, 'inc', () => o.client.call(type, version, key, 'increment', { by: 1 }));
      const last = history.ops[history.ops.length - 1]!;
      // Back off after a fast failure, as a real caller would, instead of spinning.
      const pause = !last.ok && last.recvAt - last.sentAt < 5 ? 20 : (o.pauseMs ?? 0);
      if (pause) await new Promise((r) => setTimeout(r, pause));
    }
  };
  const done = Promise.all(Array.from({ length: o.workers }, (_, w) => worker(w)));
  return {
    history,
    async stop() {
      running = false;
      await done;
    },
  };
}

/** Reads a process's resident set size in MiB from /proc (Linux). */
export async function rssMiB(pid: number): Promise<number> {
  const { readFile } = await import('node:fs/promises');
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  const m = /VmRSS:\s+(\d+)\s+kB/.exec(status);
  if (!m) throw new Error(`no VmRSS for pid ${pid}`);
  return Number(m[1]) / 1024;
}

/** Options of {@link runOpenLoad}. */
export interface OpenLoad {
  client: MoltClient;
  keys: readonly string[];
  /** Calls started per second, whether or not earlier ones were answered. */
  ratePerSec: number;
  readShare?: number;
  type?: string;
  version?: number;
}

/**
 * Open-loop load: starts a call every 1/rate seconds without waiting for the
 * earlier ones, so a call stuck on a paused node does not slow the rest.
 * `stop()` resolves once every started call has been answered or failed.
 */
export function runOpenLoad(o: OpenLoad, history = new History()): { history: History; stop(): Promise<void> } {
  const type = o.type ?? 'counter';
  const version = o.version ?? 1;
  const pending = new Set<Promise<unknown>>();
  const timer = setInterval(() => {
    const key = o.keys[Math.floor(Math.random() * o.keys.length)]!;
    const p =
      Math.random() < (o.readShare ?? 0)
        ? history.run(key, 'get', () => o.client.call(type, version, key, 'get', {}))
        : history.run(key, 'inc', () => o.client.call(type, version, key, 'increment', { by: 1 }));
    pending.add(p);
    void p.finally(() => pending.delete(p));
  }, 1000 / o.ratePerSec);
  return {
    history,
    async stop() {
      clearInterval(timer);
      while (pending.size > 0) await Promise.allSettled([...pending]);
    },
  };
}

/** Calls per half second since `from`: ok count and failures by code (for failure messages). */
export function timeline(history: History, from: number): string {
  const lines: string[] = [];
  for (let t = from; t < now(); t += 500) {
    const b = history.ops.filter((o) => o.sentAt >= t && o.sentAt < t + 500);
    const codes: Record<string, number> = {};
    for (const o of b) if (!o.ok) codes[o.code!] = (codes[o.code!] ?? 0) + 1;
    lines.push(`  +${Math.round(t - from)} ms: ${b.filter((o) => o.ok).length} ok ${JSON.stringify(codes)}`);
  }
  return lines.join('\n');
}

/**
 * A counter's final value for the history's checks, read again while the
 * read fails with an error that only says "not now" (`Timeout`,
 * `Unavailable`, `OutcomeUnknown` — a get changes nothing): right after a
 * cluster heals, JetStream may still be electing leaders for a few seconds.
 */
export async function finalCount(client: MoltClient, key: string, timeoutMs = 30_000): Promise<number> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      return (await client.call('counter', 1, key, 'get', {})) as number;
    } catch (e) {
      if (!isMoltError(e) || !['Timeout', 'Unavailable', 'OutcomeUnknown'].includes(e.code) || Date.now() > deadline) throw e;
      await new Promise((r) => setTimeout(r, 250));
    }
  }
}
