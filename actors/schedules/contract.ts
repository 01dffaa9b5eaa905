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
 * @module
 */

/** One node as the SF sees it, from the upgrade database. */
export interface ScheduleNodeView {
  id: string;
  /** Native version of the type being upgraded on that node. */
  version: number;
  status: 'running' | 'upgrading' | 'failed' | 'stopped';
  /** Whether its heartbeat is current. */
  live: boolean;
  /** Cumulative counters reported by the node (for health gating). */
  stats?: { calls?: number; failed?: number; disallowed?: number; transformFailures?: number };
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
}

/** Events an SF receives. */
export type ScheduleEvent =
  /** The whole node set for this service changed (or was re-read). */
  | { type: 'udb.nodes'; nodes: ScheduleNodeView[] }
  /** A clock tick (about once a second in production; whenever the test says in tests). */
  | { type: 'tick'; now: number }
  /** Local load: calls per second being served by this node, and how long it has been idle. */
  | { type: 'load'; callsPerSecond: number; idleForMs: number }
  /** The state of another type or service, for `after` dependencies. */
  | { type: 'udb.versions'; service: string; type_: string; minVersion: number }
  /** Operator control of the rollout. */
  | { type: 'control'; command: 'pause' | 'resume' | 'abort' };

/** The output of an SF's final state. */
export type ScheduleDecision =
  | { decision: 'upgrade' }
  | { decision: 'abort'; reason: string };

/** Names of the built-in schedules (descriptor field `schedule.name`). */
export type BuiltInScheduleName = 'immediate' | 'rolling' | 'canary' | 'whenIdle' | 'window' | 'after';
