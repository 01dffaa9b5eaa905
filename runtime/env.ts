/**
 * The sources of nondeterminism a runtime uses — clock, logger, id generator —
 * as small interfaces injected per runtime instance (never module globals),
 * with real defaults and a simulated clock for tests.
 *
 * @module
 */
import { randomBytes } from 'node:crypto';

/** Time and timers. */
export interface Clock {
  /** Wall-clock time in ms since the epoch: for records and display. It may step (NTP, an operator). */
  now(): number;
  /**
   * Milliseconds on a clock that never steps back or jumps with the wall
   * clock (arbitrary origin): for measuring durations that safety depends on,
   * such as how long ago a lease was renewed.
   */
  monotonic(): number;
  setTimeout(fn: () => void, ms: number): TimerHandle;
  clearTimeout(handle: TimerHandle): void;
}

/** An opaque timer handle. */
export type TimerHandle = { readonly __timer: true } | ReturnType<typeof setTimeout>;

/** The real clock. Timers are unref'd so they never keep a process alive. */
export const systemClock: Clock = {
  now: () => Date.now(),
  monotonic: () => performance.now(),
  setTimeout(fn, ms) {
    const t = setTimeout(fn, ms);
    t.unref?.();
    return t;
  },
  clearTimeout: (handle) => clearTimeout(handle as ReturnType<typeof setTimeout>),
};

/**
 * A clock that moves only when told to: `advance(ms)` fires every timer due
 * in that span, in order. For testing timing logic without waiting.
 */
export class SimulatedClock implements Clock {
  private current: number;
  private nextId = 1;
  private readonly timers = new Map<number, { at: number; fn: () => void }>();

  constructor(start = 0) {
    this.current = start;
  }
  now(): number {
    return this.current;
  }
  /** The simulated time too: it only moves forward. */
  monotonic(): number {
    return this.current;
  }
  setTimeout(fn: () => void, ms: number): TimerHandle {
    const id = this.nextId++;
    this.timers.set(id, { at: this.current + Math.max(0, ms), fn });
    return id as unknown as TimerHandle;
  }
  clearTimeout(handle: TimerHandle): void {
    this.timers.delete(handle as unknown as number);
  }
  /** Moves time forward by `ms`, firing due timers in time order. */
  advance(ms: number): void {
    const target = this.current + ms;
    for (;;) {
      let nextId: number | undefined;
      let nextAt = Infinity;
      for (const [id, t] of this.timers) {
        if (t.at <= target && t.at < nextAt) {
          nextAt = t.at;
          nextId = id;
        }
      }
      if (nextId === undefined) break;
      const timer = this.timers.get(nextId)!;
      this.timers.delete(nextId);
      this.current = Math.max(this.current, timer.at);
      timer.fn();
    }
    this.current = target;
  }
  /** Sets the absolute time (must not go backwards). */
  set(time: number): void {
    this.advance(time - this.current);
  }
}

/** Log levels, most verbose first. */
export type LogLevel = 'debug' | 'info' | 'warn' | 'error';
const levelRank: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };

/** A structured logger: a message and fields. */
export interface Logger {
  debug(message: string, fields?: Record<string, unknown>): void;
  info(message: string, fields?: Record<string, unknown>): void;
  warn(message: string, fields?: Record<string, unknown>): void;
  error(message: string, fields?: Record<string, unknown>): void;
  /** A logger that adds `fields` to every line. */
  child(fields: Record<string, unknown>): Logger;
}

/**
 * A logger writing one JSON object per line to stderr, at `level` and above
 * (default from `MOLT_LOG`, else 'info').
 */
export function createJsonLogger(
  level: LogLevel = (process.env.MOLT_LOG as LogLevel | undefined) ?? 'info',
  base: Record<string, unknown> = {},
  write: (line: string) => void = (line) => process.stderr.write(line + '\n'),
): Logger {
  const min = levelRank[level] ?? levelRank.info;
  const log = (lvl: LogLevel) => (message: string, fields?: Record<string, unknown>) => {
    if (levelRank[lvl] < min) return;
    let line: string;
    try {
      line = JSON.stringify({ time: new Date().toISOString(), level: lvl, msg: message, ...base, ...fields });
    } catch {
      line = JSON.stringify({ time: new Date().toISOString(), level: lvl, msg: message, ...base });
    }
    write(line);
  };
  return {
    debug: log('debug'),
    info: log('info'),
    warn: log('warn'),
    error: log('error'),
    child: (fields) => createJsonLogger(level, { ...base, ...fields }, write),
  };
}

/** A logger that drops everything. */
export const silentLogger: Logger = {
  debug() {},
  info() {},
  warn() {},
  error() {},
  child: () => silentLogger,
};

/** Generates ids unique within and across processes. */
export interface IdGenerator {
  next(): string;
}

/** Random 12-character prefix plus a counter: unique and cheap. */
export function createIdGenerator(): IdGenerator {
  const prefix = randomBytes(9).toString('base64url');
  let n = 0;
  return { next: () => `${prefix}${(n++).toString(36)}` };
}
