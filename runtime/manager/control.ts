/**
 * Operator control as this node carries it out: the rollout's control record
 * (`molt pause|resume|abort|rollback`, or a node's transform-failure halt)
 * and its state (`done`, `aborted`, rolled back) are sent to the lifecycles of
 * that rollout — which forward them to the SF and enforce them themselves, so
 * a custom SF cannot upgrade a paused or aborted rollout — and retirements
 * (`molt retire`) are applied to the node once it runs a newer version.
 * Rollback's own work (taking the node back) is in rollback.ts.
 *
 * Why apart: the UDB says what the operator wants; this is the one place that
 * turns it into lifecycle events, so every way a record arrives (watch,
 * reconciliation, verification's own read) ends in the same decision.
 *
 * @module
 */
import type { ControlRecord, RolloutRecord } from '../udb/index.ts';
import { rollbackStates } from '../udb/index.ts';
import type { ManagerContext } from './context.ts';
import type { Recorder } from './recording.ts';
import { errorText, finalStates, type Managed } from './model.ts';

export interface OperatorControl {
  /** Sends a lifecycle what the UDB says about its rollout: control and done. */
  syncRollout(m: Managed): void;
  /** A control record arrived. */
  onControl(record: ControlRecord): void;
  /** A rollout record arrived. */
  onRollout(record: RolloutRecord): void;
  /** Applies retirements the node has moved past. */
  applyRetirements(): void;
}

export function createOperatorControl(ctx: ManagerContext, deps: { runRollbacks(): void; recorder: Pick<Recorder, 'statusOver'> }): OperatorControl {
  const { node, logger } = ctx;
  const appliedRetirements = new Set<string>();

  function syncRollout(m: Managed): void {
    const d = m.verified?.descriptor;
    if (!d) return;
    if (finalStates.has(m.state)) {
      if (m.retryOnControl) retryWhenChanged(m, d.rolloutId);
      return;
    }
    const control = ctx.controls.get(d.rolloutId);
    const rollout = ctx.rollouts.get(d.rolloutId);
    if (control && control.at !== m.lastControlAt) {
      m.lastControlAt = control.at;
      if (control.command === 'rollback') {
        // For the upgrade's lifecycle a rollback is an abort: it never upgrades now (rollback.ts takes the node back).
        m.actor.send({ type: 'control', command: 'abort', reason: `rolled back${control.reason ? `: ${control.reason}` : ''}`, by: control.by });
      } else {
        m.actor.send({ type: 'control', command: control.command, ...(control.reason ? { reason: control.reason } : {}), by: control.by });
      }
    } else if (!control && rollout && (rollout.state === 'aborted' || rollbackStates.has(rollout.state)) && m.lastControlAt === undefined) {
      m.lastControlAt = rollout.updatedAt;
      m.actor.send({ type: 'control', command: 'abort', reason: rollout.reason ?? `the rollout was ${rollout.state === 'aborted' ? 'aborted' : 'rolled back'}` });
    }
    if (rollout?.state === 'done' && !m.doneSent) {
      m.doneSent = true;
      m.actor.send({ type: 'rollout.done' });
    }
  }

  /** A lifecycle whose SF crashed gets another go (at the next reconciliation) once its rollout's control or state changed. */
  function retryWhenChanged(m: Managed, rolloutId: string): void {
    const control = ctx.controls.get(rolloutId);
    const rollout = ctx.rollouts.get(rolloutId);
    if ((control && control.at !== m.lastControlAt) || (rollout && rollout.state !== 'running' && rollout.state !== 'paused')) {
      m.retryOnControl = false;
      m.retry = true;
    }
  }

  function syncRolloutOf(rolloutId: string): void {
    for (const m of ctx.managed.values()) if (m.verified?.descriptor.rolloutId === rolloutId) syncRollout(m);
  }

  return {
    syncRollout,
    onControl(record) {
      syncRolloutOf(record.rolloutId);
      // A health halt this node reported is over once the operator resumes or ends the rollout.
      if (record.command !== 'pause') deps.recorder.statusOver(`rollout:${record.rolloutId}`);
      if (record.command === 'rollback') queueMicrotask(deps.runRollbacks);
    },
    onRollout(record) {
      syncRolloutOf(record.rolloutId);
      if (record.state !== 'paused') deps.recorder.statusOver(`rollout:${record.rolloutId}`);
      if (rollbackStates.has(record.state)) queueMicrotask(deps.runRollbacks);
    },
    applyRetirements() {
      const status = ctx.types();
      for (const [id, r] of ctx.retired) {
        if (appliedRetirements.has(id)) continue;
        const s = status[r.type];
        if (!s || r.version >= s.current) continue; // applied once the node has moved past it
        try {
          node.retire(r.type, r.version);
          appliedRetirements.add(id);
          logger.info('version retired', { type: r.type, version: r.version, by: r.by });
        } catch (e) {
          logger.warn('could not retire version', { type: r.type, version: r.version, error: errorText(e) });
        }
      }
    },
  };
}
