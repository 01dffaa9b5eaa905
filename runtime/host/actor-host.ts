/**
 * The actor host of one actor type on one node: activates actors on their
 * first message (loading state from the store, carried through the TF chain),
 * runs each actor's messages one turn at a time, commits each batch of turns
 * with one compare-and-set write before any reply leaves (group commit), and
 * passivates idle actors.
 *
 * It also performs the in-place upgrade of the type (a soft restart): hold
 * new messages, let every actor finish its batch, carry resident actors to the
 * new version, swap the definition, release the held messages — and the same
 * soft restart downward (`molt rollback`), through the newer version's `down`.
 *
 * @module
 */
import { ErrorCode, MoltError, isMoltError, toMoltError } from '../errors.ts';
import type { Codec } from '../wire/codec.ts';
import { encodeKey, stateKey } from '../wire/protocol.ts';
import type { Clock, Logger } from '../env.ts';
import type { AnyActorVersion } from '../define/version.ts';
import { RevisionConflict, type StateStore } from './store.ts';
import { CallCounts } from '../observe/calls.ts';
import { endWriteSpan, startWriteSpan } from '../observe/trace.ts';
import type { Span, Tracer } from '@opentelemetry/api';
import { checkpointKey, DEFAULT_REMEMBER, RememberedCalls, type RememberedRecord, type RememberOptions } from './remembered.ts';
import type { KeyedCall } from '../wire/envelope.ts';
import {
  admit,
  initialActorState,
  persist,
  refreshSOStates,
  restore,
  runTurn,
  type ActorState,
  type PersistedActor,
  type Route,
  type TypeVersions,
} from '../upgrade/layer.ts';

/**
 * Receives a call's outcome, exactly once: an error, or none and the reply;
 * and the route the upgrade layer chose for it (undefined if it chose none).
 */
export type Settle = (error: MoltError | undefined, reply: unknown, route: Route | undefined) => void;

/** One call waiting for its actor. */
export interface Call {
  readonly version: number;
  readonly message: string;
  readonly request: unknown;
  readonly route: Route;
  readonly settle: Settle;
  /** The caller's idempotency key, if it sent one, and its resend age (see host/remembered.ts). */
  readonly keyed?: KeyedCall | undefined;
  /**
   * On a resend, when its first attempt was sent, by this node's clock,
   * reckoned as the resend arrived. Its age is the caller's, as it left the
   * caller: a resend that then waits (in the mailbox behind a state write, or
   * held through an upgrade) is older by that wait when its actor judges it,
   * and judged by the age alone it would seem first sent after calls that in
   * fact followed it — and could run a second time. One held up on its way
   * is older too: then the time the caller's clock gives, if earlier.
   */
  readonly firstSentAt?: number | undefined;
  /** The call's recording span, if it is traced: the state write it causes is traced under it. */
  readonly span?: Span | undefined;
}

/** Counters a host reports for status and health gating (totals of its {@link CallCounts}). */
export interface HostStats {
  calls: number;
  failed: number;
  disallowed: number;
  transformFailures: number;
  conflicts: number;
  /** Calls refused unrun because the node or the actor had too many waiting. */
  overloaded: number;
}

/** An actor whose stored record this host cannot read (see ErrorCode.StateUnreadable). */
export interface UnreadableState {
  key: string;
  revision: number;
  message: string;
}

/** A transform failure seen by this host. */
export interface TransformFailure {
  key: string;
  from: number;
  to: number;
  message: string;
}

export interface ActorHostOptions {
  types: ReadonlyArray<AnyActorVersion>;
  current: number;
  volatile: boolean;
  passivateAfterMs: number;
  /** Most calls held while the type upgrades; more get a retryable `Upgrading` error. */
  holdLimit: number;
  /** Most calls waiting in one actor's mailbox; more get a retryable `Overloaded` error (default 1000). */
  mailboxLimit?: number;
  /** How long, and how many, idempotency keys of state-changing calls an actor remembers (host/remembered.ts). */
  remember?: RememberOptions;
  store: StateStore;
  codec: Codec;
  clock: Clock;
  logger: Logger;
  /** Traces state writes made for traced calls (observe/trace.ts). */
  tracer?: Tracer | undefined;
}

const MAX_CONFLICT_RETRIES = 8;

/** Calls one actor's mailbox holds by default before refusing more. */
export const DEFAULT_MAILBOX_LIMIT = 1000;

/** Hosts the actors of one type on one node. */
export class ActorHost {
  readonly name: string;
  private readonly versions = new Map<number, AnyActorVersion>();
  private current: number;
  private readonly retired = new Set<number>();
  /** The highest version this type was rolled back from on this node, if it was (see TypeVersions.rolledBackFrom). */
  private rolledBack: number | undefined;
  private readonly cells = new Map<string, ActorCell>();
  private mayArrive: ((version: number) => boolean) | undefined;
  private held: Array<{ key: string; call: Call }> | undefined;
  private sweepTimer: ReturnType<Clock['setTimeout']> | undefined;
  /** Every call's outcome by version and route: the one record `stats`, the node record and the metrics read. */
  readonly counts = new CallCounts();
  private conflicts = 0;
  readonly transformFailures = new Map<string, TransformFailure>();
  /** Actors whose stored record cannot be read, by key (reported in the node record). */
  readonly unreadable = new Map<string, UnreadableState>();

  constructor(private readonly options: ActorHostOptions) {
    const first = options.types[0];
    if (!first) throw new MoltError(ErrorCode.InvalidDefinition, 'an actor host needs at least one version');
    this.name = first.type;
    for (const v of options.types) this.versions.set(v.version, v);
    if (!this.versions.has(options.current)) {
      throw new MoltError(ErrorCode.InvalidDefinition, `actor type '${this.name}' has no version ${options.current}; known: ${[...this.versions.keys()].join(', ')}`);
    }
    this.current = options.current;
    this.scheduleSweep();
  }

  /**
   * The versions view the upgrade layer works on. Rebuilt only when versions
   * change, as a snapshot: the layer caches its routes per view.
   */
  private view: TypeVersions | undefined;
  get typeVersions(): TypeVersions {
    this.view ??= {
      name: this.name,
      byVersion: new Map(this.versions),
      current: this.current,
      retired: new Set(this.retired),
      ...(this.rolledBack !== undefined ? { rolledBackFrom: this.rolledBack } : {}),
      ...(this.mayArrive ? { upgradeMayArrive: this.mayArrive } : {}),
    };
    return this.view;
  }

  /** Set by the node's upgrade manager: which newer versions may still arrive (see TypeVersions.upgradeMayArrive). */
  set upgradeMayArrive(predicate: ((version: number) => boolean) | undefined) {
    this.mayArrive = predicate;
    this.view = undefined;
  }

  get currentVersion(): number {
    return this.current;
  }

  /** The totals of {@link counts}, and the compare-and-set conflicts retried. */
  get stats(): HostStats {
    const c = this.counts;
    return { calls: c.calls, failed: c.failed, disallowed: c.disallowed, transformFailures: c.transformFailures, conflicts: this.conflicts, overloaded: c.overloaded };
  }

  /** Calls held while the type upgrades (0 when it is not upgrading). */
  get heldCount(): number {
    return this.held?.length ?? 0;
  }

  /** @internal a cell retried a write after a compare-and-set conflict. */
  noteConflict(): void {
    this.conflicts++;
  }

  /**
   * The highest version this type was rolled back from on this node, or
   * undefined: state stamped with a newer version up to this one is carried
   * down through `down` when loaded.
   */
  get rolledBackFrom(): number | undefined {
    return this.rolledBack;
  }

  get knownVersions(): number[] {
    return [...this.versions.keys()].sort((a, b) => a - b);
  }

  get residentCount(): number {
    return this.cells.size;
  }

  /**
   * Makes a newer version known (its future SO starts serving at once).
   * Offering a version that is already known, with the same messages, replaces
   * its definition: that is how a fixed TF is delivered. Actors whose TF failed
   * are retried with it when next called.
   */
  addVersion(def: AnyActorVersion): void {
    if (def.type !== this.name) throw new MoltError(ErrorCode.InvalidDefinition, `version of '${def.type}' offered to host of '${this.name}'`);
    const max = Math.max(...this.versions.keys());
    const known = this.versions.get(def.version);
    if (known === def) return;
    if (known) {
      const same = (a: object, b: object) => Object.keys(a).sort().join() === Object.keys(b).sort().join();
      if (!same(known.messages, def.messages)) {
        throw new MoltError(ErrorCode.InvalidDefinition, `${this.name}@${def.version} is already loaded with different messages; a fix may change its TF and SOs, not its interface — publish a new version instead`);
      }
      this.versions.set(def.version, def);
      this.view = undefined;
      for (const [key, failure] of this.transformFailures) {
        if (failure.to === def.version) this.transformFailures.delete(key);
      }
      return;
    }
    if (def.version !== max + 1) {
      throw new MoltError(ErrorCode.InvalidDefinition, `${this.name}@${def.version} does not extend the chain (latest known is ${max})`);
    }
    this.versions.set(def.version, def);
    this.view = undefined;
    this.refreshSOStates();
  }

  /** Stops serving `version`: its SOs are dropped and its callers get VersionRetired. */
  retire(version: number): void {
    if (version >= this.current) {
      throw new MoltError(ErrorCode.OperationRefused, `cannot retire ${this.name}@${version}: this node runs it natively or it is newer; retire only older versions`);
    }
    this.retired.add(version);
    this.view = undefined;
    this.refreshSOStates();
  }

  /** Accepts a call for actor `key`: validates it and queues it on the actor. Resolves with the reply. */
  deliver(key: string, version: number, message: string, request: unknown, keyed?: KeyedCall): Promise<unknown> {
    return new Promise<unknown>((resolve, reject) => {
      this.dispatch(key, version, message, request, (error, reply) => (error ? reject(error) : resolve(reply)), keyed);
    });
  }

  /**
   * {@link deliver} without a promise, for the node's request path: `settle`
   * gets the outcome — synchronously when the actor is resident and the call
   * writes nothing, which is most calls to volatile actors.
   */
  dispatch(key: string, version: number, message: string, request: unknown, settle: Settle, keyed?: KeyedCall, span?: Span): void {
    let route: Route;
    try {
      route = admit(this.typeVersions, version, message, request);
    } catch (e) {
      this.fail({ version, route: undefined, settle }, toMoltError(e));
      return;
    }
    let firstSentAt: number | undefined;
    if (keyed?.resendAgeMs !== undefined) {
      firstSentAt = this.config.clock.now() - keyed.resendAgeMs;
      // Held up on its way, a resend is older than its age says; the caller's clock says how old.
      if (keyed.firstSentMs !== undefined && keyed.firstSentMs < firstSentAt) firstSentAt = keyed.firstSentMs;
    }
    const call: Call = { version, message, request, route, settle, keyed, span, firstSentAt };
    if (this.held) {
      if (this.held.length >= this.options.holdLimit) {
        this.fail(call, new MoltError(ErrorCode.Upgrading, `${this.name} is upgrading on this node and ${this.options.holdLimit} calls are already held; retry shortly`, { data: { type: this.name } }));
        return;
      }
      this.held.push({ key, call });
      return;
    }
    const cell = this.cellFor(key);
    const limit = this.options.mailboxLimit ?? DEFAULT_MAILBOX_LIMIT;
    if (cell.waiting >= limit) {
      this.fail(call, new MoltError(ErrorCode.Overloaded, `actor ${this.name}/${key} has ${cell.waiting} calls waiting, its limit; nothing was applied: retry after a pause`, { data: { scope: 'actor', limit } }));
      return;
    }
    cell.enqueue(call);
  }

  /** True if actor `key` has as many calls waiting as its mailbox holds: a new call would be refused. */
  mailboxFull(key: string): boolean {
    const cell = this.cells.get(key);
    return cell !== undefined && cell.waiting >= (this.options.mailboxLimit ?? DEFAULT_MAILBOX_LIMIT);
  }

  /** @internal Ends `call` with `error`, counted. */
  fail(call: { readonly version: number; readonly route: Route | undefined; readonly settle: Settle }, error: MoltError): void {
    this.counts.error(call.version, call.route, error.code);
    call.settle(error, undefined, call.route);
  }

  /** @internal Ends `call` with its reply, counted. */
  succeed(call: Call, reply: unknown): void {
    this.counts.ok(call.version, call.route);
    call.settle(undefined, reply, call.route);
  }

  private cellFor(key: string): ActorCell {
    let cell = this.cells.get(key);
    if (!cell) {
      cell = new ActorCell(this, key);
      this.cells.set(key, cell);
    }
    return cell;
  }

  /** @internal used by cells */
  get config(): ActorHostOptions {
    return this.options;
  }

  /** @internal KV key of an actor of this type. */
  storeKey(key: string): string {
    return stateKey(this.name, encodeKey(key));
  }

  /** @internal a cell reports a TF failure. */
  noteTransformFailure(key: string, e: MoltError): void {
    const from = Number(e.data.from);
    const to = Number(e.data.to);
    if (!this.transformFailures.has(key)) this.counts.transformFailed(from, to);
    this.transformFailures.set(key, { key, from, to, message: e.message });
    this.options.logger.error('transform failed', { type: this.name, key, error: e.message });
  }

  /** @internal a cell reports that its stored record cannot be read, or that it can be read again. */
  noteUnreadable(key: string, failure: UnreadableState | undefined): void {
    if (!failure) {
      this.unreadable.delete(key);
      return;
    }
    if (!this.unreadable.has(key)) this.options.logger.error('actor state unreadable', { type: this.name, key, revision: failure.revision, error: failure.message });
    this.unreadable.set(key, failure);
  }

  /** Drops actors of the given keys from memory (their state is durable). */
  evict(filter: (key: string) => boolean): void {
    for (const [key, cell] of this.cells) {
      if (filter(key) && cell.idle) this.cells.delete(key);
    }
  }

  /**
   * Forgets the in-memory state of the given keys, not their durable state:
   * idle actors are dropped, busy ones reload from the store before their
   * next batch. For when this node gains a shard: while another node owned
   * it, that node may have changed these actors, and a read answered from
   * memory would be stale (a write would not: its compare-and-set fails).
   */
  invalidate(filter: (key: string) => boolean): void {
    if (this.options.volatile) return; // memory is their only copy
    for (const [key, cell] of this.cells) {
      if (!filter(key)) continue;
      if (cell.idle) this.cells.delete(key);
      else cell.markStale();
    }
  }

  private scheduleSweep(): void {
    const every = Math.max(50, Math.min(this.options.passivateAfterMs / 2, 10_000));
    this.sweepTimer = this.options.clock.setTimeout(() => {
      this.passivateIdle();
      this.scheduleSweep();
    }, every);
  }

  /** Drops actors idle for longer than `passivateAfterMs`. */
  passivateIdle(): number {
    if (this.options.volatile) return 0; // their state lives only in memory
    const cutoff = this.options.clock.now() - this.options.passivateAfterMs;
    let n = 0;
    for (const [key, cell] of this.cells) {
      if (cell.idle && cell.lastUsed < cutoff) {
        this.cells.delete(key);
        n++;
      }
    }
    return n;
  }

  /**
   * Upgrades this type in place to `target` (must be current + 1 and known).
   * Held calls are delivered after the switch; actors whose TF fails keep
   * their old state and answer TransformFailed. Upgrading to the version this
   * node was rolled back from (or past it) ends the rollback.
   */
  async upgrade(target: number, options: { concurrency?: number } = {}): Promise<{ transformed: number; failed: number }> {
    if (target !== this.current + 1) {
      throw new MoltError(ErrorCode.OperationRefused, `${this.name} runs version ${this.current}; it can upgrade only to ${this.current + 1}, not ${target}`);
    }
    if (!this.versions.has(target)) {
      throw new MoltError(ErrorCode.OperationRefused, `${this.name}@${target} is not loaded on this node; load the upgrade first`);
    }
    return this.softRestart(target, () => {
      if (this.rolledBack !== undefined && target >= this.rolledBack) this.rolledBack = undefined;
    }, options);
  }

  /**
   * Rolls this type back in place to `target` (must be current − 1, and the
   * current version must declare `down`): the same soft restart as
   * {@link upgrade}. Calls are held, every actor finishes its batch, the
   * current object switches to `target`, resident actors are carried down
   * through `down` and written at `target` (compare-and-set), and the held
   * calls are re-admitted — callers of the version rolled back from are then
   * served by its future SO, which stays loaded.
   *
   * From then on this type is *rolled back* on this node: actors not in
   * memory whose state is stamped with the newer version are carried down
   * when next loaded. An actor whose `down` throws keeps its state at the
   * newer version, is counted and reported like a transform failure, and
   * answers TransformFailed.
   */
  async downgrade(target: number, options: { concurrency?: number } = {}): Promise<{ transformed: number; failed: number }> {
    const from = this.current;
    if (target !== from - 1) {
      throw new MoltError(ErrorCode.OperationRefused, `${this.name} runs version ${from}; it can roll back only to ${from - 1}, not ${target}`);
    }
    if (!this.versions.has(target)) {
      throw new MoltError(ErrorCode.OperationRefused, `${this.name}@${target} is not known on this node, so it cannot roll back to it`);
    }
    if (!this.versions.get(from)?.upgrade?.down) {
      throw new MoltError(ErrorCode.OperationRefused, `${this.name}@${from} declares no down transform (\`.from(v${target}, { down })\`): state written by version ${from} cannot be carried back to ${target}`);
    }
    return this.softRestart(target, () => {
      this.rolledBack = Math.max(this.rolledBack ?? 0, from);
      // Transforms up to the version left behind no longer run here.
      for (const [key, failure] of this.transformFailures) {
        if (failure.to > failure.from && failure.to > target) this.transformFailures.delete(key);
      }
    }, options);
  }

  /**
   * Marks this type rolled back from `from` on a node that already runs
   * `from − 1` (it had not upgraded when the rollout was rolled back): state
   * other nodes wrote at `from` is carried down when loaded here. Nothing is
   * restarted. `from` must be known and declare `down`.
   */
  markRolledBack(from: number): void {
    if (from !== this.current + 1) {
      throw new MoltError(ErrorCode.OperationRefused, `${this.name} runs version ${this.current}; only version ${this.current + 1} can be marked rolled back here, not ${from}`);
    }
    if (!this.versions.get(from)?.upgrade?.down) {
      throw new MoltError(ErrorCode.OperationRefused, `${this.name}@${from} is not loaded here or declares no down transform, so state it wrote cannot be carried down on this node`);
    }
    if ((this.rolledBack ?? 0) >= from) return;
    this.rolledBack = from;
    this.view = undefined;
  }

  /**
   * Ends a rollback on this node without upgrading (the rolled-back version is
   * being published again): state stamped with a newer version answers
   * VersionUnsupported (retryable) again, until this node upgrades. Down
   * failures recorded for those versions are forgotten.
   */
  clearRollback(): void {
    if (this.rolledBack === undefined) return;
    for (const [key, failure] of this.transformFailures) {
      if (failure.to < failure.from) this.transformFailures.delete(key);
    }
    this.rolledBack = undefined;
    this.view = undefined;
  }

  /**
   * The soft restart shared by upgrade and downgrade: hold new calls, let
   * every resident actor finish, switch the current version (and whatever
   * `switchState` changes with it), carry resident actors to it and write
   * them, then re-admit the held calls.
   */
  private async softRestart(target: number, switchState: () => void, options: { concurrency?: number }): Promise<{ transformed: number; failed: number }> {
    if (this.held) throw new MoltError(ErrorCode.OperationRefused, `${this.name} is already upgrading or rolling back`);
    this.held = [];
    let transformed = 0;
    let failed = 0;
    try {
      const cells = [...this.cells.values()];
      await Promise.all(cells.map((c) => c.quiesce()));
      const before = this.typeVersions;
      this.current = target;
      switchState();
      this.view = undefined;
      const after = this.typeVersions;
      // An index, not shift(): shift is O(n) and this runs over every resident actor.
      let next = 0;
      const worker = async () => {
        for (let cell = cells[next++]; cell; cell = cells[next++]) {
          const ok = await cell.carry(before, after);
          if (ok) transformed++;
          else failed++;
        }
      };
      await Promise.all(Array.from({ length: Math.max(1, options.concurrency ?? 64) }, worker));
    } finally {
      const held = this.held;
      this.held = undefined;
      for (const { key, call } of held) {
        // Re-admit: the route for the caller's version changed with the switch.
        try {
          const route = admit(this.typeVersions, call.version, call.message, call.request);
          this.cellFor(key).enqueue({ ...call, route });
        } catch (e) {
          this.fail(call, toMoltError(e));
        }
      }
    }
    return { transformed, failed };
  }

  /** SO states of resident actors follow the versions served (newly known, or retired). */
  private refreshSOStates(): void {
    for (const cell of this.cells.values()) cell.refreshSOStates(this.typeVersions);
  }

  /** Waits for every resident actor to finish its queued calls. */
  async drain(): Promise<void> {
    await Promise.all([...this.cells.values()].map((c) => c.quiesce()));
  }

  stop(): void {
    if (this.sweepTimer !== undefined) this.options.clock.clearTimeout(this.sweepTimer);
  }
}

/** A batch's turns, run on a working copy of the actor's state. */
interface BatchTurns {
  working: ActorState;
  /** True if some turn changed what is persisted. */
  dirty: boolean;
  outcomes: Array<{ ok: true; reply: unknown } | { ok: false; error: MoltError }>;
}

/** One actor in memory: its state, revision and mailbox. */
class ActorCell {
  private state: ActorState | undefined;
  private revision = 0;
  private failure: MoltError | undefined;
  /** Set when another node may have changed this actor since it was loaded: reload before the next batch. */
  private stale = false;
  private readonly queue: Call[] = [];
  /** The asynchronous rest of the mailbox's processing, while a batch waits for the store. */
  private running: Promise<void> | undefined;
  private pumping = false;
  /** Calls still to run one per batch (after a batch grew the state past what the store holds). */
  private soloCalls = 0;
  /** Idempotency keys of recent state-changing calls, kept in the state record. */
  private readonly remembered: RememberedCalls;
  lastUsed: number;
  private readonly storeKey: string;

  constructor(
    private readonly host: ActorHost,
    readonly key: string,
  ) {
    this.lastUsed = host.config.clock.now();
    this.storeKey = host.storeKey(key);
    this.remembered = new RememberedCalls(host.config.remember ?? DEFAULT_REMEMBER);
  }

  /** The bytes of this actor's record for `state`, with the calls it remembers (see RememberedCalls.encodeRecord). */
  private encodeRecord(state: ActorState, remembered: RememberedRecord | undefined): Uint8Array {
    return this.remembered.encodeRecord(this.host.config.codec, persist(state), remembered);
  }

  get idle(): boolean {
    return this.running === undefined && this.queue.length === 0;
  }

  /** Calls queued and not yet taken into a batch. */
  get waiting(): number {
    return this.queue.length;
  }

  markStale(): void {
    this.stale = true;
  }

  enqueue(call: Call): void {
    this.queue.push(call);
    this.lastUsed = this.host.config.clock.now();
    if (this.running === undefined && !this.pumping) this.pump(0);
  }

  /** Resolves when the mailbox is empty and nothing is being written. */
  async quiesce(): Promise<void> {
    while (this.running) await this.running;
  }

  refreshSOStates(types: TypeVersions): void {
    if (this.state) this.state = refreshSOStates(types, this.state);
  }

  private async load(types: TypeVersions): Promise<void> {
    const { config } = this.host;
    this.stale = false;
    if (config.volatile) {
      this.state = initialActorState(types);
      this.revision = 0;
      this.remembered.load(undefined);
      return;
    }
    const stored = await config.store.load(this.storeKey);
    this.revision = stored.revision;
    if (!stored.bytes) {
      this.state = initialActorState(types);
      this.remembered.load(undefined);
      return;
    }
    const persisted = this.readRecord(stored.bytes, stored.revision);
    const named = this.remembered.load(persisted as { ik?: unknown; ikf?: unknown; ikc?: unknown; ikx?: unknown });
    // Read after the state record: a checkpoint only grows, so this one holds at least what the record left to it.
    if (named !== undefined) {
      try {
        await this.loadCheckpoint(named);
      } catch (e) {
        // Loaded by halves: load again before the next call.
        this.state = undefined;
        throw e;
      }
    }
    try {
      this.state = restore(types, persisted, this.key);
      this.failure = undefined;
    } catch (e) {
      const err = toMoltError(e);
      if (err.code === ErrorCode.TransformFailed) {
        this.failure = err;
        this.host.noteTransformFailure(this.key, err);
      }
      throw err;
    }
  }

  /** Reads the checkpoint of remembered calls the state record names (at revision `named` or later). */
  private async loadCheckpoint(named: number): Promise<void> {
    const { config } = this.host;
    const stored = await config.store.load(checkpointKey(this.storeKey));
    let decoded: { ik?: unknown; ikf?: unknown; ikc?: unknown } | undefined;
    try {
      const value = stored.bytes ? config.codec.decode(stored.bytes) : undefined;
      if (typeof value === 'object' && value !== null && !Array.isArray(value)) decoded = value;
    } catch {
      decoded = undefined;
    }
    if (!this.remembered.loadCheckpoint(decoded, stored.revision)) {
      config.logger.warn('the checkpoint of remembered calls this actor names is missing or older than named: a resend of any call it held is answered OutcomeUnknown', {
        type: this.host.name,
        key: this.key,
        named,
        found: stored.revision,
      });
    }
  }

  /**
   * Before a write that would hold too many calls beyond the checkpoint:
   * writes the stored calls to the checkpoint (compare-and-set on its
   * revision) and returns what the state record then holds. The first time,
   * only reads the checkpoint's revision (see RememberedCalls.checkpointDue).
   * A checkpoint too large for the server is not written: the state record
   * keeps holding every call.
   */
  private async writeCheckpoint(remembered: RememberedRecord | undefined): Promise<RememberedRecord | undefined> {
    const due = this.remembered.checkpointDue(remembered);
    if (due === undefined) return remembered;
    const { config } = this.host;
    const key = checkpointKey(this.storeKey);
    if (due.revision === undefined) {
      this.remembered.learnCheckpointRevision((await config.store.load(key)).revision);
      return remembered;
    }
    try {
      const revision = await config.store.save(key, this.remembered.encodeCheckpoint(config.codec, due.calls), due.revision);
      return this.remembered.checkpointed(remembered!, due.calls, revision);
    } catch (e) {
      if (isMoltError(e, ErrorCode.StateTooLarge)) return remembered;
      throw e;
    }
  }

  /**
   * Decodes a stored record, or throws StateUnreadable: a record that is not
   * superjson, or not the shape `persist` writes (an integer version ≥ 1 and a
   * context), was not written by Molt, and restoring it could never produce
   * a state at any version this host runs.
   */
  private readRecord(bytes: Uint8Array, revision: number): PersistedActor {
    const { codec } = this.host.config;
    let problem: string;
    try {
      const value = codec.decode(bytes) as Partial<PersistedActor> | null;
      if (typeof value !== 'object' || value === null || Array.isArray(value)) problem = 'it is not an object';
      else if (!Number.isSafeInteger(value.v) || (value.v as number) < 1) problem = `its version field 'v' is ${JSON.stringify(value.v) ?? 'missing'}, not an integer ≥ 1`;
      else if (!('context' in value)) problem = "it has no 'context'";
      else {
        this.host.noteUnreadable(this.key, undefined);
        return value as PersistedActor;
      }
    } catch (e) {
      problem = `it is not a superjson document (${(e as Error).message})`;
    }
    const storeKey = this.storeKey;
    const message = `the stored state of actor ${this.host.name}/${this.key} (key '${storeKey}', revision ${revision}) cannot be read: ${problem}. Nothing was changed; repair or delete that record`;
    this.host.noteUnreadable(this.key, { key: this.key, revision, message });
    throw new MoltError(ErrorCode.StateUnreadable, message, { retryable: false, data: { type: this.host.name, key: this.key, storeKey, revision } });
  }

  /**
   * Runs the mailbox one batch at a time. A batch that needs no I/O — a
   * resident actor whose turns change nothing to persist, which is every call
   * to a volatile actor — runs synchronously and is answered before this
   * returns: no promise per call. A batch that must load or write the actor
   * continues asynchronously, and `running` holds that continuation until the
   * mailbox is empty again. `conflicts` counts compare-and-set retries since
   * the mailbox was last empty.
   */
  private pump(conflicts: number): void {
    const { config } = this.host;
    // A reply handler that enqueues on this actor synchronously must not start a second pump.
    this.pumping = true;
    try {
      while (this.queue.length > 0) {
        const types = this.host.typeVersions;
        if (!this.state || this.stale || this.state.version !== types.current) {
          this.running = this.loadThenPump(types, conflicts);
          return;
        }
        const batch = this.soloCalls > 0 ? (this.soloCalls--, this.queue.splice(0, 1)) : this.queue.splice(0);
        const turns = this.runBatch(types, batch);
        if (turns.dirty && !config.volatile) {
          this.running = this.commitThenPump(batch, turns, conflicts);
          return;
        }
        this.answer(batch, turns);
      }
      this.running = undefined;
    } finally {
      this.pumping = false;
    }
  }

  /** Runs every call of `batch` on a working copy of the state, all or nothing per call. */
  private runBatch(types: TypeVersions, batch: Call[]): BatchTurns {
    let working = this.state!;
    let dirty = false;
    const outcomes: BatchTurns['outcomes'] = [];
    for (const call of batch) {
      const key = call.keyed?.key;
      const seen = key === undefined ? undefined : this.remembered.find(key);
      if (seen) {
        // Applied before (maybe in this very batch): its reply, not a second run.
        outcomes.push({ ok: true, reply: seen.reply });
        continue;
      }
      if (key !== undefined && call.firstSentAt !== undefined) {
        const now = this.host.config.clock.now();
        const ageMs = now - call.firstSentAt;
        if (this.remembered.mayHaveForgotten(ageMs, now)) {
          // A resend of a call whose first attempt may have been applied and
          // since forgotten: running it could apply it twice. Say so instead.
          outcomes.push({
            ok: false,
            error: new MoltError(
              ErrorCode.OutcomeUnknown,
              `actor ${this.host.name}/${this.key} no longer remembers every call since this one was first sent ${ageMs} ms ago (it keeps ${this.remembered.describe()}); its first attempt may have been applied, so it was not run again`,
              { data: { forgotten: true, key } },
            ),
          });
          continue;
        }
      }
      try {
        const result = runTurn(types, working, call.route, call.version, call.message, call.request);
        working = result.state;
        dirty ||= result.changed;
        if (key !== undefined && result.changed) {
          // A volatile actor's change is applied once the batch is answered, with nothing to write first: remembered at once.
          if (this.host.config.volatile) this.remembered.remember(key, result.reply, this.host.config.clock.now());
          else this.remembered.stage(key, result.reply, this.host.config.clock.now());
        }
        outcomes.push({ ok: true, reply: result.reply });
      } catch (e) {
        outcomes.push({ ok: false, error: toMoltError(e, ErrorCode.ActorFailed) });
      }
    }
    return { working, dirty, outcomes };
  }

  /** Adopts the batch's state and answers its calls (after the write, for durable actors). */
  private answer(batch: Call[], turns: BatchTurns, written?: { remembered: RememberedRecord | undefined }): void {
    this.state = turns.working;
    // A durable batch's calls were remembered by its write; a volatile one's only here.
    if (written) this.remembered.commit(written.remembered);
    else this.remembered.absorbStaged(this.host.config.clock.now());
    this.lastUsed = this.host.config.clock.now();
    turns.outcomes.forEach((o, i) => {
      const call = batch[i]!;
      if (o.ok) this.host.succeed(call, o.reply);
      else this.host.fail(call, o.error);
    });
  }

  private async loadThenPump(types: TypeVersions, conflicts: number): Promise<void> {
    try {
      await this.load(types);
      if (this.state && this.state.version !== types.current && this.host.typeVersions === types) {
        // pump() would load again, and again: fail the calls instead of spinning.
        const loaded = this.state.version;
        this.state = undefined;
        throw new MoltError(ErrorCode.Internal, `actor ${this.host.name}/${this.key} loaded at version ${loaded}, not ${types.current}`);
      }
    } catch (e) {
      const err = toMoltError(e, ErrorCode.Unavailable);
      for (const call of this.queue.splice(0)) this.host.fail(call, err);
    }
    this.pump(conflicts);
  }

  /** Writes the batch's state with compare-and-set; answers the batch only once it is stored. */
  private async commitThenPump(batch: Call[], turns: BatchTurns, conflicts: number): Promise<void> {
    const { config } = this.host;
    let remembered = this.remembered.toRecord(config.clock.now());
    const span = config.tracer === undefined ? undefined : startWriteSpan(config.tracer, batch, this.host.name, this.key);
    try {
      remembered = await this.writeCheckpoint(remembered);
      this.revision = await config.store.save(this.storeKey, this.encodeRecord(turns.working, remembered), this.revision);
      if (span) endWriteSpan(span, this.revision, undefined);
    } catch (e) {
      if (span) endWriteSpan(span, undefined, e);
      // The batch will run again (or fail): what it staged is not remembered.
      this.remembered.discardStaged();
      if (e instanceof RevisionConflict && conflicts < MAX_CONFLICT_RETRIES) {
        // Another node wrote this actor (a placement move): reload and run the
        // batch again. None of its replies has been sent, so nothing is applied twice.
        this.host.noteConflict();
        this.state = undefined;
        this.queue.unshift(...batch);
        this.pump(conflicts + 1);
        return;
      }
      if (isMoltError(e, ErrorCode.StateTooLarge) && batch.length > 1) {
        // Nothing was written, and memory still holds the stored state. The
        // batch as a whole grew the state too far; its calls run one at a
        // time again, so only a call that itself grows it too far fails.
        this.queue.unshift(...batch);
        this.soloCalls = batch.length;
        this.pump(conflicts);
        return;
      }
      const err = isMoltError(e)
        ? e
        : new MoltError(ErrorCode.Unavailable, `actor ${this.host.name}/${this.key} could not commit: ${(e as Error).message}`, { cause: e });
      // Reload before the next call: memory may be ahead of the store (a
      // write too large for it was never sent, so memory is still right).
      if (!isMoltError(e, ErrorCode.StateTooLarge)) this.state = undefined;
      for (const call of batch) this.host.fail(call, err);
      this.pump(conflicts);
      return;
    }
    this.answer(batch, turns, { remembered });
    this.pump(conflicts);
  }

  /**
   * During a node upgrade or rollback: carries this resident actor from
   * `before` to `after` (TF chain up, or `down`) and writes it at the new
   * version. Returns false if its TF or `down` failed (its stored state stays
   * at the old version).
   */
  async carry(before: TypeVersions, after: TypeVersions): Promise<boolean> {
    const { config } = this.host;
    if (!this.state || this.state.version !== before.current) {
      this.state = undefined; // not loaded (or failed): it will be carried lazily when next used
      return true;
    }
    for (let attempt = 0; attempt <= MAX_CONFLICT_RETRIES; attempt++) {
      let next: ActorState;
      try {
        next = restore(after, persist(this.state), this.key);
      } catch (e) {
        const err = toMoltError(e);
        if (err.code === ErrorCode.TransformFailed) this.host.noteTransformFailure(this.key, err);
        this.state = undefined;
        return false;
      }
      if (config.volatile) {
        this.state = next;
        return true;
      }
      try {
        this.revision = await config.store.save(this.storeKey, this.encodeRecord(next, this.remembered.toRecord(config.clock.now())), this.revision);
        this.state = next;
        return true;
      } catch (e) {
        if (!(e instanceof RevisionConflict)) {
          this.state = undefined;
          config.logger.warn('could not write the carried actor; it will be carried when next loaded', { type: this.host.name, key: this.key, error: String(e) });
          return true;
        }
        // Someone else wrote it: reload at whatever version it is now.
        try {
          await this.load(before);
        } catch {
          this.state = undefined;
          return true;
        }
        if (this.state!.version !== before.current) return true;
      }
    }
    this.state = undefined;
    return true;
  }
}
