/**
 * Taking this node back when a rollout is rolled back (`molt rollback`): a
 * node at `to` rolls the type back in place (`node.downgrade`, the upgrade's
 * soft restart downward through `down`); a node at `from` that knows `to` is
 * marked rolled back, so state other nodes wrote at `to` is carried down when
 * it loads it. Each step is recorded (`rolling-back`, `rolled-back`) in the
 * rollout's progress record, and `down` failures are reported like transform
 * failures — eagerly for resident actors, and at each tick for actors carried
 * down later.
 *
 * Why apart from the lifecycles: a rollback is not an upgrade's lifecycle (it
 * ends those like an abort) and it applies to every node at once, including
 * nodes that never saw the upgrade run and nodes that start later; it is
 * driven by the UDB alone, idempotently, at every control record, rollout
 * change, upgrade, load and reconciliation.
 *
 * @module
 */
import { ErrorCode, isMoltError } from '../errors.ts';
import type { ProgressStep, RolloutRecord } from '../udb/index.ts';
import type { ManagerContext } from './context.ts';
import type { Recorder } from './recording.ts';
import { errorText } from './model.ts';

export interface Rollbacks {
  /** Rolls back or marks this node wherever a rollout is rolled back; idempotent. */
  run(): void;
  /** Reports new `down` failures of rolled-back rollouts. */
  checkDownFailures(): void;
  /** Rollbacks that failed here may be tried again (at reconciliation). */
  retryFailed(): void;
}

export function createRollbacks(ctx: ManagerContext, deps: { recorder: Recorder; refreshRollouts(): Promise<void> }): Rollbacks {
  const { node } = ctx;
  const { recorder } = deps;
  /** Types with a rollback step queued or running on this node (one at a time per type). */
  const rollingBackTypes = new Set<string>();
  /** Rollouts whose rollback step failed here: retried at the next reconciliation, not at once. */
  const rollbackFailed = new Set<string>();
  /** Steps of rollouts this node has no lifecycle for (it never saw them as upgrades). */
  const rollbackSteps = new Map<string, Array<{ step: ProgressStep; at: number }>>();
  /** Down failures already reported, per rollout. */
  const downFailuresSeen = new Map<string, number>();

  /**
   * Rollouts this node must be rolled back from: those whose control says
   * `rollback` (`molt rollback` wrote it), newest first, leaving
   * out any replaced by a later rollout of the same version (published again).
   */
  function rollbacksToApply(): RolloutRecord[] {
    const all = [...ctx.rollouts.values()];
    return all
      // The operator's command only: nodes write rollout records too (counts), and
      // a record's state alone must not take every node back (docs/permissions.md).
      .filter((r) => ctx.controls.get(r.rolloutId)?.command === 'rollback')
      .filter((r) => !all.some((o) => o.type === r.type && o.to === r.to && o.rolloutId !== r.rolloutId && o.startedAt > r.startedAt))
      .sort((a, b) => b.to - a.to);
  }

  function run(): void {
    if (ctx.stopped) return;
    const status = ctx.types();
    for (const r of rollbacksToApply()) {
      const s = status[r.type];
      if (!s || rollingBackTypes.has(r.type) || rollbackFailed.has(r.rolloutId)) continue;
      const inPlace = s.current === r.to;
      const mark = s.current === r.from && s.known.includes(r.to) && (s.rolledBackFrom ?? 0) < r.to;
      if (inPlace || mark) rollBackNode(r);
    }
  }

  function rollBackNode(r: RolloutRecord): void {
    rollingBackTypes.add(r.type);
    const p = ctx.restarts.run(async () => {
      try {
        const s = ctx.types()[r.type];
        // Re-checked in the queue: an upgrade may have run in between.
        if (!s || (s.current !== r.to && s.current !== r.from)) return;
        if (s.current === r.to) recordRollback(r, 'rolling-back', `rolling back from ${r.to} to ${r.from}`);
        const result = await ctx.internals.downgrade(r.type, r.from);
        const note = s.current === r.to
          ? `carried ${result.transformed} resident actors down to ${r.from}${result.failed ? `, ${result.failed} down transform failures` : ''}`
          : `was at ${r.from}: state written by ${r.to} is carried down when loaded`;
        recordRollback(r, 'rolled-back', note);
        if (result.failed > 0) {
          downFailuresSeen.set(r.rolloutId, countDownFailures(r));
          reportRollback(r, ErrorCode.TransformFailed, `${result.failed} actor(s) of ${r.type} failed their down transform ${r.to}→${r.from} on ${node.id}; they keep their state at ${r.to} and answer TransformFailed. Publish ${r.type}@${r.to} again to serve them`);
        }
      } catch (e) {
        rollbackFailed.add(r.rolloutId);
        recordRollback(r, 'failed', undefined, errorText(e));
        reportRollback(r, isMoltError(e) ? e.code : ErrorCode.OperationRefused, `rollback of ${r.type} ${r.to}→${r.from} failed on ${node.id}: ${errorText(e)}`);
      }
    });
    void p.finally(() => {
      rollingBackTypes.delete(r.type);
      queueMicrotask(run);
      queueMicrotask(() => void deps.refreshRollouts());
    });
  }

  function countDownFailures(r: RolloutRecord): number {
    return (ctx.types()[r.type]?.transformFailures ?? []).filter((f) => f.from === r.to && f.to === r.from).length;
  }

  function recordRollback(r: RolloutRecord, step: ProgressStep, note?: string, error?: string): void {
    const m = [...ctx.managed.values()].find((x) => x.verified?.descriptor.rolloutId === r.rolloutId);
    let steps = m?.steps ?? rollbackSteps.get(r.rolloutId);
    if (!steps) rollbackSteps.set(r.rolloutId, (steps = []));
    recorder.progress(r, steps, step, note, error);
  }

  function reportRollback(r: RolloutRecord, code: string, message: string): void {
    recorder.report({ key: `upgrade.${r.type}.${r.to}`, rolloutId: r.rolloutId, code, message });
  }

  return {
    run,
    checkDownFailures() {
      for (const r of rollbacksToApply()) {
        const count = countDownFailures(r);
        const before = downFailuresSeen.get(r.rolloutId) ?? 0;
        if (count === before) continue;
        downFailuresSeen.set(r.rolloutId, count);
        if (count < before) continue;
        reportRollback(r, ErrorCode.TransformFailed, `${count} actor(s) of ${r.type} failed their down transform ${r.to}→${r.from} on ${node.id}; they keep their state at ${r.to} and answer TransformFailed. Publish ${r.type}@${r.to} again to serve them`);
      }
    },
    retryFailed() {
      rollbackFailed.clear();
    },
  };
}
