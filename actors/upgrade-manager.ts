/**
 * The upgrade manager's lifecycle of one upgrade on one node, as an xstate
 * machine: one actor per descriptor the node has to go through.
 *
 * ```
 * verifying ─▶ loading ─▶ waiting ─▶ scheduling ─▶ upgrading ─▶ upgraded
 *     │           │          │  │        │    │          │
 *     ▼           ▼          │  └─▶ held ◀────┘          ▼
 *  rejected     failed       ▼     (paused when the      failed
 *                         aborted   SF decided)
 * ```
 *
 * - **verifying**: signature by a trusted key, bundle downloaded and its digest
 *   checked, bundle imported, the version and the scheduling function found.
 *   Any failure: **rejected** (nothing was imported unless both checks passed).
 * - **loading**: the new version is made known to the node; its future SO
 *   serves callers of the new version from now on.
 * - **waiting**: until the node runs the upgrade's `from` version (an earlier
 *   upgrade of the same type may still be pending).
 * - **scheduling**: the scheduling function (SF) runs as a child actor and is
 *   fed UDB changes, ticks, load and operator control. When its rollout is
 *   already `done` elsewhere (this node was down or late), the SF is skipped:
 *   the node catches up at once.
 * - **held**: the SF said "upgrade" while the rollout is paused: wait for resume.
 * - **upgrading**: the in-place upgrade of the type on this node.
 *
 * Operator `abort` ends any non-final state in **aborted** (an upgrade already
 * running completes: it is never cut in half). `molt rollback` reaches the
 * lifecycle as an abort too (the runtime then takes the node back: see
 * runtime/manager/rollback.ts). `pause` is enforced here as well as by the
 * SF, so a custom SF that ignores it cannot upgrade a paused rollout.
 *
 * The machine does no I/O itself: verification, loading, the SF and the
 * upgrade are actors provided by the runtime (runtime/manager), so the
 * lifecycle is tested with plain stubs.
 *
 * @module
 */
import { and, assign, fromCallback, fromPromise, sendTo, setup, type ActorRefFrom } from 'xstate';
import type { ScheduleDecision, ScheduleEvent } from './schedules/contract.ts';
import type { UpgradeResult } from '../runtime/node/index.ts';

/** The parts of a verified descriptor the lifecycle uses. */
export interface LifecycleDescriptor {
  type: string;
  from: number;
  to: number;
  rolloutId: string;
  schedule: { name: string; params: Record<string, unknown> };
}

/** What the lifecycle starts with. */
export interface UpgradeLifecycleInput {
  /** The descriptor's KV key, `upgrade.<type>.<to>`. */
  key: string;
  /** The node's native version of the type now. */
  current: number;
  /** The rollout's control state when the lifecycle starts. */
  paused: boolean;
  aborted: boolean;
  /** True if the rollout is already done across the service: catch up without the SF. */
  rolloutDone: boolean;
}

/** Result of verification: the descriptor, and whatever the runtime needs later (the loaded version, the SF). */
export interface VerifiedUpgrade {
  descriptor: LifecycleDescriptor;
  /** The rollout's state in the UDB when verification ended, so the first decision is made knowing it (`by`: who paused or aborted it). */
  rollout?: { done: boolean; paused: boolean; aborted: boolean; reason?: string; by?: string };
}

/** Events the runtime sends the lifecycle. */
export type UpgradeLifecycleEvent =
  /** The node's native version of this type changed. */
  | { type: 'node.current'; version: number }
  /** The rollout's control record changed (also forwarded to the SF); `by` is who gave the command. */
  | { type: 'control'; command: 'pause' | 'resume' | 'abort'; reason?: string; by?: string }
  /**
   * The upgrade's code was replaced (a fix): a running SF starts again, so that
   * what it measured of the old code (a canary's soak) does not count for the new.
   */
  | { type: 'code.changed' }
  /** The rollout is now recorded `done`. */
  | { type: 'rollout.done' }
  /** An event for the SF (UDB nodes, tick, load, versions). */
  | { type: 'schedule.feed'; event: ScheduleEvent }
  /** From the SF runner: what the SF says it is doing. */
  | { type: 'schedule.note'; note: string }
  /** From the SF runner: the SF decided. */
  | { type: 'schedule.decided'; decision: ScheduleDecision }
  /** From the SF runner: the SF crashed or ended without a valid decision. */
  | { type: 'schedule.failed'; error: string };

/** How the upgrade ended on this node. */
export type UpgradeLifecycleOutput =
  | { outcome: 'upgraded'; transformed: number; failed: number }
  | { outcome: 'rejected'; error: string }
  | { outcome: 'failed'; error: string }
  | { outcome: 'aborted'; reason: string };

interface LifecycleContext extends UpgradeLifecycleInput {
  verified?: VerifiedUpgrade;
  /** Who paused the rollout and why, while paused. */
  pausedBy?: string;
  pauseReason?: string;
  outcome?: UpgradeLifecycleOutput;
  note?: string;
  error?: string;
  reason?: string;
  result?: UpgradeResult;
}

function message(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

/** Input of the SF runner actor the runtime provides. */
export interface ScheduleRunnerInput {
  verified: VerifiedUpgrade;
  paused: boolean;
  pausedBy?: string;
  pauseReason?: string;
}

/**
 * The lifecycle machine. The runtime provides `verify`, `load`, `runSchedule`
 * and `upgrade` with `upgradeLifecycle.provide({ actors: { … } })`.
 */
export const upgradeLifecycle = setup({
  types: {
    input: {} as UpgradeLifecycleInput,
    context: {} as LifecycleContext,
    events: {} as UpgradeLifecycleEvent,
    output: {} as UpgradeLifecycleOutput,
  },
  actors: {
    verify: fromPromise<VerifiedUpgrade, { key: string }>(async () => {
      throw new Error('verify is provided by the runtime');
    }),
    load: fromPromise<void, { verified: VerifiedUpgrade }>(async () => {
      throw new Error('load is provided by the runtime');
    }),
    runSchedule: fromCallback<ScheduleEvent, ScheduleRunnerInput>(() => {
      throw new Error('runSchedule is provided by the runtime');
    }),
    upgrade: fromPromise<UpgradeResult, { verified: VerifiedUpgrade }>(async () => {
      throw new Error('upgrade is provided by the runtime');
    }),
  },
  guards: {
    aborted: ({ context }) => context.aborted,
    alreadyThere: ({ context }) => context.verified !== undefined && context.current >= context.verified.descriptor.to,
    /** The node runs the upgrade's `from` version: earlier upgrades of the type are done. */
    ready: ({ context }) => context.verified !== undefined && context.current === context.verified.descriptor.from,
    rolloutDone: ({ context }) => context.rolloutDone,
    paused: ({ context }) => context.paused,
  },
  actions: {
    applyControl: assign(({ event }) => {
      if (event.type !== 'control') return {};
      if (event.command === 'abort') return { aborted: true, reason: event.reason ?? `aborted by ${event.by ?? 'the operator'}` };
      if (event.command === 'resume') return { paused: false, pausedBy: undefined, pauseReason: undefined };
      return { paused: true, pausedBy: event.by, pauseReason: event.reason };
    }),
  },
}).createMachine({
  id: 'upgrade',
  context: ({ input }) => ({ ...input }),
  initial: 'verifying',
  on: {
    'node.current': { actions: assign({ current: ({ event }) => event.version }) },
    control: { actions: 'applyControl' },
    'rollout.done': { actions: assign({ rolloutDone: true }) },
  },
  states: {
    verifying: {
      invoke: {
        src: 'verify',
        input: ({ context }) => ({ key: context.key }),
        onDone: {
          target: 'loading',
          actions: assign(({ context, event }) => {
            const r = event.output.rollout;
            return {
              verified: event.output,
              rolloutDone: context.rolloutDone || (r?.done ?? false),
              paused: r ? r.paused : context.paused,
              ...(r?.paused ? { pausedBy: r.by, pauseReason: r.reason } : {}),
              aborted: context.aborted || (r?.aborted ?? false),
              ...(r?.aborted ? { reason: r.reason ?? 'the rollout was aborted' } : {}),
            };
          }),
        },
        onError: { target: 'rejected', actions: assign({ error: ({ event }) => message(event.error) }) },
      },
    },
    loading: {
      invoke: {
        src: 'load',
        input: ({ context }) => ({ verified: context.verified! }),
        onDone: 'waiting',
        onError: { target: 'failed', actions: assign({ error: ({ event }) => `loading failed: ${message(event.error)}` }) },
      },
    },
    waiting: {
      always: [
        { guard: 'aborted', target: 'aborted' },
        { guard: 'alreadyThere', target: 'upgraded' },
        // Catching up (the rollout finished without this node): no SF, but pause still holds.
        { guard: and(['ready', 'rolloutDone', 'paused']), target: 'held' },
        { guard: and(['ready', 'rolloutDone']), target: 'upgrading', actions: assign({ note: 'the rollout finished without this node: catching up' }) },
        { guard: 'ready', target: 'scheduling' },
      ],
    },
    scheduling: {
      invoke: {
        id: 'schedule',
        src: 'runSchedule',
        input: ({ context }) => ({
          verified: context.verified!,
          paused: context.paused,
          ...(context.paused && context.pausedBy ? { pausedBy: context.pausedBy } : {}),
          ...(context.paused && context.pauseReason ? { pauseReason: context.pauseReason } : {}),
        }),
        // The runner reports an SF's crash as `schedule.failed`; should the runner itself throw, the same.
        onError: { target: 'failed', actions: assign({ error: ({ event }) => `the scheduling function failed: ${message(event.error)}` }) },
      },
      always: [{ guard: 'aborted', target: 'aborted' }],
      on: {
        'schedule.feed': { actions: sendTo('schedule', ({ event }) => event.event) },
        control: {
          actions: [
            'applyControl',
            sendTo('schedule', ({ event }) => ({ type: 'control' as const, command: event.command, ...(event.reason ? { reason: event.reason } : {}), ...(event.by ? { by: event.by } : {}) })),
          ],
        },
        // A fix: the SF starts again on the new code (its soak and counters start over).
        'code.changed': { target: 'scheduling', reenter: true },
        'rollout.done': [
          { guard: 'paused', actions: assign({ rolloutDone: true }) },
          { target: 'upgrading', actions: assign({ rolloutDone: true, note: 'the rollout finished elsewhere: catching up' }) },
        ],
        'schedule.note': { actions: assign({ note: ({ event }) => event.note }) },
        'schedule.decided': [
          {
            guard: ({ event }) => event.decision.decision === 'abort',
            target: 'aborted',
            actions: assign({ reason: ({ event }) => (event.decision.decision === 'abort' ? event.decision.reason : '') }),
          },
          { guard: 'paused', target: 'held' },
          { target: 'upgrading' },
        ],
        'schedule.failed': { target: 'failed', actions: assign({ error: ({ event }) => `the scheduling function failed: ${event.error}` }) },
      },
    },
    held: {
      entry: assign({ note: ({ context }) => `paused by ${context.pausedBy ?? 'the operator'}${context.pauseReason ? `: ${context.pauseReason}` : ''}; upgrades on resume` }),
      always: [
        { guard: 'aborted', target: 'aborted' },
        { guard: ({ context }) => !context.paused, target: 'upgrading' },
      ],
    },
    upgrading: {
      // Control still updates the context, but an upgrade in progress completes.
      invoke: {
        src: 'upgrade',
        input: ({ context }) => ({ verified: context.verified! }),
        onDone: { target: 'upgraded', actions: assign({ result: ({ event }) => event.output }) },
        onError: { target: 'failed', actions: assign({ error: ({ event }) => message(event.error) }) },
      },
    },
    upgraded: {
      type: 'final',
      entry: assign({ outcome: ({ context }) => ({ outcome: 'upgraded' as const, ...(context.result ?? { transformed: 0, failed: 0 }) }) }),
    },
    rejected: { type: 'final', entry: assign({ outcome: ({ context }) => ({ outcome: 'rejected' as const, error: context.error ?? 'rejected' }) }) },
    failed: { type: 'final', entry: assign({ outcome: ({ context }) => ({ outcome: 'failed' as const, error: context.error ?? 'failed' }) }) },
    aborted: {
      type: 'final',
      entry: assign(({ context }) => {
        const reason = context.reason ?? 'aborted by the operator';
        return { reason, outcome: { outcome: 'aborted' as const, reason } };
      }),
    },
  },
  output: ({ context }) => context.outcome!,
});

/** A running lifecycle. */
export type UpgradeLifecycleRef = ActorRefFrom<typeof upgradeLifecycle>;

/** The lifecycle's state names, which are also the progress steps recorded in the UDB. */
export type UpgradeLifecycleState = 'verifying' | 'loading' | 'waiting' | 'scheduling' | 'held' | 'upgrading' | 'upgraded' | 'rejected' | 'failed' | 'aborted';
