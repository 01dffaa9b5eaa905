/**
 * The upgrade layer: every message passes here. It decides, from the caller's
 * interface version and the versions this node knows, how the call is served —
 * by the current object natively, or through a chain of simulation objects:
 * the past SOs of every version from the caller's + 1 up to the node's, or the
 * future SOs of the caller's version and the ones below it — and runs it as
 * one all-or-nothing turn on the actor's in-memory state.
 *
 * That decision is made in one place, {@link routeFor}, from a table built
 * once per {@link TypeVersions} (a node rebuilds its view only when its
 * versions change). The host, `molt compat` and `molt/testing` all read it,
 * so what the matrix shows is what a node does.
 *
 * Everything here is synchronous and pure with respect to the outside world:
 * the actor host persists the turn's result before anyone sees a reply.
 *
 * @module
 */
import { initialTransition, type AnyMachineSnapshot } from 'xstate';
import { ErrorCode, MoltError, isMoltError } from '../errors.ts';
import { checkSchema } from '../schema.ts';
import type { AnyActorVersion, AnySimulationObject, Handle } from '../define/version.ts';
import { isDisallow } from '../define/version.ts';
import { machineStep } from './machine-step.ts';
import type { MessageSpecs } from '../define/messages.ts';

/**
 * How a node serves the calls of one interface version. A route names only
 * the first step; the version the call goes on to (`target`) has a route of
 * its own, so a chain is followed one route at a time until it reaches the
 * current object. `steps` is how many versions the caller is away from the
 * node's current version (3: a v1 caller on a v4 node, through three past SOs).
 */
export type Route =
  /** The current object: the caller speaks the node's version. */
  | { readonly kind: 'native'; readonly steps: 0 }
  /** Version `target` (the caller's + 1) declares itself compatible: the call goes on to it unchanged. */
  | { readonly kind: 'compatible'; readonly target: number; readonly steps: number }
  /** The past SO of version `target` (the caller's + 1): it serves the call by calling version `target`. */
  | { readonly kind: 'past'; readonly so: AnySimulationObject; readonly target: number; readonly steps: number }
  /** The future SO of the caller's version: it serves the call by calling version `target` (the caller's − 1). */
  | { readonly kind: 'future'; readonly so: AnySimulationObject; readonly target: number; readonly steps: number };

/** The route of the node's own version. One shared value: a native call allocates no route. */
export const nativeRoute: Route = Object.freeze({ kind: 'native', steps: 0 });

/** How far ahead of its version a node serves callers: the future SOs of i+1 and of i+2, chained. */
export const MAX_FUTURE_STEPS = 2;

/** An actor's in-memory state: the current object's snapshot and its SOs' states. */
export interface ActorState {
  /** The version of the current object (the node's native version when loaded). */
  readonly version: number;
  readonly snapshot: AnyMachineSnapshot;
  /** States of the past SOs in service, by the version they serve (version − 1, − 2, …). */
  readonly past: Readonly<Record<number, unknown>>;
  /** States of the future SOs in service, by the version they serve. */
  readonly future: Readonly<Record<number, unknown>>;
}

/**
 * A type's versions as one node knows them, and which of them it serves.
 * Treat it as a snapshot: the layer caches its routes per object, so build a
 * new one when the versions, the current version or the retirements change.
 */
export interface TypeVersions {
  readonly name: string;
  /** Known versions by number: the node's own chain plus loaded upgrades. */
  readonly byVersion: ReadonlyMap<number, AnyActorVersion>;
  /** The version the node runs natively. */
  readonly current: number;
  /** Versions retired by an operator. Retiring a version also ends the service of every version before it. */
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
  /**
   * SO states: `past` is the state of the past SO serving `v − 1`; `older`
   * those of the past SOs further down the chain, and `future` those of the
   * future SOs, by the version they serve.
   */
  so?: { past?: unknown; older?: Record<number, unknown>; future?: Record<number, unknown> };
}

/** An interceptor SO in service, watching the calls made to one interface version. */
interface Observer {
  /** The version the SO serves: calls it makes itself are not reported to it. */
  readonly served: number;
  readonly so: AnySimulationObject;
}

/** Everything the layer derives from one {@link TypeVersions}, computed once. */
interface Plan {
  /** Routes of every version served other than the current one. */
  readonly routes: ReadonlyMap<number, Route>;
  /** Every version served, oldest first. */
  readonly served: readonly number[];
  /** The highest retired version below the current one (0 if none): it and every version before it are retired. */
  readonly retiredUpTo: number;
  /** Why versions below the oldest served one are not served (a sentence), if not because of a retirement. */
  readonly pastEnd: string | undefined;
  /** Interceptor SOs in service, by the interface version whose calls they watch. */
  readonly observers: ReadonlyMap<number, readonly Observer[]>;
  /** SOs in service, by the version they serve, for their states. */
  readonly pastSOs: ReadonlyArray<readonly [number, AnySimulationObject]>;
  readonly futureSOs: ReadonlyArray<readonly [number, AnySimulationObject]>;
  /** `target` handles by the version of the SO that uses them, made on first use. */
  readonly handles: Map<number, Handle<MessageSpecs>>;
  /** The turn running an SO, which the handles call into. */
  turn: Turn | undefined;
}

/**
 * The plans of the views in use, keyed by the view object: a cache, not state
 * a runtime could observe (the same view always gives the same plan).
 */
const plans = new WeakMap<TypeVersions, Plan>();

function planOf(types: TypeVersions): Plan {
  let plan = plans.get(types);
  if (plan === undefined) {
    plan = buildPlan(types);
    plans.set(types, plan);
  }
  return plan;
}

/**
 * The one rule of which SO serves which version. Callers of an older version
 * k go through the past SO of k + 1 (which belongs to the newer version and
 * calls it), chained down from the node's version to the oldest version that
 * is known, not retired and reached by an unbroken chain of past SOs (or
 * `compatible` steps). Callers of a newer version k go through the future SO
 * of k (which belongs to the caller's version and calls k − 1), chained up to
 * {@link MAX_FUTURE_STEPS} versions ahead.
 */
function buildPlan(types: TypeVersions): Plan {
  const { byVersion, current, retired, name } = types;
  const routes = new Map<number, Route>();
  let retiredUpTo = 0;
  for (const v of retired) if (v < current && v > retiredUpTo) retiredUpTo = v;
  let pastEnd: string | undefined;
  for (let v = current - 1; v > retiredUpTo; v--) {
    const upper = byVersion.get(v + 1)!.upgrade;
    const steps = current - v;
    if (!byVersion.has(v)) {
      pastEnd = `${name}@${v} is not known on this node`;
      break;
    }
    if (upper?.compatible) routes.set(v, { kind: 'compatible', target: v + 1, steps });
    else if (upper?.past) routes.set(v, { kind: 'past', so: upper.past, target: v + 1, steps });
    else {
      pastEnd = `${name}@${v + 1} declares no past SO for callers of ${v} (and is not declared compatible with it)`;
      break;
    }
  }
  for (let v = current + 1; v <= current + MAX_FUTURE_STEPS && !retired.has(v); v++) {
    const so = byVersion.get(v)?.upgrade?.future;
    if (!so) break;
    routes.set(v, { kind: 'future', so, target: v - 1, steps: v - current });
  }
  const observers = new Map<number, Observer[]>();
  const pastSOs: Array<readonly [number, AnySimulationObject]> = [];
  const futureSOs: Array<readonly [number, AnySimulationObject]> = [];
  for (const [served, route] of routes) {
    if (route.kind !== 'past' && route.kind !== 'future') continue;
    (route.kind === 'past' ? pastSOs : futureSOs).push([served, route.so]);
    if (route.so.observe) {
      const watchers = observers.get(route.target) ?? [];
      watchers.push({ served, so: route.so });
      observers.set(route.target, watchers);
    }
  }
  const served = [...routes.keys(), current].sort((a, b) => a - b);
  return { routes, served, retiredUpTo, pastEnd, observers, pastSOs, futureSOs, handles: new Map(), turn: undefined };
}

/**
 * How this node serves calls of `version`, or undefined if it does not: the
 * one place that decides it.
 */
export function routeFor(types: TypeVersions, version: number): Route | undefined {
  if (version === types.current) return nativeRoute;
  return planOf(types).routes.get(version);
}

/** The versions a node at `types.current` answers, oldest first. */
export function servedVersions(types: TypeVersions): number[] {
  return [...planOf(types).served];
}

/** The typed error for a call of `version` this node does not serve. */
export function unsupported(types: TypeVersions, version: number): MoltError {
  const plan = planOf(types);
  const served = [...plan.served];
  if (types.retired.has(version) || (version < types.current && version <= plan.retiredUpTo)) {
    const what = types.retired.has(version)
      ? `${types.name}@${version} was retired`
      : `${types.name}@${version} is no longer served: ${types.name}@${plan.retiredUpTo} was retired, and every version before it with it`;
    return new MoltError(ErrorCode.VersionRetired, `${what}; upgrade the caller to one of versions ${served.join(', ')}`, {
      retryable: false,
      data: { type: types.name, version, served },
    });
  }
  // A newer version than we know may arrive with an upgrade (unless none is published); an older one will never come back.
  const published = version <= types.current || (types.upgradeMayArrive?.(version) ?? true);
  const retryable = version > types.current && published;
  const why = version <= types.current
    ? `this node runs ${types.name}@${types.current} and no longer simulates version ${version}${plan.pastEnd ? ` (${plan.pastEnd})` : ''}`
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
  const plan = planOf(types);
  return { version: types.current, snapshot, past: soStates(plan.pastSOs, NONE), future: soStates(plan.futureSOs, NONE) };
}

/** The SO states of an actor without any (shared: most types have no SO state). */
const NONE: Readonly<Record<number, unknown>> = Object.freeze({});

/**
 * The states of the SOs in service: each keeps the state it has in
 * `existing`, a newly served one starts from its initial state, and the states
 * of SOs no longer in service (a retired version's) are dropped.
 */
function soStates(sos: Plan['pastSOs'], existing: Readonly<Record<number, unknown>>): Readonly<Record<number, unknown>> {
  let out: Record<number, unknown> | undefined;
  for (const [served, so] of sos) {
    const state = Object.hasOwn(existing, served) ? existing[served] : so.initialState;
    if (state !== undefined) (out ??= {})[served] = state;
  }
  return out ?? NONE;
}

/**
 * An actor's SO states after the versions its node serves changed (a newer
 * version became known, or an older one was retired). An actor at another
 * version than the node's (not yet carried by an upgrade under way) is left
 * as it is: {@link restore} computes its SO states when it is carried, and
 * its future SO state is still to be handed to the TF.
 */
export function refreshSOStates(types: TypeVersions, state: ActorState): ActorState {
  if (state.version !== types.current) return state;
  const plan = planOf(types);
  return { ...state, past: soStates(plan.pastSOs, state.past), future: soStates(plan.futureSOs, state.future) };
}

/**
 * Brings a persisted actor to the node's current version, running the TF of
 * each step in order (v1 loaded by a v3 node runs TF 1→2, then 2→3).
 * Throws TransformFailed (nothing is written) if a TF throws.
 */
export function restore(types: TypeVersions, persisted: PersistedActor, key: string): ActorState {
  let { v, value, context } = persisted;
  const past = pastStates(persisted);
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
    // The TF seeds the state of the past SO of v + 1 (serving v); the past SOs
    // below it keep theirs: they now call version v through that SO.
    if (out.past !== undefined) past[v] = out.past;
    const { [v + 1]: _consumed, ...rest } = future;
    future = rest;
    value = out.value !== undefined ? out.value : value;
    context = out.context;
    v += 1;
  }
  const def = types.byVersion.get(types.current)!;
  const snapshot = resolveSnapshot(def, value, context, key);
  const plan = planOf(types);
  return { version: v, snapshot, past: soStates(plan.pastSOs, past), future: soStates(plan.futureSOs, future) };
}

/**
 * Carries state written by a newer version down to the node's current one on
 * a node that was rolled back: each version's `down`, newest first (state of
 * v3 loaded by a node rolled back to v1 runs down 3→2, then 2→1). Throws
 * TransformFailed (nothing is written) if a `down` throws.
 *
 * The past SOs of the versions still run here (those serving versions below
 * the new current one) keep their states: they serve the same callers, now
 * one step nearer the object. The past SO of each version left behind goes
 * with it, and no `down` produces future SO state, so every future SO starts
 * from its initial state (the future SO of the version rolled back from
 * serves its callers again, from scratch).
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
  const plan = planOf(types);
  return { version: v, snapshot, past: soStates(plan.pastSOs, pastStates(persisted)), future: soStates(plan.futureSOs, NONE) };
}

/** The past SO states of a persisted actor, by the version each SO serves. */
function pastStates(persisted: PersistedActor): Record<number, unknown> {
  const past: Record<number, unknown> = { ...(persisted.so?.older ?? {}) };
  if (persisted.so?.past !== undefined) past[persisted.v - 1] = persisted.so.past;
  return past;
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
  const out: PersistedActor = { v: state.version, value: state.snapshot.value, context: state.snapshot.context };
  // Stateless SOs have `undefined` state: leave them out, so the record stays
  // plain JSON (an `undefined` anywhere sends the codec down superjson's slow path).
  let so: NonNullable<PersistedActor['so']> | undefined;
  for (const served in state.past) {
    const soState = state.past[served];
    if (soState === undefined) continue;
    so ??= {};
    if (Number(served) === state.version - 1) so.past = soState;
    else (so.older ??= {})[Number(served)] = soState;
  }
  for (const served in state.future) {
    const soState = state.future[served];
    if (soState !== undefined) ((so ??= {}).future ??= {})[Number(served)] = soState;
  }
  if (so) out.so = so;
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
 * SO anywhere along the chain disallowed) the returned error carries no
 * state: the caller keeps `state`.
 */
export function runTurn(types: TypeVersions, state: ActorState, route: Route, version: number, message: string, request: unknown): TurnResult {
  const plan = planOf(types);
  if (route.kind === 'native' && !plan.observers.has(types.current)) {
    // The common turn: a native call that no interceptor SO watches needs no
    // scratch turn — one step of the current machine, and the state it left.
    const step = nativeStep(types, state.snapshot, message, request);
    if (!step.changed) return { state, reply: step.reply, changed: false };
    return { state: { version: state.version, snapshot: step.snapshot, past: state.past, future: state.future }, reply: step.reply, changed: true };
  }
  // The `target` handles of this type's SOs call into the running turn.
  const turn = new Turn(types, state, plan);
  const outer = plan.turn;
  plan.turn = turn;
  let reply: unknown;
  try {
    reply = turn.serve(route, version, message, request, undefined);
  } finally {
    plan.turn = outer;
  }
  return { state: turn.result(), reply, changed: turn.changed };
}

/**
 * One call to the current version's machine: its next snapshot, whether the
 * call changed it (context or state value), and the message's reply.
 */
function nativeStep(types: TypeVersions, previous: AnyMachineSnapshot, message: string, request: unknown): { snapshot: AnyMachineSnapshot; changed: boolean; reply: unknown } {
  const def = types.byVersion.get(types.current)!;
  let next: AnyMachineSnapshot;
  try {
    const event = { ...(request as object), type: message };
    const [snapshot, actions] = machineStep(def.machine, previous, event);
    for (const action of actions) {
      const exec = (action as { exec?: (info: unknown, params: unknown) => void }).exec;
      if (exec) exec((action as { info?: unknown }).info, (action as { params?: unknown }).params);
    }
    if (snapshot.status === 'error') throw snapshot.error;
    next = snapshot;
  } catch (e) {
    throw actorFailed(types.name, types.current, message, e);
  }
  const changed = next.context !== previous.context || !sameValue(next.value, previous.value);
  const replyFn = (def.replies as Record<string, ((args: unknown) => unknown) | undefined>)[message];
  let reply: unknown;
  if (replyFn) {
    try {
      reply = replyFn({ snapshot: next, previous, request });
    } catch (e) {
      throw actorFailed(types.name, types.current, message, e);
    }
  }
  return { snapshot: changed ? next : previous, changed, reply };
}

/** Scratch state of one turn; committed only if the turn succeeds. */
class Turn {
  changed = false;
  private snapshot: AnyMachineSnapshot;
  private past: Readonly<Record<number, unknown>>;
  private future: Readonly<Record<number, unknown>>;
  private readonly base: ActorState;

  constructor(
    private readonly types: TypeVersions,
    state: ActorState,
    /** The types' plan, looked up on first need (a native call of a type without interceptors needs none). */
    private plan: Plan | undefined,
  ) {
    this.base = state;
    this.snapshot = state.snapshot;
    this.past = state.past;
    this.future = state.future;
  }

  result(): ActorState {
    if (!this.changed) return this.base;
    return { version: this.base.version, snapshot: this.snapshot, past: this.past, future: this.future };
  }

  /**
   * A call through the interface of `version`, made by a caller (`caller`
   * undefined) or by the SO serving `caller`, which calls its target.
   */
  call(version: number, message: string, request: unknown, caller: number | undefined): unknown {
    const route = version === this.types.current ? nativeRoute : this.planned().routes.get(version);
    if (route === undefined) throw unsupported(this.types, version);
    return this.serve(route, version, message, request, caller);
  }

  /** A call of `version` along its route. */
  serve(route: Route, version: number, message: string, request: unknown, caller: number | undefined): unknown {
    switch (route.kind) {
      case 'native':
        return this.native(message, request, caller);
      case 'compatible': {
        const reply = this.call(route.target, message, request, caller);
        this.notifyObservers(version, message, request, reply, caller);
        return reply;
      }
      case 'past':
      case 'future':
        return this.simulated(route, version, message, request, caller);
      default:
        return unreachable(route);
    }
  }

  /** A call to the current object. `caller` is the SO making it, if any (it is not told of its own call). */
  native(message: string, request: unknown, caller: number | undefined): unknown {
    const step = nativeStep(this.types, this.snapshot, message, request);
    if (step.changed) {
      this.snapshot = step.snapshot;
      this.changed = true;
    }
    this.notifyObservers(this.types.current, message, request, step.reply, caller);
    return step.reply;
  }

  /** A call of `version` served by the SO its route names, which calls its target through a handle. */
  private simulated(route: Route & { kind: 'past' | 'future' }, version: number, message: string, request: unknown, caller: number | undefined): unknown {
    const handler = (route.so.handlers as Record<string, unknown>)[message];
    if (handler === undefined) throw new MoltError(ErrorCode.UnknownMessage, `${this.types.name}@${version} has no message '${message}'`);
    if (isDisallow(handler)) throw disallowed(this.types.name, version, message, handler.reason);
    const reply = (handler as (call: unknown) => unknown)({
      request,
      target: targetHandle(this.planned(), this.types, version, route.target),
      state: this.soState(version, route.so),
      setState: stateSetter(this, version),
    });
    if (isDisallow(reply)) throw disallowed(this.types.name, version, message, reply.reason);
    this.notifyObservers(version, message, request, reply, caller);
    return reply;
  }

  /** The state of the SO serving `version`; its initial state if the actor has none for it yet. */
  private planned(): Plan {
    return (this.plan ??= planOf(this.types));
  }

  private soState(version: number, so: AnySimulationObject): unknown {
    const states = version < this.types.current ? this.past : this.future;
    return Object.hasOwn(states, version) ? states[version] : so.initialState;
  }

  /** @internal the `setState` of the SO serving `version` (see {@link stateSetter}). */
  setSOState(version: number, next: unknown): void {
    this.changed = true;
    if (version < this.types.current) this.past = { ...this.past, [version]: next };
    else this.future = { ...this.future, [version]: next };
  }

  /**
   * Tells the interceptor SOs that watch the interface of `version` about a
   * call made through it — whatever serves that interface on this node —
   * except the SO that made the call.
   */
  private notifyObservers(version: number, message: string, request: unknown, reply: unknown, caller: number | undefined): void {
    const watchers = this.planned().observers.get(version);
    if (watchers === undefined) return;
    for (const { served, so } of watchers) {
      if (served === caller) continue;
      try {
        so.observe!({ message, request, reply, state: this.soState(served, so), setState: stateSetter(this, served) } as never);
      } catch (e) {
        throw actorFailed(this.types.name, served, message, e, 'an interceptor simulation object');
      }
    }
  }
}

/**
 * The `target` handle of the SO serving `caller`: one call per message of
 * version `target`, each a call through that version's interface in the turn
 * running now. Made once per SO and plan, not per call.
 */
function targetHandle(plan: Plan, types: TypeVersions, caller: number, target: number): Handle<MessageSpecs> {
  let handle = plan.handles.get(caller);
  if (handle === undefined) {
    const calls: Record<string, (request?: unknown) => unknown> = {};
    for (const name of Object.keys(types.byVersion.get(target)!.messages)) {
      calls[name] = (request: unknown = {}) => {
        if (plan.turn === undefined) {
          throw new MoltError(ErrorCode.ActorFailed, `${types.name}@${caller}'s simulation object called ${types.name}@${target} ${name} after its call had ended; use \`target\` only inside the handler`);
        }
        return plan.turn.call(target, name, request, caller);
      };
    }
    handle = calls as Handle<MessageSpecs>;
    plan.handles.set(caller, handle);
  }
  return handle;
}

/**
 * The `setState` an SO receives. Made by a function rather than written inline
 * in the call object: a function there would get a name, and the TypeScript
 * loaders Molt runs under (tsx, esbuild with keepNames) name functions with a
 * `defineProperty` call — a measurable cost on every SO call.
 */
function stateSetter(turn: Turn, version: number): (next: unknown) => void {
  return (next) => turn.setSOState(version, next);
}

function unreachable(route: never): never {
  throw new Error(`unhandled route ${JSON.stringify(route)}`);
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
