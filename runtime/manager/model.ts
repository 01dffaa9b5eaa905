/**
 * The upgrade manager's vocabulary: its public options and results, and what
 * it keeps about each upgrade it manages. Every other module of the manager
 * speaks in these terms; they live here, apart from any behaviour, so that no
 * module has to import another just for a type.
 *
 * @module
 */
import type { Subscription } from 'xstate';
import type { Clock, Logger } from '../env.ts';
import type { AnyActorVersion } from '../define/version.ts';
import type { UpgradeDescriptor } from '../server/descriptor.ts';
import type { NodeRecord, ProgressStep } from '../udb/index.ts';
import type { UpgradeLifecycleRef, UpgradeLifecycleState, VerifiedUpgrade } from '../../actors/upgrade-manager.ts';
import type { ScheduleMachine } from '../../actors/schedules/contract.ts';

/** Options of {@link startUpgradeManager}. */
export interface UpgradeManagerOptions {
  /** Publisher public keys whose upgrades this node accepts (`U…`/`A…`, from `molt keys generate`). */
  trustedKeys: readonly string[];
  /**
   * Period of reconciliation, in ms (default 5000): ended watches restarted
   * with a full re-read of descriptors and UDB, failed upgrades retried,
   * rollouts recounted. With every watch running, the full re-read runs every
   * 12th period (the watches deliver every change meanwhile).
   */
  reconcileMs?: number;
  /** Period of `tick` and `load` events to scheduling functions, in ms (default 1000). */
  tickMs?: number;
  /** A node whose record has not changed for this long is not live (default 5000; use the nodes' lease). */
  leaseMs?: number;
  /**
   * The largest upgrade bundle this node downloads, in bytes (default
   * 16 MiB, 16777216). A larger one is refused and
   * reported (`bundle-too-large`) from its signed size, or from the size the
   * Object Store records, before it is downloaded; a download that brings
   * more is cut off.
   */
  maxBundleBytes?: number;
  /**
   * Finds the SF machine of a descriptor's schedule (default: the built-ins of
   * actors/schedules and the bundle's `schedules` export).
   */
  resolveSchedule?: (name: string, params: Record<string, unknown>, custom: Readonly<Record<string, unknown>>) => ScheduleMachine;
  clock?: Clock;
  logger?: Logger;
}

/** Default of `UpgradeManagerOptions.maxBundleBytes`: 16 MiB (bundles are usually well under 1 MiB). */
export const DEFAULT_MAX_BUNDLE_BYTES = 16 * 1024 * 1024;

/** One upgrade as this node's manager sees it. */
export interface ManagedUpgrade {
  key: string;
  type: string;
  to: number;
  rolloutId: string | undefined;
  state: UpgradeLifecycleState;
  note?: string;
  error?: string;
}

/** A running upgrade manager. */
export interface UpgradeManager {
  /** The upgrades this node is going through or went through since start. */
  upgrades(): ManagedUpgrade[];
  /** Reads descriptors and the UDB again and acts on them (also runs by itself). */
  reconcile(): Promise<void>;
  /** Stops the manager (not the node). An upgrade in progress completes first. */
  stop(): Promise<void>;
}

/** What verification hands to the later steps. */
export interface Verified extends VerifiedUpgrade {
  descriptor: UpgradeDescriptor;
  /** The version to load, unless the node already knows it. */
  def: AnyActorVersion | undefined;
  /** The bundle's definition even when the node knows the version (what a fix loads). */
  fixDef: AnyActorVersion | undefined;
  schedule: ScheduleMachine;
  /** The `at` of the control record the rollout flags were read from, if there was one. */
  controlAt?: number;
}

/** One upgrade (one descriptor key) under management: its lifecycle actor and what was recorded of it. */
export interface Managed {
  key: string;
  type: string;
  to: number;
  revision: number;
  actor: UpgradeLifecycleRef;
  subscription: Subscription;
  state: UpgradeLifecycleState;
  verified?: Verified;
  steps: Array<{ step: ProgressStep; at: number }>;
  /** Failed or rejected for a reason that may pass (NATS trouble): try again at the next reconciliation. */
  retry: boolean;
  /**
   * Failed because its scheduling function crashed: running it again would
   * crash again, so it is retried only once its rollout's control or state
   * changes (an abort, a resume, the rollout done elsewhere), or a new
   * revision of its descriptor (a fix) replaces it.
   */
  retryOnControl?: boolean;
  lastControlAt?: number;
  doneSent?: boolean;
  lastNote?: string;
  /** The descriptor revision of a fix being applied. */
  fixing?: number;
}

/** A node record as last seen, and when (by this manager's clock). */
export interface NodeView {
  record: NodeRecord;
  revision: number;
  lastSeen: number;
}

/** The progress step recorded for each lifecycle state (none while verifying: nothing can be trusted yet). */
export const stepOf: Record<UpgradeLifecycleState, ProgressStep | undefined> = {
  verifying: undefined,
  loading: 'verified',
  waiting: 'loaded',
  scheduling: 'scheduling',
  held: 'held',
  upgrading: 'upgrading',
  upgraded: 'upgraded',
  rejected: 'rejected',
  failed: 'failed',
  aborted: 'aborted',
};

export const finalStates: ReadonlySet<UpgradeLifecycleState> = new Set(['upgraded', 'rejected', 'failed', 'aborted']);

export function errorText(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}
