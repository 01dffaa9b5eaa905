/**
 * The upgrade manager of one node: learns of published upgrades, verifies and
 * loads them, runs their scheduling functions, upgrades the node when they
 * say so, and records every step in the upgrade database (UDB).
 *
 * How it learns: a KV watch on the descriptors (`upgrade.>`) for sub-second
 * reaction, plus a full read (reconciliation) at start, after every
 * reconnect and every `reconcileMs`, because a watch can skip values and ends
 * when its server goes away. The same holds for the UDB keys it follows
 * (`nodes.>`, `rollouts.>`, `control.>`, `retired.>`).
 *
 * Per type, upgrades are taken strictly in chain order: the lifecycle of
 * `to = n + 1` starts only once version n is known on the node, and its
 * scheduling function only once the node runs n. Each upgrade's lifecycle is
 * the xstate machine of actors/upgrade-manager.ts; this module provides its
 * I/O.
 *
 * @module
 */
import { createActor, fromCallback, fromPromise, type Subscription } from 'xstate';
import { Kvm, type KvEntry } from '@nats-io/kv';
import type { MoltNode } from '../node.ts';
import { ErrorCode, isMoltError, MoltError } from '../errors.ts';
import { createJsonLogger, systemClock, type Clock, type Logger, type TimerHandle } from '../env.ts';
import type { AnyActorVersion } from '../define/version.ts';
import { importBundle, sha256Hex, type LoadedBundle } from '../server/bundle.ts';
import { parseDescriptorKey, rejected, verifyDescriptor, type UpgradeDescriptor } from '../server/descriptor.ts';
import { openUpgradeStore, type StoredDescriptor, type UpgradeStore } from '../server/store.ts';
import { checkTrustedKeys } from '../server/keys.ts';
import {
  parseRecord,
  rollbackStates,
  Udb,
  UdbPrefix,
  udbPatterns,
  type ControlRecord,
  type NodeRecord,
  type ProgressRecord,
  type ProgressStep,
  type RetireRecord,
  type RolloutRecord,
} from '../udb/index.ts';
import {
  upgradeLifecycle,
  type ScheduleRunnerInput,
  type UpgradeLifecycleRef,
  type UpgradeLifecycleState,
  type VerifiedUpgrade,
} from '../../actors/upgrade-manager.ts';
import { resolveSchedule, scheduleStatusOf } from '../../actors/schedules/index.ts';
import type { ScheduleDecision, ScheduleEvent, ScheduleInput, ScheduleMachine, ScheduleNodeView } from '../../actors/schedules/contract.ts';

/** Options of {@link startUpgradeManager}. */
export interface UpgradeManagerOptions {
  /** Publisher public keys whose upgrades this node accepts (`U…`/`A…`, from `molt keys generate`). */
  trustedKeys: readonly string[];
  /** Full re-read of descriptors and UDB, in ms (default 5000). */
  reconcileMs?: number;
  /** Period of `tick` and `load` events to scheduling functions, in ms (default 1000). */
  tickMs?: number;
  /** A node whose record has not changed for this long is not live (default 5000; use the nodes' lease). */
  leaseMs?: number;
  /**
   * Finds the SF machine of a descriptor's schedule (default: the built-ins of
   * actors/schedules and the bundle's `schedules` export).
   */
  resolveSchedule?: (name: string, params: Record<string, unknown>, custom: Readonly<Record<string, unknown>>) => ScheduleMachine;
  clock?: Clock;
  logger?: Logger;
}

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
interface Verified extends VerifiedUpgrade {
  descriptor: UpgradeDescriptor;
  /** The version to load, unless the node already knows it. */
  def: AnyActorVersion | undefined;
  /** The bundle's definition even when the node knows the version (what a fix loads). */
  fixDef: AnyActorVersion | undefined;
  schedule: ScheduleMachine;
}

interface Managed {
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
  lastControlAt?: number;
  doneSent?: boolean;
  lastNote?: string;
  /** The descriptor revision of a fix being applied. */
  fixing?: number;
}

interface NodeView {
  record: NodeRecord;
  revision: number;
  lastSeen: number;
}

const stepOf: Record<UpgradeLifecycleState, ProgressStep | undefined> = {
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
const finalStates: ReadonlySet<UpgradeLifecycleState> = new Set(['upgraded', 'rejected', 'failed', 'aborted']);

function errorText(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

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
  const leaseMs = options.leaseMs ?? 5000;
  const findSchedule = options.resolveSchedule ?? defaultResolve;
  const udb = new Udb(node.udb, node.service);
  if (trustedKeys.length === 0) logger.warn('no trusted publisher keys: every upgrade will be refused (pass --trust <public key>)');

  let store: UpgradeStore | undefined;
  let stopped = false;
  const descriptors = new Map<string, StoredDescriptor>();
  const managed = new Map<string, Managed>();
  const nodes = new Map<string, NodeView>();
  const controls = new Map<string, ControlRecord>();
  const rollouts = new Map<string, RolloutRecord>();
  const retired = new Map<string, RetireRecord>();
  const bundles = new Map<string, Promise<LoadedBundle>>();
  const watches = new Map<string, () => void>();
  const timers: TimerHandle[] = [];
  /** (service, type) pairs SFs asked to follow with `schedule.watch`. */
  const versionWatches = new Set<string>();
  let upgrading = 0;
  let upgradeChain: Promise<unknown> = Promise.resolve();

  const types = () => node.status().types;

  // ---- recording in the UDB ----------------------------------------------

  const writes = new Map<string, Promise<void>>();
  /** Writes in order per key; a failed write is logged, never thrown into the lifecycle. */
  function write(key: string, fn: () => Promise<void>): void {
    const next = (writes.get(key) ?? Promise.resolve()).then(fn).catch((e) => logger.warn('could not write to the UDB', { key, error: errorText(e) }));
    writes.set(key, next);
  }

  /** The descriptor key of the problem last written to this node's `lastError`. */
  let lastProblemKey: string | undefined;

  async function reportProblem(m: Managed, code: string, message: string, reason?: string): Promise<void> {
    lastProblemKey = m.key;
    const rolloutId = m.verified?.descriptor.rolloutId;
    write(`report:${m.key}`, () =>
      udb.putReport({ nodeId: node.id, key: m.key, ...(rolloutId ? { rolloutId } : {}), code, ...(reason ? { reason } : {}), message, at: clock.now() }),
    );
    write('status', () => node.setStatus(upgrading > 0 ? 'upgrading' : 'running', message));
  }

  function recordStep(m: Managed, note?: string, error?: string): void {
    const d = m.verified?.descriptor;
    const step = stepOf[m.state];
    if (!d || !step) return;
    const at = clock.now();
    if (m.steps[m.steps.length - 1]?.step !== step) m.steps.push({ step, at });
    const record: ProgressRecord = {
      rolloutId: d.rolloutId,
      nodeId: node.id,
      type: d.type,
      from: d.from,
      to: d.to,
      step,
      at,
      ...(note ? { note } : {}),
      ...(error ? { error } : {}),
      steps: [...m.steps],
    };
    write(`progress:${d.rolloutId}`, () => udb.putProgress(record));
  }

  // ---- the lifecycle's I/O -------------------------------------------------

  /** Rejection reasons (`unsigned`, `digest-mismatch`, …) by descriptor key, for reports. */
  const rejectionReasons = new Map<string, string>();

  async function verify(key: string): Promise<Verified> {
    try {
      const verified = await verifyUpgrade(key);
      rejectionReasons.delete(key);
      return verified;
    } catch (e) {
      if (isMoltError(e, ErrorCode.UpgradeRejected)) rejectionReasons.set(key, String(e.data.reason ?? 'rejected'));
      else rejectionReasons.delete(key);
      throw e;
    }
  }

  async function verifyUpgrade(key: string): Promise<Verified> {
    const stored = descriptors.get(key);
    if (!stored || !store) throw new MoltError(ErrorCode.Unavailable, `descriptor ${key} is no longer readable`);
    const descriptor = verifyDescriptor(key, stored.value, { service: node.service, trustedKeys });
    const where = `${descriptor.type}@${descriptor.to}`;
    let bundle = bundles.get(descriptor.bundle.digest);
    if (!bundle) {
      bundle = (async () => {
        let bytes: Uint8Array | null;
        try {
          bytes = await store!.getBundle(descriptor.bundle.digest);
        } catch (e) {
          // The object store checks its own digest while reading: a corrupt object is a tampered one.
          if (/corrupt|digest/i.test(errorText(e))) throw rejected('digest-mismatch', `the bundle of ${where} is corrupt in the object store: ${errorText(e)}`, { key });
          throw e;
        }
        if (!bytes) throw rejected('bundle-missing', `the bundle of ${where} (sha256 ${descriptor.bundle.digest}) is not in the bundles store: publish it again`, { key });
        const digest = sha256Hex(bytes);
        if (digest !== descriptor.bundle.digest) {
          throw rejected('digest-mismatch', `the bundle of ${where} does not match its signed digest (got sha256 ${digest}, signed ${descriptor.bundle.digest}): it was altered after publishing; it was not loaded`, { key });
        }
        // Only now, with a trusted signature over this exact digest, is the code run.
        return importBundle(bytes);
      })();
      bundles.set(descriptor.bundle.digest, bundle);
      bundle.catch(() => bundles.delete(descriptor.bundle.digest));
    }
    const loaded = await bundle;
    const status = types()[descriptor.type];
    if (!status) throw rejected('chain', `${where}: this node's service has no type '${descriptor.type}'`, { key });
    const known = status.known.includes(descriptor.to);
    const def = loaded.version(descriptor.type, descriptor.to);
    if (!known && !def) throw rejected('bundle-invalid', `the bundle of ${where} does not export ${where}`, { key });
    if (def && (def.previous ? def.previous.version !== descriptor.from : false)) {
      throw rejected('chain', `${where} in the bundle declares .from(version ${def.previous?.version}), but the descriptor says it upgrades from ${descriptor.from}`, { key });
    }
    const schedule = findSchedule(descriptor.schedule.name, descriptor.schedule.params, loaded.schedules);
    // Read the rollout's records now: the first decision (catch up? hold?) must not race the UDB watches.
    const [rollout, control] = await Promise.all([udb.rollout(descriptor.rolloutId), udb.control(descriptor.rolloutId)]);
    if (rollout) rollouts.set(rollout.record.rolloutId, rollout.record);
    if (control) controls.set(control.rolloutId, control);
    const r = rollout?.record;
    const rolledBack = control?.command === 'rollback' || (r !== undefined && rollbackStates.has(r.state));
    const reason = control?.reason ?? r?.reason;
    return {
      descriptor,
      def: known ? undefined : def,
      fixDef: def,
      schedule,
      rollout: {
        done: r?.state === 'done',
        paused: control ? control.command === 'pause' : r?.state === 'paused',
        // A rollback ends the upgrade's lifecycle like an abort; the node's way back is runRollbacks'.
        aborted: control?.command === 'abort' || r?.state === 'aborted' || rolledBack,
        ...(rolledBack ? { reason: `rolled back${reason ? `: ${reason}` : ''}` } : reason ? { reason } : {}),
      },
    };
  }

  async function load(verified: Verified): Promise<void> {
    if (verified.def) {
      node.loadVersion(verified.def);
      return;
    }
    // A version rolled back on this node and now published again (a new
    // rollout of the same version): its new code replaces the old, and state
    // stamped with it is no longer carried down here — until this node
    // upgrades it answers "retry", like any node behind in a rollout.
    const d = verified.descriptor;
    const rolledBackFrom = types()[d.type]?.rolledBackFrom;
    if (!verified.rollout?.aborted && rolledBackFrom !== undefined && rolledBackFrom >= d.to && verified.fixDef) {
      node.loadVersion(verified.fixDef);
      node.clearRollback(d.type);
      logger.info('rolled-back version published again', { type: d.type, version: d.to, rolloutId: d.rolloutId });
    }
  }

  function nodeViews(type: string): ScheduleNodeView[] {
    const now = clock.now();
    const out: ScheduleNodeView[] = [];
    for (const [id, v] of nodes) {
      const version = v.record.versions[type];
      if (typeof version !== 'number') continue;
      const live = v.record.status !== 'stopped' && (id === node.id || now - v.lastSeen <= leaseMs);
      const s = v.record.typeStats?.[type] ?? v.record.stats;
      out.push({
        id,
        version,
        status: v.record.status,
        live,
        ...(s ? { stats: { calls: s.calls, failed: s.failed, disallowed: s.disallowed, transformFailures: s.transformFailures } } : {}),
      });
    }
    return out.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  }

  function versionsEvent(service: string, type: string, views: ScheduleNodeView[]): ScheduleEvent {
    const live = views.filter((n) => n.live);
    return { type: 'udb.versions', service, type_: type, minVersion: live.length ? Math.min(...live.map((n) => n.version)) : 0, liveNodes: live.length };
  }

  const otherServices = new Map<string, ScheduleNodeView[]>();
  async function readOtherService(service: string): Promise<void> {
    try {
      const kv = await new Kvm(node.connection).open(`molt_${service}_udb`);
      const other = new Udb(kv, service);
      const now = clock.now();
      otherServices.set(
        service,
        (await other.nodes()).flatMap((r) =>
          Object.entries(r.versions).map(([type, version]) => ({ id: `${r.id}#${type}`, version, status: r.status, live: r.status !== 'stopped' && now - r.heartbeatAt <= leaseMs })),
        ),
      );
    } catch {
      otherServices.set(service, []);
    }
  }

  function runSchedule(input: ScheduleRunnerInput, sendBack: (e: { type: 'schedule.note'; note: string } | { type: 'schedule.decided'; decision: ScheduleDecision } | { type: 'schedule.failed'; error: string }) => void, receive: (fn: (e: ScheduleEvent) => void) => void): () => void {
    const verified = input.verified as Verified;
    const d = verified.descriptor;
    const sfInput: ScheduleInput = {
      nodeId: node.id,
      service: node.service,
      type: d.type,
      from: d.from,
      to: d.to,
      params: d.schedule.params,
      now: clock.now(),
      rolloutId: d.rolloutId,
      paused: input.paused,
      nodes: nodeViews(d.type),
    };
    let settled = false;
    const sf = createActor(verified.schedule, { input: sfInput });
    sf.on('schedule.watch', (e: { service: string; type_: string }) => {
      versionWatches.add(`${e.service}/${e.type_}`);
    });
    sf.on('schedule.halted', (e: { reason: string }) => {
      sendBack({ type: 'schedule.note', note: `halted: ${e.reason}` });
      write('status', () => node.setStatus(upgrading > 0 ? 'upgrading' : 'running', `rollout ${d.rolloutId} halted by its health gate: ${e.reason}`));
      write(`rollout:${d.rolloutId}`, async () => {
        await udb.updateRollout(d.rolloutId, (r) => (r.state === 'running' ? { ...r, state: 'paused', reason: `halted on ${node.id}: ${e.reason}`, updatedAt: clock.now() } : undefined));
      });
    });
    sf.on('schedule.status', (e: { note: string }) => sendBack({ type: 'schedule.note', note: e.note }));
    const settle = () => {
      if (settled) return;
      const snap = sf.getSnapshot();
      if (snap.status === 'error') {
        settled = true;
        sendBack({ type: 'schedule.failed', error: errorText(snap.error) });
      } else if (snap.status === 'done') {
        settled = true;
        const status = scheduleStatusOf(snap);
        if (status.state === 'decided' && status.decision === 'upgrade') sendBack({ type: 'schedule.decided', decision: { decision: 'upgrade' } });
        else if (status.state === 'decided' && status.decision === 'abort') sendBack({ type: 'schedule.decided', decision: { decision: 'abort', reason: status.reason } });
      }
    };
    sf.subscribe({ next: settle, error: (e) => {
      if (settled) return;
      settled = true;
      sendBack({ type: 'schedule.failed', error: errorText(e) });
    } });
    try {
      sf.start();
    } catch (e) {
      settled = true;
      sendBack({ type: 'schedule.failed', error: errorText(e) });
      return () => undefined;
    }
    settle();
    receive((event) => {
      if (settled) return;
      try {
        sf.send(event);
      } catch (e) {
        settled = true;
        sendBack({ type: 'schedule.failed', error: errorText(e) });
      }
    });
    // Versions of what the SF follows, right away.
    queueMicrotask(() => feedVersions(d.type));
    return () => sf.stop();
  }

  function upgradeNode(verified: Verified): Promise<{ transformed: number; failed: number }> {
    const d = verified.descriptor;
    const run = async () => {
      upgrading++;
      try {
        // Another lifecycle may have been faster (e.g. a duplicate descriptor revision).
        if ((types()[d.type]?.current ?? 0) >= d.to) return { transformed: 0, failed: 0 };
        return await node.upgrade(d.type, d.to);
      } finally {
        upgrading--;
      }
    };
    // Upgrades of different types run one at a time: the node's status is one field.
    const p = upgradeChain.then(run, run);
    upgradeChain = p.catch(() => undefined);
    return p;
  }

  // ---- lifecycles ----------------------------------------------------------

  function startLifecycle(stored: StoredDescriptor, type: string, to: number): void {
    const logic = upgradeLifecycle.provide({
      actors: {
        verify: fromPromise(({ input }) => verify(input.key)),
        load: fromPromise(({ input }) => load(input.verified as Verified)),
        runSchedule: fromCallback(({ input, sendBack, receive }) => runSchedule(input, sendBack, receive)),
        upgrade: fromPromise(({ input }) => upgradeNode(input.verified as Verified)),
      },
    });
    const current = types()[type]?.current ?? 0;
    const actor = createActor(logic, { input: { key: stored.key, current, paused: false, aborted: false, rolloutDone: false } });
    const m: Managed = { key: stored.key, type, to, revision: stored.revision, actor, subscription: undefined as never, state: 'verifying', steps: [], retry: false };
    managed.set(stored.key, m);
    m.subscription = actor.subscribe({
      next: (snap) => onSnapshot(m, snap.value as UpgradeLifecycleState, snap.context),
      error: (e) => logger.error('upgrade lifecycle crashed', { key: m.key, error: errorText(e) }),
    });
    actor.start();
  }

  function onSnapshot(m: Managed, state: UpgradeLifecycleState, context: { verified?: VerifiedUpgrade; note?: string; error?: string; reason?: string; result?: { transformed: number; failed: number } }): void {
    const previous = m.state;
    const note = context.note;
    if (!m.verified && context.verified) {
      m.verified = context.verified as Verified;
      // Verification read the rollout's control; later changes are sent as they come.
      const control = controls.get(m.verified.descriptor.rolloutId);
      if (control) m.lastControlAt = control.at;
      if (m.verified.rollout?.done) m.doneSent = true;
      queueMicrotask(() => syncRollout(m));
    }
    if (state === previous) {
      if (state === 'scheduling' && note && note !== m.lastNote) {
        m.lastNote = note;
        recordStep(m, note);
      }
      return;
    }
    m.state = state;
    // 'waiting' is often passed within one step: the version was loaded all the same.
    if (previous === 'loading' && state !== 'failed' && state !== 'waiting') {
      const saved = m.state;
      m.state = 'waiting';
      recordStep(m);
      m.state = saved;
    }
    const d = m.verified?.descriptor;
    logger.info('upgrade step', { key: m.key, rolloutId: d?.rolloutId, state, ...(note ? { note } : {}), ...(context.error ? { error: context.error } : {}) });
    switch (state) {
      case 'rejected': {
        const error = context.error ?? 'rejected';
        // Not a verdict on the upgrade (e.g. NATS unreachable while downloading): try again later.
        const transient = !rejectionReasons.has(m.key);
        m.retry = transient;
        logger.error('upgrade refused', { key: m.key, error });
        void reportProblem(m, transient ? ErrorCode.Unavailable : ErrorCode.UpgradeRejected, `refused upgrade ${m.type}@${m.to}: ${error}`, rejectionReasons.get(m.key));
        recordStep(m, undefined, error);
        break;
      }
      case 'failed': {
        const error = context.error ?? 'failed';
        m.retry = true;
        void reportProblem(m, ErrorCode.OperationRefused, `upgrade ${m.type}@${m.to} failed: ${error}`);
        recordStep(m, undefined, error);
        break;
      }
      case 'upgraded': {
        const result = context.result ?? { transformed: 0, failed: 0 };
        recordStep(m, `transformed ${result.transformed} resident actors${result.failed ? `, ${result.failed} transform failures` : ''}`);
        // A problem reported earlier for this upgrade (e.g. a refused revision) is over.
        write(`report:${m.key}`, () => udb.deleteReport(node.id, m.type, m.to));
        if (lastProblemKey === m.key && result.failed === 0) {
          lastProblemKey = undefined;
          write('status', () => node.setStatus(upgrading > 0 ? 'upgrading' : 'running', undefined));
        }
        checkTransformFailures();
        afterUpgrade(m.type);
        break;
      }
      case 'aborted':
        recordStep(m, context.reason);
        break;
      default:
        recordStep(m, note);
    }
    if (state === 'loading' || finalStates.has(state) || state === 'waiting') queueMicrotask(pump);
    // Once `to` is loaded, a node at `from` can take part in a rollback of it.
    if (previous === 'loading') queueMicrotask(runRollbacks);
  }

  /** Transform failures already acted on, per descriptor key. */
  const failuresHalted = new Map<string, number>();

  /**
   * Halts a rollout when this node sees new transform failures of its version
   * — at the upgrade (resident actors) or later (actors carried when next
   * loaded). A resume accepts the failures seen so far; a fix clears them.
   */
  function checkTransformFailures(): void {
    const status = types();
    for (const m of managed.values()) {
      const d = m.verified?.descriptor;
      if (!d || m.state !== 'upgraded') continue;
      const count = (status[m.type]?.transformFailures ?? []).filter((f) => f.to === m.to).length;
      const before = failuresHalted.get(m.key) ?? 0;
      if (count === before) continue;
      failuresHalted.set(m.key, count);
      if (count < before) continue;
      const state = rollouts.get(d.rolloutId)?.state;
      if (state !== undefined && rollbackStates.has(state)) continue;
      if (state === 'done' || state === 'aborted') {
        void reportProblem(m, ErrorCode.TransformFailed, `${count} actor(s) of ${d.type} failed their transform to ${d.to} on ${node.id}; their state is untouched. Publish a fix: molt publish <module> --fix --version ${d.type}=${d.to}`);
        continue;
      }
      haltOnTransformFailures(m, d, count);
    }
  }

  function haltOnTransformFailures(m: Managed, d: UpgradeDescriptor, failed: number): void {
    const reason = `${failed} transform failure(s) of ${d.type} ${d.from}→${d.to} on node ${node.id}: fix the TF (\`molt publish <module> --fix --version ${d.type}=${d.to}\`), then \`molt resume ${d.rolloutId}\``;
    void reportProblem(m, ErrorCode.TransformFailed, reason);
    write(`control:${d.rolloutId}`, () => udb.setControl({ rolloutId: d.rolloutId, command: 'pause', reason, by: `node ${node.id}`, at: clock.now() }));
    write(`rollout:${d.rolloutId}`, async () => {
      await udb.updateRollout(d.rolloutId, (r) => (r.state === 'running' ? { ...r, state: 'paused', reason, updatedAt: clock.now() } : undefined));
    });
  }

  function afterUpgrade(type: string): void {
    const current = types()[type]?.current ?? 0;
    for (const m of managed.values()) if (m.type === type) m.actor.send({ type: 'node.current', version: current });
    applyRetirements();
    // A rollback may have come while this upgrade ran: it applies now.
    queueMicrotask(runRollbacks);
    // The node record changed: count the rollout again.
    queueMicrotask(() => void refreshRollouts());
  }

  // ---- rollback ----------------------------------------------------------------

  /** Types with a rollback step queued or running on this node (one at a time per type). */
  const rollingBackTypes = new Set<string>();
  /** Rollouts whose rollback step failed here: retried at the next reconciliation, not at once. */
  const rollbackFailed = new Set<string>();
  /** Steps of rollouts this node has no lifecycle for (it never saw them as upgrades). */
  const rollbackSteps = new Map<string, Array<{ step: ProgressStep; at: number }>>();
  /** Down failures already reported, per rollout. */
  const downFailuresSeen = new Map<string, number>();

  /**
   * Rollouts this node must be rolled back from: `rolling-back` or
   * `rolled-back` (or whose control says `rollback`), newest first, leaving
   * out any replaced by a later rollout of the same version (published again).
   */
  function rollbacksToApply(): RolloutRecord[] {
    const all = [...rollouts.values()];
    return all
      .filter((r) => rollbackStates.has(r.state) || controls.get(r.rolloutId)?.command === 'rollback')
      .filter((r) => !all.some((o) => o.type === r.type && o.to === r.to && o.rolloutId !== r.rolloutId && o.startedAt > r.startedAt))
      .sort((a, b) => b.to - a.to);
  }

  /**
   * Takes this node back wherever a rollout is rolled back: a node at `to`
   * rolls the type back in place (`node.downgrade`), a node at `from` that
   * knows `to` is marked rolled back (state written at `to` is carried down
   * when loaded). Runs at every rollback control, rollout change, upgrade,
   * load and reconciliation; idempotent.
   */
  function runRollbacks(): void {
    if (stopped) return;
    const status = types();
    for (const r of rollbacksToApply()) {
      const s = status[r.type];
      if (!s || rollingBackTypes.has(r.type) || rollbackFailed.has(r.rolloutId)) continue;
      const inPlace = s.current === r.to;
      const mark = s.current === r.from && s.known.includes(r.to) && (s.rolledBackFrom ?? 0) < r.to;
      if (inPlace || mark) rollBackNode(r, inPlace);
    }
  }

  function rollBackNode(r: RolloutRecord, inPlace: boolean): void {
    rollingBackTypes.add(r.type);
    const run = async () => {
      upgrading++;
      try {
        const s = types()[r.type];
        // Re-checked in the queue: an upgrade may have run in between.
        if (!s || (s.current !== r.to && s.current !== r.from)) return;
        if (s.current === r.to) recordRollback(r, 'rolling-back', `rolling back from ${r.to} to ${r.from}`);
        const result = await node.downgrade(r.type, r.from);
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
      } finally {
        upgrading--;
      }
    };
    // Serialised with upgrades: the node's status is one field, and a type is never restarted twice at once.
    const p = upgradeChain.then(run, run);
    upgradeChain = p.catch(() => undefined);
    void p.finally(() => {
      rollingBackTypes.delete(r.type);
      queueMicrotask(runRollbacks);
      queueMicrotask(() => void refreshRollouts());
    });
  }

  function countDownFailures(r: RolloutRecord): number {
    return (types()[r.type]?.transformFailures ?? []).filter((f) => f.from === r.to && f.to === r.from).length;
  }

  /** Reports new down failures (actors carried down lazily, when loaded) of rolled-back rollouts. */
  function checkDownFailures(): void {
    for (const r of rollbacksToApply()) {
      const count = countDownFailures(r);
      const before = downFailuresSeen.get(r.rolloutId) ?? 0;
      if (count === before) continue;
      downFailuresSeen.set(r.rolloutId, count);
      if (count < before) continue;
      reportRollback(r, ErrorCode.TransformFailed, `${count} actor(s) of ${r.type} failed their down transform ${r.to}→${r.from} on ${node.id}; they keep their state at ${r.to} and answer TransformFailed. Publish ${r.type}@${r.to} again to serve them`);
    }
  }

  function recordRollback(r: RolloutRecord, step: ProgressStep, note?: string, error?: string): void {
    const m = [...managed.values()].find((x) => x.verified?.descriptor.rolloutId === r.rolloutId);
    let steps = m?.steps ?? rollbackSteps.get(r.rolloutId);
    if (!steps) rollbackSteps.set(r.rolloutId, (steps = []));
    const at = clock.now();
    if (steps[steps.length - 1]?.step !== step) steps.push({ step, at });
    const record: ProgressRecord = {
      rolloutId: r.rolloutId,
      nodeId: node.id,
      type: r.type,
      from: r.from,
      to: r.to,
      step,
      at,
      ...(note ? { note } : {}),
      ...(error ? { error } : {}),
      steps: [...steps],
    };
    write(`progress:${r.rolloutId}`, () => udb.putProgress(record));
  }

  function reportRollback(r: RolloutRecord, code: string, message: string): void {
    const key = `upgrade.${r.type}.${r.to}`;
    lastProblemKey = key;
    write(`report:${key}`, () => udb.putReport({ nodeId: node.id, key, rolloutId: r.rolloutId, code, message, at: clock.now() }));
    write('status', () => node.setStatus(upgrading > 0 ? 'upgrading' : 'running', message));
  }

  /** Sends a lifecycle what the UDB says about its rollout: control and done. */
  function syncRollout(m: Managed): void {
    const d = m.verified?.descriptor;
    if (!d || finalStates.has(m.state)) return;
    const control = controls.get(d.rolloutId);
    const rollout = rollouts.get(d.rolloutId);
    if (control && control.at !== m.lastControlAt) {
      m.lastControlAt = control.at;
      if (control.command === 'rollback') {
        // For the upgrade's lifecycle a rollback is an abort: it never upgrades now (runRollbacks takes the node back).
        m.actor.send({ type: 'control', command: 'abort', reason: `rolled back${control.reason ? `: ${control.reason}` : ''}` });
      } else {
        m.actor.send({ type: 'control', command: control.command, ...(control.reason ? { reason: control.reason } : {}) });
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

  /** Starts the next lifecycle of each type, in chain order. */
  function pump(): void {
    if (stopped) return;
    const byType = new Map<string, Array<{ stored: StoredDescriptor; to: number }>>();
    for (const stored of descriptors.values()) {
      const parsed = parseDescriptorKey(stored.key);
      if (!parsed) continue;
      const list = byType.get(parsed.type) ?? [];
      list.push({ stored, to: parsed.to });
      byType.set(parsed.type, list);
    }
    const status = types();
    for (const [type, list] of byType) {
      const s = status[type];
      if (!s) continue;
      const knownMax = Math.max(...s.known);
      list.sort((a, b) => a.to - b.to);
      for (const { stored, to } of list) {
        const existing = managed.get(stored.key);
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
        const verified = await verify(stored.key);
        const previous = m.verified?.descriptor;
        if (previous && verified.descriptor.rolloutId !== previous.rolloutId) {
          throw rejected('chain', `${stored.key} now names rollout ${verified.descriptor.rolloutId}, but this node runs rollout ${previous.rolloutId} for it; a fix keeps its rollout`, { key: stored.key });
        }
        const def = loadedVersion(verified);
        if (def) node.loadVersion(def);
        m.revision = stored.revision;
        m.verified = { ...verified, def: m.verified?.def };
        (m.steps as Array<{ step: ProgressStep; at: number }>).push({ step: m.steps[m.steps.length - 1]?.step ?? 'loaded', at: clock.now() });
        recordStep(m, `fixed code loaded (bundle sha256 ${verified.descriptor.bundle.digest.slice(0, 12)}…)`);
        failuresHalted.delete(m.key);
        logger.info('fixed upgrade loaded', { key: m.key, digest: verified.descriptor.bundle.digest });
      } catch (e) {
        m.fixing = undefined;
        m.revision = stored.revision; // do not retry the same bad revision in a loop
        void reportProblem(m, isMoltError(e) ? e.code : ErrorCode.UpgradeRejected, `refused fix of ${m.type}@${m.to}: ${errorText(e)}`, rejectionReasons.get(m.key));
      }
    })();
  }

  /** The definition a verified upgrade offers, even when the node already knows that version (a fix replaces it). */
  function loadedVersion(v: Verified): AnyActorVersion | undefined {
    return v.def ?? v.fixDef;
  }

  function replace(m: Managed): void {
    m.subscription.unsubscribe();
    m.actor.stop();
    managed.delete(m.key);
  }

  /** Lifecycles that ended for a reason that may pass get another go (at reconciliation, so at most once per period). */
  function retryFailed(): void {
    for (const m of [...managed.values()]) {
      if (m.retry && (m.state === 'failed' || m.state === 'rejected') && (types()[m.type]?.current ?? 0) < m.to) {
        replace(m);
      }
    }
  }

  // ---- following the UDB --------------------------------------------------

  let nodesFlush: TimerHandle | undefined;
  function observeNode(entry: KvEntry): void {
    const id = entry.key.slice(UdbPrefix.nodes.length);
    if (entry.operation !== 'PUT') {
      nodes.delete(id);
      scheduleNodesFlush();
      return;
    }
    const record = parseRecord<NodeRecord>(entry.value, udbPatterns.node);
    if (!record) return;
    const before = nodes.get(id);
    if (before && before.revision >= entry.revision) return;
    const now = clock.now();
    // First sight: trust the heartbeat time (bounded by now) so a long-dead record is not live for a lease.
    const lastSeen = before ? now : Math.min(now, record.heartbeatAt);
    nodes.set(id, { record, revision: entry.revision, lastSeen });
    const changed = !before || before.record.status !== record.status || JSON.stringify(before.record.versions) !== JSON.stringify(record.versions);
    if (changed) {
      scheduleNodesFlush();
      queueMicrotask(() => void refreshRollouts());
    }
  }

  function scheduleNodesFlush(): void {
    if (nodesFlush !== undefined || stopped) return;
    nodesFlush = clock.setTimeout(() => {
      nodesFlush = undefined;
      feedNodes();
    }, 10);
  }

  function feedNodes(): void {
    const byType = new Map<string, ScheduleNodeView[]>();
    for (const m of managed.values()) {
      if (m.state !== 'scheduling') continue;
      let views = byType.get(m.type);
      if (!views) byType.set(m.type, (views = nodeViews(m.type)));
      m.actor.send({ type: 'schedule.feed', event: { type: 'udb.nodes', nodes: views } });
    }
  }

  function feedVersions(onlyType?: string): void {
    for (const m of managed.values()) {
      if (m.state !== 'scheduling' || (onlyType && m.type !== onlyType)) continue;
      for (const watch of versionWatches) {
        const [service, type] = watch.split('/') as [string, string];
        const views = service === node.service ? nodeViews(type) : otherServices.get(service);
        if (!views) continue;
        m.actor.send({ type: 'schedule.feed', event: versionsEvent(service, type, views) });
      }
    }
  }

  function observeControl(entry: KvEntry): void {
    const id = entry.key.slice(UdbPrefix.control.length);
    if (entry.operation !== 'PUT') {
      controls.delete(id);
      return;
    }
    const record = parseRecord<ControlRecord>(entry.value, udbPatterns.control);
    if (!record) return;
    controls.set(record.rolloutId, record);
    for (const m of managed.values()) if (m.verified?.descriptor.rolloutId === record.rolloutId) syncRollout(m);
    if (record.command === 'rollback') queueMicrotask(runRollbacks);
  }

  function observeRollout(entry: KvEntry): void {
    if (entry.operation !== 'PUT') return;
    const record = parseRecord<RolloutRecord>(entry.value, udbPatterns.rollout);
    if (!record) return;
    rollouts.set(record.rolloutId, record);
    for (const m of managed.values()) if (m.verified?.descriptor.rolloutId === record.rolloutId) syncRollout(m);
    if (rollbackStates.has(record.state)) queueMicrotask(runRollbacks);
  }

  function observeRetired(entry: KvEntry): void {
    if (entry.operation !== 'PUT') return;
    const record = parseRecord<RetireRecord>(entry.value, udbPatterns.retired);
    if (!record) return;
    retired.set(`${record.type}@${record.version}`, record);
    applyRetirements();
  }

  const appliedRetirements = new Set<string>();
  function applyRetirements(): void {
    const status = types();
    for (const [id, r] of retired) {
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
  }

  function observeDescriptor(entry: KvEntry | StoredDescriptor & { operation?: string }): void {
    const key = entry.key;
    if (!parseDescriptorKey(key)) return;
    if ((entry as KvEntry).operation !== undefined && (entry as KvEntry).operation !== 'PUT') {
      descriptors.delete(key);
      return;
    }
    const before = descriptors.get(key);
    if (before && before.revision >= entry.revision) return;
    descriptors.set(key, { key, revision: entry.revision, value: entry.value });
    queueMicrotask(pump);
  }

  /** Counts live nodes per version for each rollout that is not over, and marks it done when all have upgraded. */
  let refreshing: Promise<void> | undefined;
  let refreshAgain = false;
  async function refreshRollouts(): Promise<void> {
    if (refreshing) {
      refreshAgain = true;
      return refreshing;
    }
    refreshing = (async () => {
      do {
        refreshAgain = false;
        for (const r of [...rollouts.values()]) {
          if (stopped || r.state === 'done' || r.state === 'rolled-back') continue;
          const views = nodeViews(r.type).filter((n) => n.live);
          const counts: Record<string, number> = {};
          for (const n of views) counts[String(n.version)] = (counts[String(n.version)] ?? 0) + 1;
          const done = views.length > 0 && views.every((n) => n.version >= r.to);
          // Rolled back: every live node is at `from` again, none in the middle of a soft restart.
          const back = views.length > 0 && views.every((n) => n.version <= r.from && n.status !== 'upgrading');
          const ending = (state: RolloutRecord['state']): 'done' | 'rolled-back' | undefined =>
            state === 'rolling-back' ? (back ? 'rolled-back' : undefined) : state === 'running' || state === 'paused' ? (done ? 'done' : undefined) : undefined;
          const same = JSON.stringify(counts) === JSON.stringify(r.counts);
          if (same && !ending(r.state)) continue;
          try {
            const next = await udb.updateRollout(r.rolloutId, (cur) => {
              const finish = ending(cur.state);
              if (cur.state === 'done' || cur.state === 'rolled-back') return undefined;
              if (JSON.stringify(cur.counts) === JSON.stringify(counts) && !finish) return undefined;
              const now = clock.now();
              return { ...cur, counts, updatedAt: now, ...(finish ? { state: finish, endedAt: now } : {}) };
            });
            if (next) rollouts.set(next.rolloutId, next);
          } catch (e) {
            logger.warn('could not update rollout', { rolloutId: r.rolloutId, error: errorText(e) });
          }
        }
      } while (refreshAgain && !stopped);
    })().finally(() => {
      refreshing = undefined;
    });
    return refreshing;
  }

  // ---- watching and reconciling --------------------------------------------

  async function ensureWatch(name: string, start: () => Promise<() => void>): Promise<void> {
    if (watches.has(name) || stopped) return;
    try {
      const stop = await start();
      watches.set(name, stop);
    } catch (e) {
      logger.debug('watch not started', { watch: name, error: errorText(e) });
    }
  }

  function ended(name: string) {
    return (error?: unknown) => {
      watches.delete(name);
      if (!stopped) logger.debug('watch ended; the next reconciliation restarts it', { watch: name, ...(error ? { error: errorText(error) } : {}) });
    };
  }

  async function startWatches(): Promise<void> {
    await ensureWatch('nodes', () => udb.watch(UdbPrefix.nodes, observeNode, ended('nodes')));
    await ensureWatch('control', () => udb.watch(UdbPrefix.control, observeControl, ended('control')));
    await ensureWatch('rollouts', () => udb.watch(UdbPrefix.rollouts, observeRollout, ended('rollouts')));
    await ensureWatch('retired', () => udb.watch(UdbPrefix.retired, observeRetired, ended('retired')));
    if (store) {
      const descriptorsKv = store.descriptors;
      await ensureWatch('descriptors', async () => {
        const watcher = await descriptorsKv.watch({ key: 'upgrade.>' });
        void (async () => {
          for await (const entry of watcher) observeDescriptor(entry);
        })().then(() => ended('descriptors')(), (e) => ended('descriptors')(e));
        return () => watcher.stop();
      });
    }
  }

  let reconciling: Promise<void> | undefined;
  async function reconcileOnce(): Promise<void> {
    if (stopped) return;
    try {
      store ??= await openUpgradeStore(node.connection, node.service, { create: 'try' });
    } catch (e) {
      logger.debug('upgrade store not reachable yet', { error: errorText(e) });
    }
    await startWatches();
    try {
      const [nodeEntries, controlEntries, rolloutEntries, retiredEntries] = await Promise.all([
        udb.readAll(UdbPrefix.nodes),
        udb.readAll(UdbPrefix.control),
        udb.readAll(UdbPrefix.rollouts),
        udb.readAll(UdbPrefix.retired),
      ]);
      nodeEntries.forEach(observeNode);
      controlEntries.forEach(observeControl);
      rolloutEntries.forEach(observeRollout);
      retiredEntries.forEach(observeRetired);
      if (store) {
        const listed = await store.list();
        const present = new Set(listed.map((d) => d.key));
        for (const key of [...descriptors.keys()]) if (!present.has(key)) descriptors.delete(key);
        for (const d of listed) observeDescriptor(d);
      }
    } catch (e) {
      logger.warn('reconciliation read failed; retrying next period', { error: errorText(e) });
    }
    retryFailed();
    pump();
    rollbackFailed.clear();
    runRollbacks();
    await refreshRollouts();
  }

  function reconcile(): Promise<void> {
    reconciling ??= reconcileOnce().finally(() => {
      reconciling = undefined;
    });
    return reconciling;
  }

  // ---- timers ----------------------------------------------------------------

  let lastCalls = new Map<string, { calls: number; at: number; changedAt: number }>();
  function tick(): void {
    if (stopped) return;
    const now = clock.now();
    const status = types();
    const nextCalls = new Map<string, { calls: number; at: number; changedAt: number }>();
    for (const [type, s] of Object.entries(status)) {
      const prev = lastCalls.get(type);
      const changedAt = !prev || prev.calls !== s.stats.calls ? now : prev.changedAt;
      nextCalls.set(type, { calls: s.stats.calls, at: now, changedAt });
    }
    const scheduling = [...managed.values()].filter((m) => m.state === 'scheduling');
    for (const m of scheduling) {
      const cur = nextCalls.get(m.type);
      const prev = lastCalls.get(m.type);
      const elapsed = prev ? Math.max(1, now - prev.at) : tickMs;
      const cps = prev && cur ? (Math.max(0, cur.calls - prev.calls) * 1000) / elapsed : 0;
      m.actor.send({ type: 'schedule.feed', event: { type: 'tick', now } });
      m.actor.send({ type: 'schedule.feed', event: { type: 'load', callsPerSecond: cps, idleForMs: cur ? now - cur.changedAt : 0 } });
    }
    lastCalls = nextCalls;
    checkTransformFailures();
    checkDownFailures();
    if (scheduling.length > 0) {
      feedNodes();
      for (const watch of versionWatches) {
        const service = watch.split('/')[0]!;
        if (service !== node.service) void readOtherService(service);
      }
      feedVersions();
    }
    timers[0] = clock.setTimeout(tick, tickMs);
  }

  function periodic(): void {
    if (stopped) return;
    void reconcile();
    timers[1] = clock.setTimeout(periodic, reconcileMs);
  }

  // Reconnects: watches may have missed values while away.
  void (async () => {
    for await (const s of node.connection.status()) {
      if (stopped) break;
      if (s.type === 'reconnect') {
        logger.info('reconnected to NATS: reconciling upgrades');
        void reconcile();
      }
    }
  })().catch(() => undefined);

  await reconcile();
  // The node closed its connection (it stopped): nothing left to manage.
  void node.connection.closed().then(() => manager.stop());
  timers[0] = clock.setTimeout(tick, tickMs);
  timers[1] = clock.setTimeout(periodic, reconcileMs);
  logger.info('upgrade manager started', { trustedKeys: trustedKeys.length, reconcileMs });

  const manager: UpgradeManager = {
    upgrades() {
      return [...managed.values()].map((m) => ({
        key: m.key,
        type: m.type,
        to: m.to,
        rolloutId: m.verified?.descriptor.rolloutId,
        state: m.state,
        ...(m.actor.getSnapshot().context.note ? { note: m.actor.getSnapshot().context.note } : {}),
        ...(m.actor.getSnapshot().context.error ? { error: m.actor.getSnapshot().context.error } : {}),
      }));
    },
    reconcile,
    async stop() {
      if (stopped) return;
      stopped = true;
      for (const t of timers) if (t !== undefined) clock.clearTimeout(t);
      if (nodesFlush !== undefined) clock.clearTimeout(nodesFlush);
      for (const stop of watches.values()) stop();
      watches.clear();
      await upgradeChain;
      for (const m of managed.values()) {
        m.subscription.unsubscribe();
        m.actor.stop();
      }
      await Promise.allSettled([...writes.values()]);
    },
  };
  return manager;
}
