/**
 * The upgrade lifecycles of this node: one actor of the lifecycle machine
 * (actors/upgrade-manager.ts) per descriptor, started strictly in chain order
 * per type — the upgrade to n + 1 only once version n is known here — and
 * given its I/O (verify, load, the SF, the upgrade) by the other modules.
 * Each state it enters is recorded as a progress step; refusals and failures
 * are reported. New revisions of a descriptor are handled here too: a fix
 * (`molt publish --fix`) is verified and loaded in place of the old code, a
 * version published again after a rollback starts a new lifecycle, and
 * lifecycles that failed for a reason that may pass are retried at
 * reconciliation.
 *
 * Why apart: the machine decides (and is tested with stubs); this module is
 * the bookkeeping around its actors — which exist, in what order they start,
 * and what their snapshots mean for the UDB.
 *
 * @module
 */
import { createActor, fromCallback, fromPromise } from 'xstate';
import { ErrorCode, isMoltError } from '../errors.ts';
import { parseDescriptorKey, rejected } from '../server/descriptor.ts';
import type { StoredDescriptor } from '../server/store.ts';
import type { ProgressStep } from '../udb/index.ts';
import { upgradeLifecycle, type UpgradeLifecycleState, type VerifiedUpgrade } from '../../actors/upgrade-manager.ts';
import type { UpgradeResult } from '../node/index.ts';
import type { ManagerContext } from './context.ts';
import type { Recorder } from './recording.ts';
import type { Verifier } from './verify.ts';
import type { ScheduleDriver } from './schedules.ts';
import type { Upgrades } from './upgrades.ts';
import { errorText, finalStates, type Managed, type ManagedUpgrade, type Verified } from './model.ts';

export interface Lifecycles {
  /** Starts the next lifecycle of each type, in chain order; handles new descriptor revisions. */
  pump(): void;
  /** Lifecycles that ended for a reason that may pass get another go. */
  retryFailed(): void;
  /** What `UpgradeManager.upgrades()` shows. */
  list(): ManagedUpgrade[];
  /** Stops every lifecycle actor. */
  stopAll(): void;
}

export interface LifecyclesDeps {
  recorder: Recorder;
  verifier: Verifier;
  schedules: Pick<ScheduleDriver, 'runSchedule'>;
  upgrades: Upgrades;
  syncRollout(m: Managed): void;
  runRollbacks(): void;
}

export function createLifecycles(ctx: ManagerContext, deps: LifecyclesDeps): Lifecycles {
  const { node, clock, logger } = ctx;
  const { recorder, verifier, upgrades } = deps;

  // One machine for every lifecycle of this manager (its I/O depends only on the
  // manager): providing it per lifecycle built a new machine for every upgrade.
  const logic = upgradeLifecycle.provide({
    actors: {
      verify: fromPromise(({ input }) => verifier.verify(input.key)),
      load: fromPromise(({ input }) => verifier.load(input.verified as Verified)),
      runSchedule: fromCallback(({ input, sendBack, receive }) => deps.schedules.runSchedule(input, sendBack, receive)),
      upgrade: fromPromise(({ input }) => upgrades.upgradeNode(input.verified as Verified)),
    },
  });

  function startLifecycle(stored: StoredDescriptor, type: string, to: number): void {
    const current = ctx.types()[type]?.current ?? 0;
    const actor = createActor(logic, { input: { key: stored.key, current, paused: false, aborted: false, rolloutDone: false } });
    const m: Managed = { key: stored.key, type, to, revision: stored.revision, actor, subscription: undefined as never, state: 'verifying', steps: [], retry: false };
    ctx.managed.set(stored.key, m);
    m.subscription = actor.subscribe({
      next: (snap) => onSnapshot(m, snap.value as UpgradeLifecycleState, snap.context),
      error: (e) => logger.error('upgrade lifecycle crashed', { key: m.key, error: errorText(e) }),
    });
    actor.start();
  }

  function onSnapshot(m: Managed, state: UpgradeLifecycleState, context: { verified?: VerifiedUpgrade; note?: string; error?: string; reason?: string; result?: UpgradeResult }): void {
    const previous = m.state;
    const note = context.note;
    if (!m.verified && context.verified) {
      m.verified = context.verified as Verified;
      // Verification read the rollout's control; syncRollout sends any other
      // the watch has delivered since (and later ones as they come).
      if (m.verified.controlAt !== undefined) m.lastControlAt = m.verified.controlAt;
      if (m.verified.rollout?.done) m.doneSent = true;
      queueMicrotask(() => deps.syncRollout(m));
    }
    if (state === previous) {
      if (state === 'scheduling' && note && note !== m.lastNote) {
        m.lastNote = note;
        recorder.recordStep(m, note);
      }
      return;
    }
    m.state = state;
    // 'waiting' is often passed within one step: the version was loaded all the same.
    if (previous === 'loading' && state !== 'failed' && state !== 'waiting') {
      const saved = m.state;
      m.state = 'waiting';
      recorder.recordStep(m);
      m.state = saved;
    }
    const d = m.verified?.descriptor;
    logger.info('upgrade step', { key: m.key, rolloutId: d?.rolloutId, state, ...(note ? { note } : {}), ...(context.error ? { error: context.error } : {}) });
    switch (state) {
      case 'rejected': {
        const error = context.error ?? 'rejected';
        // Not a verdict on the upgrade (e.g. NATS unreachable while downloading): try again later.
        const reason = verifier.rejectionReason(m.key);
        const transient = reason === undefined;
        m.retry = transient;
        logger.error('upgrade refused', { key: m.key, error });
        recorder.reportProblem(m, transient ? ErrorCode.Unavailable : ErrorCode.UpgradeRejected, `refused upgrade ${m.type}@${m.to}: ${error}`, reason);
        recorder.recordStep(m, undefined, error);
        break;
      }
      case 'failed': {
        const error = context.error ?? 'failed';
        // Only a crashed SF (user code of the bundle) fails a lifecycle in `scheduling`:
        // retried every period it would crash every period. See Managed.retryOnControl.
        const sfCrashed = previous === 'scheduling';
        m.retry = !sfCrashed;
        m.retryOnControl = sfCrashed;
        const rolloutId = m.verified?.descriptor.rolloutId;
        const advice = sfCrashed
          ? `; this node runs it again only when the rollout changes: publish a fixed bundle (\`molt publish --fix --version ${m.type}=${m.to}\`) or abort the rollout (\`molt abort ${rolloutId ?? `${m.type}@${m.to}`}\`)`
          : '';
        recorder.reportProblem(m, ErrorCode.OperationRefused, `upgrade ${m.type}@${m.to} failed: ${error}${advice}`);
        recorder.recordStep(m, undefined, error);
        break;
      }
      case 'upgraded': {
        const result = context.result ?? { transformed: 0, failed: 0 };
        // Stamped when the node switched, not now: other nodes may have acted on it since.
        recorder.recordStep(m, `transformed ${result.transformed} resident actors${result.failed ? `, ${result.failed} transform failures` : ''}`, undefined, result.finishedAt);
        // A problem reported earlier for this upgrade (e.g. a refused revision) is over.
        recorder.problemOver(m, result.failed === 0);
        upgrades.checkTransformFailures();
        upgrades.afterUpgrade(m.type);
        break;
      }
      case 'aborted':
        recorder.recordStep(m, context.reason);
        break;
      default:
        recorder.recordStep(m, note);
    }
    if (state === 'loading' || finalStates.has(state) || state === 'waiting') queueMicrotask(pump);
    // Once `to` is loaded, a node at `from` can take part in a rollback of it.
    if (previous === 'loading') queueMicrotask(deps.runRollbacks);
  }

  function pump(): void {
    if (ctx.stopped) return;
    const byType = new Map<string, Array<{ stored: StoredDescriptor; to: number }>>();
    for (const stored of ctx.descriptors.values()) {
      const parsed = parseDescriptorKey(stored.key);
      if (!parsed) continue;
      const list = byType.get(parsed.type) ?? [];
      list.push({ stored, to: parsed.to });
      byType.set(parsed.type, list);
    }
    const status = ctx.types();
    for (const [type, list] of byType) {
      const s = status[type];
      if (!s) continue;
      const knownMax = Math.max(...s.known);
      list.sort((a, b) => a.to - b.to);
      for (const { stored, to } of list) {
        const existing = ctx.managed.get(stored.key);
        if (to <= s.current) {
          // A fix of a version this node already runs still replaces its TF (for actors not yet carried).
          if (existing && existing.revision !== stored.revision && existing.state === 'upgraded') applyFix(existing, stored);
          continue;
        }
        if (existing) {
          // A finished upgrade above the node's version whose descriptor changed: the
          // version was rolled back and is published again (a new rollout).
          const republished = existing.state === 'upgraded' || existing.state === 'aborted';
          if (existing.revision !== stored.revision && (existing.state === 'rejected' || existing.state === 'failed' || republished)) {
            replace(existing);
            startLifecycle(stored, type, to);
            break;
          }
          if (existing.revision !== stored.revision && existing.state !== 'verifying' && existing.state !== 'loading') applyFix(existing, stored);
          // Later versions wait until this one is loaded.
          if (existing.state === 'verifying' || existing.state === 'loading' || existing.state === 'rejected') break;
          if (existing.state === 'failed' && !s.known.includes(to)) break;
          continue;
        }
        if (to - 1 > knownMax) break;
        startLifecycle(stored, type, to);
        break;
      }
    }
  }

  /**
   * A new revision of a descriptor this node already loaded: a fix (`molt
   * publish --fix`). Verified like any upgrade, then loaded in place of the
   * old code; the host retries actors whose transform failed with it.
   */
  function applyFix(m: Managed, stored: StoredDescriptor): void {
    if (m.fixing === stored.revision) return;
    m.fixing = stored.revision;
    void (async () => {
      try {
        const verified = await verifier.verify(stored.key);
        const previous = m.verified?.descriptor;
        if (previous && verified.descriptor.rolloutId !== previous.rolloutId) {
          throw rejected('chain', `${stored.key} now names rollout ${verified.descriptor.rolloutId}, but this node runs rollout ${previous.rolloutId} for it; a fix keeps its rollout`, { key: stored.key });
        }
        if (previous && previous.bundle.digest === verified.descriptor.bundle.digest) {
          // The same bundle: the same descriptor written again (a tool syncing the
          // bucket), or re-signed with another key. Nothing new to load.
          m.revision = stored.revision;
          m.verified = { ...m.verified!, descriptor: verified.descriptor };
          return;
        }
        const def = verifier.loadedVersion(verified);
        if (def) node.loadVersion(def);
        m.revision = stored.revision;
        m.verified = { ...verified, def: m.verified?.def };
        (m.steps as Array<{ step: ProgressStep; at: number }>).push({ step: m.steps[m.steps.length - 1]?.step ?? 'loaded', at: clock.now() });
        recorder.recordStep(m, `fixed code loaded (bundle sha256 ${verified.descriptor.bundle.digest.slice(0, 12)}…)`);
        upgrades.fixed(m.key);
        // What this node reported of the old code (its transform failures, a refused revision) is over.
        recorder.problemOver(m, true);
        // A scheduling function measuring the old code (a canary's soak) starts again on the new.
        if (m.state === 'scheduling') m.actor.send({ type: 'code.changed' });
        logger.info('fixed upgrade loaded', { key: m.key, digest: verified.descriptor.bundle.digest });
      } catch (e) {
        m.fixing = undefined;
        m.revision = stored.revision; // do not retry the same bad revision in a loop
        recorder.reportProblem(m, isMoltError(e) ? e.code : ErrorCode.UpgradeRejected, `refused new revision ${stored.revision} of ${m.type}@${m.to} (as a fix of the code it runs): ${errorText(e)}`, verifier.rejectionReason(m.key));
      }
    })();
  }

  function replace(m: Managed): void {
    m.subscription.unsubscribe();
    m.actor.stop();
    ctx.managed.delete(m.key);
  }

  return {
    pump,
    retryFailed() {
      for (const m of [...ctx.managed.values()]) {
        if (m.retry && (m.state === 'failed' || m.state === 'rejected') && (ctx.types()[m.type]?.current ?? 0) < m.to) {
          replace(m);
        }
      }
    },
    list() {
      return [...ctx.managed.values()].map((m) => ({
        key: m.key,
        type: m.type,
        to: m.to,
        rolloutId: m.verified?.descriptor.rolloutId,
        state: m.state,
        ...(m.actor.getSnapshot().context.note ? { note: m.actor.getSnapshot().context.note } : {}),
        ...(m.actor.getSnapshot().context.error ? { error: m.actor.getSnapshot().context.error } : {}),
      }));
    },
    stopAll() {
      for (const m of ctx.managed.values()) {
        m.subscription.unsubscribe();
        m.actor.stop();
      }
    },
  };
}
