/**
 * The contract between the upgrade manager and a scheduling function (SF).
 *
 * An SF is an xstate v5 machine, one actor per pending upgrade per node. The
 * upgrade manager starts it with a {@link ScheduleInput}, feeds it
 * {@link ScheduleEvent}s, and watches its snapshot: when the machine reaches a
 * final state, its output ({@link ScheduleDecision}) says whether this node
 * upgrades now or the rollout is abandoned on this node. Until then it waits.
 *
 * SFs must not do I/O: everything they know arrives as events, and time comes
 * from `tick` events (and `input.now`), so they run the same on a simulated
 * clock in tests. Delayed transitions (`after`) are avoided for the same reason.
 *
 * Besides the decision, an SF may tell the manager things on the side, as
 * xstate emitted events ({@link ScheduleEmitted}, read with `actor.on(type, fn)`),
 * and through state tags ({@link ScheduleTag}, read with `snapshot.hasTag(tag)`).
 * Both are optional for a custom SF; the built-ins provide them all.
 *
 * Manager checklist:
 * 1. `const actor = createActor(machine, { input })` where `input.paused` says
 *    whether the rollout is paused right now (an SF must not decide while paused,
 *    and `immediate` decides during `start()` otherwise).
 * 2. Attach `actor.on('schedule.watch', …)`, `actor.on('schedule.halted', …)`,
 *    `actor.on('schedule.status', …)` and an error observer BEFORE `start()`:
 *    `schedule.watch` is emitted while starting.
 * 3. `actor.start()`, then check `getSnapshot().status === 'done'` at once
 *    (an SF may decide synchronously) and on every later snapshot.
 * 4. Send `udb.nodes` on every change of the service's node records, `tick`
 *    about once a second, `load` when the node's load is sampled, `udb.versions`
 *    for each `(service, type_)` the SF asked for with `schedule.watch`, and
 *    `control` whenever the rollout's control record changes.
 *
 * Compatibility: fields and variants may be added; none are renamed or removed.
 *
 * @module
 */
import type { StateMachine } from 'xstate';

/** One node as the SF sees it, from the upgrade database. */
export interface ScheduleNodeView {
  id: string;
  /** Native version of the type being upgraded on that node. */
  version: number;
  status: 'running' | 'upgrading' | 'failed' | 'stopped';
  /** Whether its heartbeat is current. */
  live: boolean;
  /**
   * Cumulative counters reported by the node (for health gating), for the type
   * being upgraded, since the node process started. A counter that goes down
   * means the node restarted; SFs must treat that as a reset, not a negative rise.
   */
  stats?: { calls?: number; failed?: number; disallowed?: number; transformFailures?: number };
  /** The node's labels (`molt node --label zone=a`), when it has any. */
  labels?: Readonly<Record<string, string>>;
}

/** What an SF is started with. */
export interface ScheduleInput {
  /** This node's id. */
  nodeId: string;
  service: string;
  /** The actor type being upgraded. */
  type: string;
  from: number;
  to: number;
  /** The schedule's parameters from the upgrade descriptor (e.g. `{ batch: 1 }` for rolling). */
  params: Record<string, unknown>;
  /** Time when the SF starts (ms since epoch, from the manager's clock). */
  now: number;
  /** The rollout's id (one per published upgrade). */
  rolloutId: string;
  /**
   * True if the rollout is paused when the SF starts (the operator paused it
   * before this node started). The SF starts paused and decides nothing until
   * a `control: resume`. Default false.
   */
  paused?: boolean;
  /** Who paused the rollout (`user@host`, `node <id>` for a transform-failure halt), when `paused`. */
  pausedBy?: string;
  /** Why, when `paused` and a reason was given. */
  pauseReason?: string;
  /**
   * The node set as the manager knows it at start, if it has one; same meaning
   * as a `udb.nodes` event sent right after start.
   */
  nodes?: ScheduleNodeView[];
}

/** Events an SF receives. */
export type ScheduleEvent =
  /**
   * The whole node set for this service changed (or was re-read). Dead nodes (live: false) included.
   * Send a new array each time and never change one once sent: the built-ins
   * share per-list work (sorting, positions) between SFs by the array's identity.
   */
  | { type: 'udb.nodes'; nodes: ScheduleNodeView[] }
  /** A clock tick (about once a second in production; whenever the test says in tests). */
  | { type: 'tick'; now: number }
  /** Local load: calls per second being served by this node, and how long it has been idle. */
  | { type: 'load'; callsPerSecond: number; idleForMs: number }
  /**
   * The state of another type or service, for `after` dependencies: sent for
   * each `(service, type_)` an SF asked for with a `schedule.watch` emitted
   * event, at start and whenever those node records change.
   *
   * `minVersion` is the lowest native version of `type_` among the LIVE nodes
   * of `service` that host it (0 if none is live). `liveNodes`, when present,
   * is how many live nodes host it; an SF treats `liveNodes: 0` as "not reached".
   */
  | { type: 'udb.versions'; service: string; type_: string; minVersion: number; liveNodes?: number }
  /**
   * Operator control of the rollout. `reason` (optional) is carried into the
   * abort decision so `molt status` can show who aborted and why; `by` says
   * who gave the command (`user@host`, or `node <id>` when a node halted the
   * rollout on a transform failure).
   */
  | { type: 'control'; command: 'pause' | 'resume' | 'abort'; reason?: string; by?: string };

/** The output of an SF's final state. */
export type ScheduleDecision =
  | { decision: 'upgrade' }
  | { decision: 'abort'; reason: string };

/**
 * Events an SF may emit for the manager (xstate `emit`; listen with
 * `actor.on(type, handler)` attached before `start()`).
 */
export type ScheduleEmitted =
  /** "Send me `udb.versions` for this type of this service" (emitted while starting). */
  | { type: 'schedule.watch'; service: string; type_: string }
  /**
   * The health gate halted the rollout on this node: it decides nothing until
   * an operator `resume` (which accepts the errors seen so far) or `abort`.
   * The manager should record `reason` in the UDB (node's last error / rollout).
   */
  | { type: 'schedule.halted'; reason: string }
  /**
   * What the SF is doing now, for `molt status`: emitted whenever it changes.
   * `note` is one human line, e.g. "waiting for batch 0 (n1, n2) to reach v2".
   */
  | { type: 'schedule.status'; state: 'waiting' | 'paused' | 'halted'; note: string };

/** State tags an SF's states may carry (`snapshot.hasTag(ScheduleTag.halted)`). */
export const ScheduleTag = {
  /** Waiting for its condition; will decide on its own. */
  waiting: 'waiting',
  /** Held by the operator: decides nothing until resumed. */
  paused: 'paused',
  /** Held by the health gate: decides nothing until an operator resumes or aborts. */
  halted: 'halted',
} as const;
export type ScheduleTag = (typeof ScheduleTag)[keyof typeof ScheduleTag];

/** The `schedule` field of an upgrade descriptor: `{ "name": "rolling", "params": { "batch": 1 } }`. */
export interface ScheduleDescriptor {
  /** A built-in name ({@link BuiltInScheduleName}) or the name of a custom SF exported by the bundle. */
  name: string;
  params?: Record<string, unknown>;
}

/**
 * What the manager runs: an xstate v5 machine that takes {@link ScheduleInput},
 * accepts every {@link ScheduleEvent} and outputs a {@link ScheduleDecision}.
 * Built-ins and custom SFs alike (see `defineSchedule` in ./index.ts).
 */
export type ScheduleMachine = StateMachine<
  any, // context: the SF's own
  ScheduleEvent,
  any, // children
  any, // actors
  any, // actions
  any, // guards
  any, // delays
  any, // state value
  any, // tags
  ScheduleInput,
  ScheduleDecision,
  any, // emitted: ScheduleEmitted for the built-ins
  any, // state meta
  any // state schema
>;

/** Names of the built-in schedules (descriptor field `schedule.name`). */
export type BuiltInScheduleName = 'immediate' | 'rolling' | 'canary' | 'whenIdle' | 'window' | 'after' | 'zones' | 'groups' | 'ring';
