/**
 * Recording in the upgrade database: this node's progress through each
 * rollout (`progress.<rollout>.<node>`), the problems it reports
 * (`reports.<node>.<type>.<to>` and its record's `lastError`), and the status
 * message of its node record.
 *
 * Why one recorder: writes go out in order per key, and a failed write is
 * logged, never thrown into a lifecycle — the UDB is a whiteboard for people
 * and other nodes, and serving calls must never depend on writing to it. It
 * also remembers which problem this node's `lastError` is about, so that the
 * upgrade that fixes it can clear it.
 *
 * @module
 */
import type { ProgressRecord, ProgressStep } from '../udb/index.ts';
import type { ManagerContext } from './context.ts';
import { errorText, stepOf, type Managed } from './model.ts';

/** The rollout a progress record is about. */
export interface ProgressOf {
  rolloutId: string;
  type: string;
  from: number;
  to: number;
}

/** A problem to report: the descriptor key it is about, a Molt error code and the message. */
export interface Problem {
  key: string;
  rolloutId?: string;
  code: string;
  /** For rejections: `unsigned`, `digest-mismatch`, … */
  reason?: string;
  message: string;
}

export interface Recorder {
  /** Queues a UDB write behind earlier writes of the same key; failures are logged. */
  write(key: string, fn: () => Promise<void>): void;
  /**
   * Sets the status message of this node's record (`lastError`; undefined
   * clears it). `about` names what it is about (a descriptor key, or
   * `rollout:<id>`), so that {@link Recorder.statusOver} clears only its own.
   */
  status(message: string | undefined, about?: string): void;
  /** Clears this node's status message if it is about `about` (a problem that is over). */
  statusOver(about: string): void;
  /** Appends `step` to `steps` (unless it is the last one) and writes the progress record. */
  progress(of: ProgressOf, steps: Array<{ step: ProgressStep; at: number }>, step: ProgressStep, note?: string, error?: string): void;
  /** Records a lifecycle's current state as its progress step. */
  /** Records the step of `m`'s state, at `at` (default: now). */
  recordStep(m: Managed, note?: string, error?: string, at?: number): void;
  /** Writes a report and makes it this node's `lastError`. */
  report(problem: Problem): void;
  /** Reports a problem of a managed upgrade. */
  reportProblem(m: Managed, code: string, message: string, reason?: string): void;
  /** The upgrade of `m` went through: its report is deleted, and `lastError` cleared if it was about it. */
  problemOver(m: Managed, clearStatus: boolean): void;
  /** Settles once every write queued so far has. */
  settled(): Promise<unknown>;
}

export function createRecorder(ctx: ManagerContext): Recorder {
  const { node, udb, clock, logger } = ctx;
  const writes = new Map<string, Promise<void>>();
  /** What this node's `lastError` is about (a descriptor key, or `rollout:<id>`), if anything. */
  let statusAbout: string | undefined;

  function write(key: string, fn: () => Promise<void>): void {
    const next = (writes.get(key) ?? Promise.resolve()).then(fn).catch((e) => logger.warn('could not write to the UDB', { key, error: errorText(e) }));
    writes.set(key, next);
  }

  /** Writes of whole records not started yet, by key: a newer one takes their place. */
  const queuedWholeWrites = new Map<string, { fn: () => Promise<void> }>();

  /**
   * {@link write} for a write that replaces the whole record (progress,
   * status): one queued behind a write still in flight is replaced by a newer
   * one instead of following it. The steps of an upgrade often come within a
   * millisecond of each other (verified, loaded, scheduling, held), and the
   * last record holds every step: with many nodes, writes that were replaced
   * before they went out only cost nats-server time in the busiest moment.
   */
  function writeWhole(key: string, fn: () => Promise<void>): void {
    const queued = queuedWholeWrites.get(key);
    if (queued) {
      queued.fn = fn;
      return;
    }
    const slot = { fn };
    queuedWholeWrites.set(key, slot);
    write(key, () => {
      queuedWholeWrites.delete(key);
      return slot.fn();
    });
  }

  function status(message: string | undefined, about?: string): void {
    statusAbout = message === undefined ? undefined : about;
    writeWhole('status', () => ctx.internals.setStatus(ctx.restarts.active > 0 ? 'upgrading' : 'running', message));
  }

  function statusOver(about: string): void {
    if (statusAbout === about) status(undefined);
  }

  function progress(of: ProgressOf, steps: Array<{ step: ProgressStep; at: number }>, step: ProgressStep, note?: string, error?: string, stampedAt?: number): void {
    const at = stampedAt ?? clock.now();
    if (steps[steps.length - 1]?.step !== step) steps.push({ step, at });
    const record: ProgressRecord = {
      rolloutId: of.rolloutId,
      nodeId: node.id,
      type: of.type,
      from: of.from,
      to: of.to,
      step,
      at,
      ...(note ? { note } : {}),
      ...(error ? { error } : {}),
      steps: [...steps],
    };
    writeWhole(`progress:${of.rolloutId}`, () => udb.putProgress(record));
  }

  function report(problem: Problem): void {
    const { key, rolloutId, code, reason, message } = problem;
    write(`report:${key}`, () => udb.putReport({ nodeId: node.id, key, ...(rolloutId ? { rolloutId } : {}), code, ...(reason ? { reason } : {}), message, at: clock.now() }));
    status(message, key);
  }

  return {
    write,
    status,
    statusOver,
    progress,
    recordStep(m, note, error, at) {
      const d = m.verified?.descriptor;
      const step = stepOf[m.state];
      if (!d || !step) return;
      progress(d, m.steps, step, note, error, at);
    },
    report,
    reportProblem(m, code, message, reason) {
      const rolloutId = m.verified?.descriptor.rolloutId;
      report({ key: m.key, ...(rolloutId ? { rolloutId } : {}), code, ...(reason ? { reason } : {}), message });
    },
    problemOver(m, clearStatus) {
      write(`report:${m.key}`, () => udb.deleteReport(node.id, m.type, m.to));
      if (clearStatus) statusOver(m.key);
    },
    settled: () => Promise.allSettled([...writes.values()]),
  };
}
