/**
 * The upgrade manager of one node: learns of published upgrades, verifies and
 * loads them, runs their scheduling functions, upgrades the node when they
 * say so, carries out operator control (pause, resume, abort, retire,
 * rollback), and records every step in the upgrade database (UDB).
 *
 * This module only starts and stops it and wires its parts together; each
 * part owns one concern (see its header):
 *
 * | module | owns |
 * |---|---|
 * | `watch.ts` | learning: descriptor and UDB watches, reconciliation at start, on reconnect and periodically |
 * | `verify.ts` | the trust boundary: signature, bundle digest, import, chain checks; loading a version |
 * | `lifecycles.ts` | one lifecycle actor (actors/upgrade-manager.ts) per descriptor, in chain order; fixes; retries |
 * | `schedules.ts` | driving the scheduling functions: their actors and their events (UDB nodes, versions, ticks, load) |
 * | `upgrades.ts` | performing upgrades (one restart at a time) and the transform-failure halt |
 * | `control.ts` | operator control reaching lifecycles; retirements |
 * | `rollback.ts` | taking the node back when a rollout is rolled back |
 * | `rollouts.ts` | counting rollouts and recording their end (`done`, `rolled-back`) |
 * | `expectations.ts` | telling the node which newer versions may still arrive (retryable `VersionUnsupported` or not) |
 * | `recording.ts` | writing progress, reports and status to the UDB, in order per key |
 * | `context.ts`, `model.ts` | the state the parts share, and their vocabulary |
 *
 * Per type, upgrades are taken strictly in chain order: the lifecycle of
 * `to = n + 1` starts only once version n is known on the node, and its
 * scheduling function only once the node runs n.
 *
 * @module
 */
import type { MoltNode } from '../node/index.ts';
import { nodeInternals } from '../node/internals.ts';
import { createJsonLogger, systemClock, type TimerHandle } from '../env.ts';
import { rejected } from '../server/descriptor.ts';
import { checkTrustedKeys } from '../server/keys.ts';
import { Udb } from '../udb/index.ts';
import { resolveSchedule } from '../../actors/schedules/index.ts';
import type { ScheduleMachine } from '../../actors/schedules/contract.ts';
import { createContext } from './context.ts';
import { createRecorder } from './recording.ts';
import { createVerifier } from './verify.ts';
import { createScheduleDriver } from './schedules.ts';
import { createRolloutAccounting } from './rollouts.ts';
import { createRollbacks } from './rollback.ts';
import { createOperatorControl } from './control.ts';
import { createUpgrades } from './upgrades.ts';
import { createLifecycles } from './lifecycles.ts';
import { createWatch } from './watch.ts';
import { createUpgradeExpectations } from './expectations.ts';
import { DEFAULT_MAX_BUNDLE_BYTES, errorText, type UpgradeManager, type UpgradeManagerOptions } from './model.ts';

export type { ManagedUpgrade, UpgradeManager, UpgradeManagerOptions } from './model.ts';

function defaultResolve(name: string, params: Record<string, unknown>, custom: Readonly<Record<string, unknown>>): ScheduleMachine {
  try {
    return resolveSchedule(name, params, { custom });
  } catch (e) {
    throw rejected('schedule-unknown', errorText(e));
  }
}

/**
 * Starts the upgrade manager of a node. Resolves after the first
 * reconciliation (so upgrades already published are under way).
 *
 * @example
 * ```ts
 * const node = await createNode({ service, nats });
 * const manager = await startUpgradeManager(node, { trustedKeys: ['UCX…'] });
 * ```
 */
export async function startUpgradeManager(node: MoltNode, options: UpgradeManagerOptions): Promise<UpgradeManager> {
  const trustedKeys = checkTrustedKeys(options.trustedKeys);
  const clock = options.clock ?? systemClock;
  const logger = (options.logger ?? createJsonLogger()).child({ node: node.id, service: node.service, component: 'upgrade-manager' });
  const reconcileMs = options.reconcileMs ?? 5000;
  const tickMs = options.tickMs ?? 1000;
  const ctx = createContext(node, new Udb(nodeInternals(node).udb, node.service), clock, logger, {
    trustedKeys,
    reconcileMs,
    tickMs,
    leaseMs: options.leaseMs ?? 5000,
    maxBundleBytes: options.maxBundleBytes ?? DEFAULT_MAX_BUNDLE_BYTES,
    findSchedule: options.resolveSchedule ?? defaultResolve,
  });
  if (trustedKeys.length === 0) logger.warn('no trusted publisher keys: every upgrade will be refused (pass --trust <public key>)');

  // The parts, wired: each gets only what it calls of the others.
  const recorder = createRecorder(ctx);
  const verifier = createVerifier(ctx);
  const schedules = createScheduleDriver(ctx, recorder);
  const rollouts = createRolloutAccounting(ctx);
  const rollbacks = createRollbacks(ctx, { recorder, refreshRollouts: rollouts.refresh });
  const control = createOperatorControl(ctx, { runRollbacks: rollbacks.run, recorder });
  const upgrades = createUpgrades(ctx, { recorder, applyRetirements: control.applyRetirements, runRollbacks: rollbacks.run, refreshRollouts: rollouts.refresh });
  const lifecycles = createLifecycles(ctx, { recorder, verifier, schedules, upgrades, syncRollout: control.syncRollout, runRollbacks: rollbacks.run });
  const expectations = createUpgradeExpectations(ctx);
  const watch = createWatch(ctx, {
    descriptorsChanged: lifecycles.pump,
    nodesChanged: schedules.scheduleNodesFlush,
    recount: () => void rollouts.refresh(),
    control: control.onControl,
    rollout: control.onRollout,
    retired: control.applyRetirements,
    descriptorsRead: expectations.descriptorsRead,
    async reconciled() {
      lifecycles.retryFailed();
      lifecycles.pump();
      rollbacks.retryFailed();
      rollbacks.run();
      await rollouts.refresh();
    },
  });

  // ---- timers ----------------------------------------------------------------

  const timers: TimerHandle[] = [];
  function tick(): void {
    if (ctx.stopped) return;
    const scheduling = schedules.feedClock();
    upgrades.checkTransformFailures();
    rollbacks.checkDownFailures();
    if (scheduling > 0) schedules.feedViews();
    timers[0] = clock.setTimeout(tick, tickMs);
  }

  function periodic(): void {
    if (ctx.stopped) return;
    void watch.periodic();
    timers[1] = clock.setTimeout(periodic, reconcileMs);
  }

  watch.followReconnects();
  await watch.reconcile();
  // The node closed its connection (it stopped): nothing left to manage.
  void node.connection.closed().then(() => manager.stop());
  timers[0] = clock.setTimeout(tick, tickMs);
  timers[1] = clock.setTimeout(periodic, reconcileMs);
  logger.info('upgrade manager started', { trustedKeys: trustedKeys.length, reconcileMs });

  const manager: UpgradeManager = {
    upgrades: lifecycles.list,
    reconcile: watch.reconcile,
    async stop() {
      if (ctx.stopped) return;
      ctx.stopped = true;
      for (const t of timers) if (t !== undefined) clock.clearTimeout(t);
      schedules.stop();
      rollouts.stop();
      watch.stop();
      expectations.stop();
      await ctx.restarts.settled();
      lifecycles.stopAll();
      await recorder.settled();
    },
  };
  return manager;
}
