/**
 * Performing the node's upgrades: the in-place upgrade of a type when its
 * lifecycle gets there (one restart at a time, through the restart queue),
 * what follows it (lifecycles of the type learn the new version, retirements
 * and rollbacks that waited for it apply, the rollout is counted again), and
 * the transform-failure halt: when this node sees new transform failures of a
 * version it upgraded to — at the upgrade or later, when an actor is carried
 * on its next call — it reports them and pauses the rollout.
 *
 * Why here and not in the SF: a transform failure halts the rollout whatever
 * its scheduling function says (a custom SF may have no health gate); the
 * rollout halts rather than loses data.
 *
 * @module
 */
import { ErrorCode } from '../errors.ts';
import type { UpgradeDescriptor } from '../server/descriptor.ts';
import { rollbackStates } from '../udb/index.ts';
import type { UpgradeResult } from '../node/index.ts';
import type { ManagerContext } from './context.ts';
import type { Recorder } from './recording.ts';
import type { Managed, Verified } from './model.ts';

export interface Upgrades {
  /** The lifecycle's `upgrade` actor: upgrades the type in place (queued behind other restarts). */
  upgradeNode(verified: Verified): Promise<UpgradeResult>;
  /** Halts (or reports) on transform failures not acted on yet. */
  checkTransformFailures(): void;
  /** After an upgrade of `type`: tell its lifecycles, apply what waited for it. */
  afterUpgrade(type: string): void;
  /** A fix of the upgrade under `key` was loaded: its failures so far no longer count. */
  fixed(key: string): void;
}

export interface UpgradesDeps {
  recorder: Recorder;
  applyRetirements(): void;
  runRollbacks(): void;
  refreshRollouts(): Promise<void>;
}

export function createUpgrades(ctx: ManagerContext, deps: UpgradesDeps): Upgrades {
  const { node, udb, clock } = ctx;
  const { recorder } = deps;
  /** Transform failures already acted on, per descriptor key. */
  const failuresHalted = new Map<string, number>();

  function haltOnTransformFailures(m: Managed, d: UpgradeDescriptor, failed: number): void {
    const reason = `${failed} transform failure(s) of ${d.type} ${d.from}→${d.to} on node ${node.id}: fix the TF (\`molt publish <module> --fix --version ${d.type}=${d.to}\`), then \`molt resume ${d.rolloutId}\``;
    recorder.reportProblem(m, ErrorCode.TransformFailed, reason);
    // Under this node's own key (udb/halts.ts): a node may halt a rollout, not command it.
    recorder.write(`control:${d.rolloutId}`, () => udb.putHalt(node.id, d.rolloutId, reason, clock.now()));
    recorder.write(`rollout:${d.rolloutId}`, async () => {
      await udb.updateRollout(d.rolloutId, (r) => (r.state === 'running' ? { ...r, state: 'paused', reason, by: `node ${node.id}`, updatedAt: clock.now() } : undefined));
    });
  }

  return {
    upgradeNode(verified) {
      const d = verified.descriptor;
      return ctx.restarts.run(async () => {
        // Another lifecycle may have been faster (e.g. a duplicate descriptor revision).
        if ((ctx.types()[d.type]?.current ?? 0) >= d.to) return { transformed: 0, failed: 0 };
        return await node.upgrade(d.type, d.to);
      });
    },

    /**
     * Halts a rollout when this node sees new transform failures of its version
     * — at the upgrade (resident actors) or later (actors carried when next
     * loaded). A resume accepts the failures seen so far; a fix clears them.
     */
    checkTransformFailures() {
      const status = ctx.types();
      for (const m of ctx.managed.values()) {
        const d = m.verified?.descriptor;
        if (!d || m.state !== 'upgraded') continue;
        const count = (status[m.type]?.transformFailures ?? []).filter((f) => f.to === m.to).length;
        const before = failuresHalted.get(m.key) ?? 0;
        if (count === before) continue;
        failuresHalted.set(m.key, count);
        if (count < before) {
          // Every failing actor was carried after all: what was reported of them is over.
          if (count === 0) recorder.problemOver(m, true);
          continue;
        }
        const state = ctx.rollouts.get(d.rolloutId)?.state;
        if (state !== undefined && rollbackStates.has(state)) continue;
        if (state === 'done' || state === 'aborted') {
          recorder.reportProblem(m, ErrorCode.TransformFailed, `${count} actor(s) of ${d.type} failed their transform to ${d.to} on ${node.id}; their state is untouched. Publish a fix: molt publish <module> --fix --version ${d.type}=${d.to}`);
          continue;
        }
        haltOnTransformFailures(m, d, count);
      }
    },

    afterUpgrade(type) {
      const status = ctx.types()[type];
      const current = status?.current ?? 0;
      for (const m of ctx.managed.values()) if (m.type === type) m.actor.send({ type: 'node.current', version: current });
      // Reports of earlier upgrades of the type whose transform failures are all gone are history now.
      for (const m of ctx.managed.values()) {
        if (m.type === type && m.to < current && m.state === 'upgraded' && !(status?.transformFailures ?? []).some((f) => f.to === m.to)) recorder.problemOver(m, true);
      }
      deps.applyRetirements();
      // A rollback may have come while this upgrade ran: it applies now.
      queueMicrotask(deps.runRollbacks);
      // The node record changed: count the rollout again.
      queueMicrotask(() => void deps.refreshRollouts());
    },

    fixed(key) {
      failuresHalted.delete(key);
    },
  };
}
