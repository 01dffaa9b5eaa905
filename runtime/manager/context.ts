/**
 * What the parts of one upgrade manager share: the node and its UDB, the
 * injected clock and logger, the settings, and the manager's picture of the
 * world — descriptors, the lifecycles it runs, and the UDB's node, rollout,
 * control and retirement records as last read. Also the one queue through
 * which every in-place restart of a type on this node (upgrade or rollback)
 * passes.
 *
 * Why one context object: the watch fills these maps and every other part
 * reads them; passing one object per manager keeps the state in one visible
 * place and out of module scope (two managers in a process share nothing).
 *
 * @module
 */
import type { MoltNode, TypeStatus } from '../node/index.ts';
import { nodeInternals, type NodeInternals } from '../node/internals.ts';
import type { Clock, Logger } from '../env.ts';
import type { StoredDescriptor, UpgradeStore } from '../server/store.ts';
import type { ControlRecord, RetireRecord, RolloutRecord, Udb } from '../udb/index.ts';
import type { ScheduleMachine, ScheduleNodeView } from '../../actors/schedules/contract.ts';
import type { Managed, NodeView } from './model.ts';
import { labelsOf } from '../node/labels.ts';

/** The manager's settings, defaults applied. */
export interface ManagerConfig {
  readonly trustedKeys: readonly string[];
  readonly reconcileMs: number;
  readonly tickMs: number;
  readonly leaseMs: number;
  readonly maxBundleBytes: number;
  readonly findSchedule: (name: string, params: Record<string, unknown>, custom: Readonly<Record<string, unknown>>) => ScheduleMachine;
}

/**
 * Runs in-place restarts of types (upgrades and rollbacks) one at a time:
 * the node's status is one field, and a type is never restarted twice at once.
 */
export class RestartQueue {
  /** Restarts running now (the node reports `upgrading` while one is). */
  active = 0;
  private chain: Promise<unknown> = Promise.resolve();

  run<T>(fn: () => Promise<T>): Promise<T> {
    const run = async () => {
      this.active++;
      try {
        return await fn();
      } finally {
        this.active--;
      }
    };
    const p = this.chain.then(run, run);
    this.chain = p.catch(() => undefined);
    return p;
  }

  /** Settles once every restart queued so far has. */
  settled(): Promise<unknown> {
    return this.chain;
  }
}

/** The state one manager's parts share. */
export interface ManagerContext {
  readonly node: MoltNode;
  /** The node's upgrade verbs (rollback, status, its UDB bucket). */
  readonly internals: NodeInternals;
  readonly udb: Udb;
  readonly clock: Clock;
  readonly logger: Logger;
  readonly config: ManagerConfig;
  /** The upgrades bucket, once reachable. */
  store: UpgradeStore | undefined;
  stopped: boolean;
  /** Descriptors as last read, by key (`upgrade.<type>.<to>`), unverified. */
  readonly descriptors: Map<string, StoredDescriptor>;
  /** The lifecycles this manager runs, by descriptor key. */
  readonly managed: Map<string, Managed>;
  /** UDB records as last seen. */
  readonly nodes: Map<string, NodeView>;
  readonly controls: Map<string, ControlRecord>;
  readonly rollouts: Map<string, RolloutRecord>;
  readonly retired: Map<string, RetireRecord>;
  readonly restarts: RestartQueue;
  /** The node's types now: versions, known versions, failures. */
  types(): Record<string, TypeStatus>;
}

export function createContext(node: MoltNode, udb: Udb, clock: Clock, logger: Logger, config: ManagerConfig): ManagerContext {
  return {
    node,
    internals: nodeInternals(node),
    udb,
    clock,
    logger,
    config,
    store: undefined,
    stopped: false,
    descriptors: new Map(),
    managed: new Map(),
    nodes: new Map(),
    controls: new Map(),
    rollouts: new Map(),
    retired: new Map(),
    restarts: new RestartQueue(),
    types: () => node.status().types,
  };
}

/**
 * The nodes hosting `type` as the UDB shows them, sorted by id: version,
 * status, liveness (record changed within the lease, by this manager's clock)
 * and the type's counters. What scheduling functions and rollout counts see.
 */
export function nodeViews(ctx: ManagerContext, type: string): ScheduleNodeView[] {
  const now = ctx.clock.now();
  const out: ScheduleNodeView[] = [];
  for (const [id, v] of ctx.nodes) {
    const version = v.record.versions[type];
    if (typeof version !== 'number') continue;
    const live = isLive(ctx, id, v, now);
    const s = v.record.typeStats?.[type] ?? v.record.stats;
    const labels = labelsOf(v.record.labels);
    out.push({
      id,
      version,
      status: v.record.status,
      live,
      ...(s ? { stats: { calls: s.calls, failed: s.failed, disallowed: s.disallowed, transformFailures: s.transformFailures } } : {}),
      ...(labels ? { labels } : {}),
    });
  }
  return out.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
}

/** Live: not stopped, and this node or a record changed within the lease (by this manager's clock). */
function isLive(ctx: ManagerContext, id: string, v: NodeView, now: number): boolean {
  return v.record.status !== 'stopped' && (id === ctx.node.id || now - v.lastSeen <= ctx.config.leaseMs);
}

/**
 * The lowest id among the live nodes hosting `type` (as {@link nodeViews}
 * shows them, without building them): the node whose manager counts that
 * type's rollouts (manager/rollouts.ts).
 */
export function counterOf(ctx: ManagerContext, type: string): string | undefined {
  const now = ctx.clock.now();
  let lowest: string | undefined;
  for (const [id, v] of ctx.nodes) {
    if (typeof v.record.versions[type] !== 'number' || !isLive(ctx, id, v, now)) continue;
    if (lowest === undefined || id < lowest) lowest = id;
  }
  return lowest;
}
