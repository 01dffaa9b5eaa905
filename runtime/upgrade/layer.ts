/**
 * The upgrade layer: every message passes here. It decides, from the caller's
 * interface version and the versions this node knows, whether the call goes
 * to the current object natively, through the past simulation object, through
 * the future SO, or through two future SOs chained — and runs it as one
 * all-or-nothing turn on the actor's in-memory state.
 *
 * Everything here is synchronous and pure with respect to the outside world:
 * the actor host persists the turn's result before anyone sees a reply.
 *
 * @module
 */
import { createActor, initialTransition, type AnyMachineSnapshot, type AnyStateMachine } from 'xstate';
import { ErrorCode, MoltError, isMoltError } from '../errors.ts';
import { checkSchema } from '../schema.ts';
import type { AnyActorVersion, AnySimulationObject, Handle } from '../define/version.ts';
import { isDisallow } from '../define/version.ts';
import type { MessageSpecs } from '../define/messages.ts';

/** How a call is served. */
export type Route = 'native' | 'past' | 'future' | 'future2';

/** An actor's in-memory state: the current object's snapshot and its SOs' states. */
export interface ActorState {
  /** The version of the current object (the node's native version when loaded). */
  readonly version: number;
  readonly snapshot: AnyMachineSnapshot;
  /** State of the past SO (serving version − 1). */
  readonly past: unknown;
  /** States of future SOs by the version they serve. */
  readonly future: Readonly<Record<number, unknown>>;
}

/** A type's versions as one node knows them, and which of them it serves. */
export interface TypeVersions {
  readonly name: string;
  /** Known versions by number: the node's own chain plus loaded upgrades. */
  readonly byVersion: ReadonlyMap<number, AnyActorVersion>;
  /** The version the node runs natively. */
  readonly current: number;
  /** Versions retired by an operator. */
  readonly retired: ReadonlySet<number>;
  /**
   * Set when this node was rolled back (`molt rollback`): the highest version
   * it was rolled back from. State stamped with a version above `current` and
   * up to this one is carried down through each version's `down` when loaded.
   * Unset, such state answers a retryable VersionUnsupported: a node that is
   * merely behind in a rolling upgrade must never carry state down, because
   * `down` may drop what only the newer version can represent.
   */
  readonly rolledBackFrom?: number;
  /**
   * Whether an upgrade to `version` (newer than `current`) may still arrive,
   * as the node's upgrade manager knows from the published descriptors (see
   * runtime/manager/expectations.ts). Unset: it may. When it says no, a call
   * of that version is not retryable: nobody published it.
   */
  readonly upgradeMayArrive?: (version: number) => boolean;
}

/** The persisted form of an actor (what goes to KV, via the codec). */
export interface PersistedActor {
  /** Version of the object that wrote `value` and `context`. */
  v: number;
  value: unknown;
  context: unknown;
  /** SO states: the past SO's, and future SOs' by version. */
  so?: { past?: unknown; future?: Record<number, unknown> };
}

/** The versions a node at `types.current` answers, for error messages. */
export function servedVersions(types: TypeVersions): number[] {
  const out: number[] = [];
  for (const v of [types.current - 1, types.current, types.current + 1, types.current + 2]) {
    if (v >= 1 && routeFor(types, v) !== undefined) out.push(v);
  }
  return out;
}

function pastSO(types: TypeVersions): AnySimulationObject | 'compatible' | undefined {
  const current = types.byVersion.get(types.current);
  if (current?.upgrade?.compatible) return 'compatible';
  return current?.upgrade?.past;
}

function futureSO(types: TypeVersions, version: number): AnySimulationObject | undefined {
  return types.byVersion.get(version)?.upgrade?.future;
}

/** The route for calls of `version`, or undefined if this node cannot serve it. */
export function routeFor(types: TypeVersions, version: number): Route | undefined {
  if (types.retired.has(version)) return undefined;
  const d = version - types.current;
  if (d === 0) return 'native';
  if (d === -1) return pastSO(types) ? 'past' : undefined;
  if (d === 1) return futureSO(types, version) ? 'future' : undefined;
  if (d === 2) return futureSO(types, version) && futureSO(types, version - 1) ? 'future2' : undefined;
  return undefined;
}

/** Throws the typed error for a call of `version` this node does not serve. */
export function unsupported(types: TypeVersions, version: number): MoltError {
  if (types.retired.has(version)) {
    return new MoltError(ErrorCode.VersionRetired, `${types.name}@${version} was retired; upgrade the caller to one of versions ${servedVersions(types).join(', ')}`, {
      retryable: false,
      data: { type: types.name, version, served: servedVersions(types) },
    });
  }
  const served = servedVersions(types);
  // A newer version than we know may arrive with an upgrade (unless none is published); an older one will never come back.
  const published = version <= types.current || (types.upgradeMayArrive?.(version) ?? true);
  const retryable = version > types.current && published;
  const why = version <= types.current
    ? `this node runs ${types.name}@${types.current} and no longer simulates version ${version}`
    : published
      ? `this node runs ${types.name}@${types.current} and has not (yet) loaded the upgrade to ${version}`
      : `this node runs ${types.name}@${types.current} and no upgrade to ${types.name}@${version} is published`;
  return new MoltError(ErrorCode.VersionUnsupported, `${why}; it serves versions ${served.join(', ')}`, {
    retryable,
    data: { type: types.name, version, current: types.current, served },
  });
}

/**
 * Checks a call before it reaches the actor: version served, message known in
 * that version's interface, payload valid. Returns the route.
 */
export function admit(types: TypeVersions, version: number, message: string, request: unknown): Route {
  const route = routeFor(types, version);
  if (route === undefined) throw unsupported(types, version);
  const iface = types.byVersion.get(version)!;
  const spec = Object.hasOwn(iface.messages, message) ? iface.messages[message] : undefined;
  if (!spec) {
    throw new MoltError(ErrorCode.UnknownMessage, `${types.name}@${version} has no message '${message}'; it has: ${Object.keys(iface.messages).join(', ')}`, {
      data: { type: types.name, version, message },
    });
  }
  const check = checkSchema(spec.request, request, { nonFinite: spec.nonFinite === true });
  if (!check.ok) {
    const where = check.path ? `field '${check.path}'` : 'the payload';
    throw new MoltError(ErrorCode.InvalidPayload, `${types.name}@${version} ${message}: ${where} is invalid: ${check.problem}`, {
      data: { type: types.name, version, message, path: check.path, problem: check.problem },
    });
  }
  return route;
}

/** A fresh actor at the node's current version. */
export function initialActorState(types: TypeVersions): ActorState {
  const def = types.byVersion.get(types.current)!;
  const [snapshot] = initialTransition(def.machine);
  return { version: types.current, snapshot, past: initialSOState(pastSO(types)), future: initialFutureStates(types, {}) };
}

function initialSOState(so: AnySimulationObject | 'compatible' | undefined): unknown {
  return so && so !== 'compatible' ? so.initialState : undefined;
}

function initialFutureStates(types: TypeVersions, existing: Readonly<Record<number, unknown>>): Record<number, unknown> {
  const out: Record<number, unknown> = {};
  for (const v of [types.current + 1, types.current + 2]) {
    const so = futureSO(types, v);
    if (so) out[v] = Object.hasOwn(existing, v) ? existing[v] : so.initialState;
  }
  return out;
}

/**
 * Brings a persisted actor to the node's current version, running the TF of
 * each step in order (v1 loaded by a v3 node runs TF 1→2, then 2→3).
 * Throws TransformFailed (nothing is written) if a TF throws.
 */
export function restore(types: TypeVersions, persisted: PersistedActor, key: string): ActorState {
  let { v, value, context } = persisted;
  let past: unknown = persisted.so?.past;
  let future: Record<number, unknown> = { ...(persisted.so?.future ?? {}) };
  if (v > types.current) {
    if (types.rolledBackFrom === undefined || v > types.rolledBackFrom) {
      throw new MoltError(ErrorCode.VersionUnsupported, `actor ${types.name}/${key} was written by version ${v}, but this node runs version ${types.current}; it will be served once this node upgrades`, {
        retryable: true,
        data: { type: types.name, key, stateVersion: v, current: types.current, served: servedVersions(types) },
      });
    }
    return restoreDown(types, persisted, key);
  }
  while (v < types.current) {
    const next = types.byVersion.get(v + 1);
    if (!next) throw new MoltError(ErrorCode.Internal, `no definition of ${types.name}@${v + 1} to carry state from version ${v}`);
    const tf = next.upgrade?.transform;
    let out: { context: unknown; value?: unknown; past?: unknown };
    try {
      out = tf ? tf({ value, context, future: future[v + 1] }) : { context, value };
    } catch (e) {
      throw new MoltError(ErrorCode.TransformFailed, `transform ${types.name} ${v}→${v + 1} failed for actor '${key}': ${e instanceof Error ? e.message : String(e)}. Its state is untouched at version ${v}; publish a fixed upgrade.`, {
        retryable: false,
        cause: e,
        data: { type: types.name, key, from: v, to: v + 1 },
      });
    }
    const nextPast = next.upgrade?.past;
    past = out.past !== undefined ? out.past : nextPast ? nextPast.initialState : undefined;
    const { [v + 1]: _consumed, ...rest } = future;
    future = rest;
    value = out.value !== undefined ? out.value : value;
    context = out.context;
    v += 1;
  }
  const def = types.byVersion.get(types.current)!;
  const snapshot = resolveSnapshot(def, value, context, key);
  return { version: v, snapshot, past, future: initialFutureStates(types, future) };
}

/**
 * Carries state written by a newer version down to the node's current one on
 * a node that was rolled back: each version's `down`, newest first (state of
 * v3 loaded by a node rolled back to v1 runs down 3→2, then 2→1). Throws
 * TransformFailed (nothing is written) if a `down` throws.
 *
 * SO states do not survive the step down: the past SO state belongs to the
 * newer version's past SO, and no `down` produces future SO state, so every
 * SO starts from its initial state (the future SO of the version rolled back
 * from serves its callers again, from scratch).
 */
function restoreDown(types: TypeVersions, persisted: PersistedActor, key: string): ActorState {
  let { v, value, context } = persisted;
  while (v > types.current) {
    const down = types.byVersion.get(v)?.upgrade?.down;
    if (!down) {
      throw new MoltError(ErrorCode.TransformFailed, `actor ${types.name}/${key} was written by version ${v}, and ${types.name}@${v} ${types.byVersion.has(v) ? 'declares no down transform' : 'is not loaded on this node'}, so it cannot be carried down to ${v - 1}. Its state is untouched at version ${v}.`, {
        retryable: false,
        data: { type: types.name, key, from: v, to: v - 1 },
      });
    }
    let out: { context: unknown; value?: unknown };
    try {
      out = down({ value, context });
    } catch (e) {
      throw new MoltError(ErrorCode.TransformFailed, `down transform ${types.name} ${v}→${v - 1} failed for actor '${key}': ${e instanceof Error ? e.message : String(e)}. Its state is untouched at version ${v}; publish version ${v} again to serve it.`, {
        retryable: false,
        cause: e,
        data: { type: types.name, key, from: v, to: v - 1 },
      });
    }
    value = out.value !== undefined ? out.value : value;
    context = out.context;
    v -= 1;
  }
  const def = types.byVersion.get(types.current)!;
  const snapshot = resolveSnapshot(def, value, context, key);
  return { version: v, snapshot, past: initialSOState(pastSO(types)), future: initialFutureStates(types, {}) };
}

function resolveSnapshot(def: AnyActorVersion, value: unknown, context: unknown, key: string): AnyMachineSnapshot {
  try {
    const snapshot = def.machine.resolveState({ value: value as never, context: context as never });
    if (snapshot.status === 'error') throw new Error(String(snapshot.error));
    return snapshot;
  } catch {
    // The stored state value does not exist in this machine: keep the context
    // and start from the machine's initial state value.
    const [initial] = initialTransition(def.machine);
    try {
      return def.machine.resolveState({ value: initial.value, context: context as never });
    } catch (e) {
      throw new MoltError(ErrorCode.ActorFailed, `state of ${def.type}/${key} cannot be restored into version ${def.version}: ${e instanceof Error ? e.message : String(e)}`, { cause: e });
    }
  }
}

/** The persisted form of an in-memory actor. */
export function persist(state: ActorState): PersistedActor {
  const so: PersistedActor['so'] = {};
  if (state.past !== undefined) so.past = state.past;
  // Stateless SOs have `undefined` state: leave them out, so the record stays
  // plain JSON (an `undefined` anywhere sends the codec down superjson's slow path).
  let future: Record<number, unknown> | undefined;
  for (const version in state.future) {
    const soState = state.future[version];
    if (soState !== undefined) (future ??= {})[version] = soState;
  }
  if (future) so.future = future;
  const out: PersistedActor = { v: state.version, value: state.snapshot.value, context: state.snapshot.context };
  if (so.past !== undefined || so.future) out.so = so;
  return out;
}

/** The outcome of one call. */
export interface TurnResult {
  readonly state: ActorState;
  readonly reply: unknown;
  /** False if the call changed nothing that must be persisted. */
  readonly changed: boolean;
}

/**
 * Runs one call as an all-or-nothing turn. On any error (the machine threw, an
 * SO disallowed) the returned error carries no state: the caller keeps `state`.
 */
export function runTurn(types: TypeVersions, state: ActorState, route: Route, version: number, message: string, request: unknown): TurnResult {
  const turn = new Turn(types, state);
  const reply = route === 'native' ? turn.native(message, request, undefined) : turn.simulated(version, message, request);
  return { state: turn.result(), reply, changed: turn.changed };
}

/** Scratch state of one turn; committed only if the turn succeeds. */
class Turn {
  changed = false;
  private snapshot: AnyMachineSnapshot;
  private past: unknown;
  private future: Record<number, unknown>;
  private readonly base: ActorState;

  constructor(
    private readonly types: TypeVersions,
    state: ActorState,
  ) {
    this.base = state;
    this.snapshot = state.snapshot;
    this.past = state.past;
    this.future = state.future as Record<number, unknown>;
  }

  result(): ActorState {
    if (!this.changed) return this.base;
    return { version: this.base.version, snapshot: this.snapshot, past: this.past, future: this.future };
  }

  /** A call to the current object. `caller` is the SO making it, if any (it is not told of its own call). */
  native(message: string, request: unknown, caller: number | undefined): unknown {
    const def = this.types.byVersion.get(this.types.current)!;
    const previous = this.snapshot;
    let next: AnyMachineSnapshot;
    try {
      const event = { ...(request as object), type: message };
      const [snapshot, actions] = transitionOnce(def.machine, previous, event);
      for (const action of actions) {
        const exec = (action as { exec?: (info: unknown, params: unknown) => void }).exec;
        if (exec) exec((action as { info?: unknown }).info, (action as { params?: unknown }).params);
      }
      if (snapshot.status === 'error') throw snapshot.error;
      next = snapshot;
    } catch (e) {
      throw actorFailed(this.types.name, this.types.current, message, e);
    }
    if (next.context !== previous.context || !sameValue(next.value, previous.value)) {
      this.snapshot = next;
      this.changed = true;
    }
    const replyFn = (def.replies as Record<string, ((args: unknown) => unknown) | undefined>)[message];
    let reply: unknown;
    if (replyFn) {
      try {
        reply = replyFn({ snapshot: next, previous, request });
      } catch (e) {
        throw actorFailed(this.types.name, this.types.current, message, e);
      }
    }
    this.notifyObservers(this.types.current, message, request, reply, caller);
    return reply;
  }

  /** A call of `version` served by the SO for that version. */
  simulated(version: number, message: string, request: unknown): unknown {
    const current = this.types.current;
    if (version === current) return this.native(message, request, undefined);
    const isPast = version === current - 1;
    const so = isPast ? this.types.byVersion.get(current)?.upgrade?.past : this.types.byVersion.get(version)?.upgrade?.future;
    if (isPast && !so && this.types.byVersion.get(current)?.upgrade?.compatible) {
      return this.native(message, request, undefined);
    }
    if (!so) throw unsupported(this.types, version);
    const targetVersion = isPast ? current : version - 1;
    const handler = (so.handlers as Record<string, unknown>)[message];
    if (handler === undefined) throw new MoltError(ErrorCode.UnknownMessage, `${this.types.name}@${version} has no message '${message}'`);
    if (isDisallow(handler)) throw disallowed(this.types.name, version, message, handler.reason);
    const reply = (handler as (call: unknown) => unknown)({
      request,
      target: this.handle(targetVersion, version),
      state: this.soState(version),
      setState: (next: unknown) => this.setSOState(version, next),
    });
    if (isDisallow(reply)) throw disallowed(this.types.name, version, message, reply.reason);
    this.notifyObservers(version, message, request, reply, undefined);
    return reply;
  }

  private handle(targetVersion: number, caller: number): Handle<MessageSpecs> {
    const def = this.types.byVersion.get(targetVersion)!;
    const handle: Record<string, (request?: unknown) => unknown> = {};
    for (const name of Object.keys(def.messages)) {
      handle[name] = (request: unknown = {}) =>
        targetVersion === this.types.current ? this.native(name, request, caller) : this.simulatedFrom(targetVersion, name, request, caller);
    }
    return handle as Handle<MessageSpecs>;
  }

  /** A future SO calling the next future SO down the chain. */
  private simulatedFrom(version: number, message: string, request: unknown, caller: number): unknown {
    const so = this.types.byVersion.get(version)?.upgrade?.future;
    if (!so) throw unsupported(this.types, version);
    const handler = (so.handlers as Record<string, unknown>)[message];
    if (isDisallow(handler)) throw disallowed(this.types.name, version, message, handler.reason);
    const reply = (handler as (call: unknown) => unknown)({
      request,
      target: this.handle(version - 1, version),
      state: this.soState(version),
      setState: (next: unknown) => this.setSOState(version, next),
    });
    if (isDisallow(reply)) throw disallowed(this.types.name, version, message, reply.reason);
    this.notifyObservers(version, message, request, reply, caller);
    return reply;
  }

  private soState(version: number): unknown {
    return version < this.types.current ? this.past : this.future[version];
  }

  private setSOState(version: number, next: unknown): void {
    this.changed = true;
    if (version < this.types.current) this.past = next;
    else this.future = { ...this.future, [version]: next };
  }

  /** Tells interceptor SOs whose target is `version` about a call made to it. */
  private notifyObservers(version: number, message: string, request: unknown, reply: unknown, caller: number | undefined): void {
    const current = this.types.current;
    const observers: Array<[number, AnySimulationObject | undefined]> = [];
    if (version === current) observers.push([current - 1, this.types.byVersion.get(current)?.upgrade?.past]);
    observers.push([version + 1, this.types.byVersion.get(version + 1)?.upgrade?.future]);
    for (const [soVersion, so] of observers) {
      if (!so?.observe || soVersion === caller) continue;
      const route = routeFor(this.types, soVersion);
      if (route === undefined || route === 'native') continue;
      try {
        so.observe({ message, request, reply, state: this.soState(soVersion), setState: (next: unknown) => this.setSOState(soVersion, next) } as never);
      } catch (e) {
        throw actorFailed(this.types.name, soVersion, message, e, 'an interceptor simulation object');
      }
    }
  }
}

/**
 * One inert actor scope per machine, reused by every transition of that
 * machine. xstate's `transition()` builds a throw-away actor for each call —
 * most of a node's CPU and garbage per message. A transition of a Molt
 * machine reads only `self` and `system` from its scope (no children, no
 * delays) and hands the actions to execute to `actionExecutor`, so one scope
 * serves every actor of the machine. A cache keyed by the machine object
 * (not global state: it holds nothing a runtime could observe).
 */
const scopes = new WeakMap<AnyStateMachine, { scope: unknown; actions: unknown[] }>();

function transitionOnce(machine: AnyStateMachine, snapshot: AnyMachineSnapshot, event: object): [AnyMachineSnapshot, unknown[]] {
  let cached = scopes.get(machine);
  if (!cached) {
    const self = createActor(machine);
    const actions: unknown[] = [];
    const noop = () => {};
    const scope = { self, system: self.system, id: '', sessionId: '', logger: noop, defer: noop, stopChild: noop, emit: noop, actionExecutor: (a: unknown) => actions.push(a) };
    cached = { scope, actions };
    scopes.set(machine, cached);
  }
  cached.actions.length = 0;
  const next = machine.transition(snapshot, event as never, cached.scope as never) as AnyMachineSnapshot;
  return [next, cached.actions.length === 0 ? [] : cached.actions.splice(0)];
}

/**
 * Equality of two xstate state values (a state name, or an object of nested
 * values). xstate builds a new value object on every transition, even when the
 * machine stays where it was, so identity alone would count every call as a change.
 */
function sameValue(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false;
  const left = a as Record<string, unknown>;
  const right = b as Record<string, unknown>;
  let count = 0;
  for (const key in left) {
    if (!Object.hasOwn(right, key) || !sameValue(left[key], right[key])) return false;
    count++;
  }
  for (const _ in right) count--;
  return count === 0;
}

function disallowed(type: string, version: number, message: string, reason: string): MoltError {
  return new MoltError(ErrorCode.Disallowed, `${type}@${version} ${message} is disallowed on this node: ${reason}`, {
    retryable: false,
    data: { type, version, message, reason },
  });
}

function actorFailed(type: string, version: number, message: string, e: unknown, who = 'the actor'): MoltError {
  if (isMoltError(e)) return e;
  const detail = e instanceof Error ? e.message : String(e);
  return new MoltError(ErrorCode.ActorFailed, `${who} (${type}@${version}) threw while handling '${message}': ${detail}. The message was not applied; the actor keeps its previous state.`, {
    retryable: false,
    data: { type, version, message, detail },
  });
}
