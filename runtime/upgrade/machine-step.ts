/**
 * One step of an actor's machine: the snapshot after one event, and the
 * actions xstate leaves for its caller to execute.
 *
 * Most calls to a Molt actor take a transition that only assigns: no guard,
 * no target, no raised event, nothing but `assign` actions. For those, xstate's
 * macrostep (candidate selection, exit and entry sets, action resolution,
 * eventless checks, a fresh state value and tag set) costs thirty times the
 * assignments themselves. {@link machineStep} recognises such a transition
 * once per (active state, event type) from the machine's own definition and
 * then applies its assignments directly, exactly as xstate's `assign`
 * resolves them; anything else goes through `machine.transition`.
 *
 * What makes a transition fast, and why each condition is needed to give
 * xstate's result:
 * - the snapshot is active, with one atomic state (not parallel): then
 *   xstate looks for the event from that state up to the root, and no
 *   other region can take it;
 * - no state on that path has an eventless (`always`) transition: after a
 *   step xstate re-checks those against the new context and the event;
 * - no state on that path has a wildcard (`*`, `a.*`) descriptor matching
 *   the event: those add candidates behind an exact match;
 * - the first candidate found has no guard and no target (`reenter` without a
 *   target re-enters nothing, as xstate does it);
 * - every action of it is xstate's `assign` (inline, or named in the machine's
 *   implementations, with or without params): anything else may raise, send,
 *   spawn or run code whose order relative to other actions matters.
 * An event that no state on the path handles at all leaves the snapshot as
 * it is, as xstate does. Event types beginning with `xstate.` always take the
 * slow path (xstate treats error events specially).
 *
 * The fast result shares the previous snapshot's state value, nodes and tags
 * (a targetless transition changes none of them) and has a new context built
 * as `assign` builds it. `test/unit/machine-step.test.ts` checks equivalence
 * with xstate over generated machines and event sequences.
 *
 * This module reads xstate's state-node structure (`_nodes`, `transitions`,
 * `always`, `implementations`), which xstate exposes but does not document as
 * stable; the property test pins the behaviour to the installed version.
 *
 * @module
 */
import { createActor, type AnyMachineSnapshot, type AnyStateMachine } from 'xstate';

/** The parts of an xstate state node this module reads. */
interface StateNodeView {
  readonly type: string;
  readonly parent?: StateNodeView;
  readonly transitions: Map<string, readonly TransitionView[]>;
  readonly always?: readonly unknown[];
}

interface TransitionView {
  readonly guard?: unknown;
  readonly target?: unknown;
  readonly actions: readonly unknown[];
}

/** An xstate `assign` action: a function object carrying its assignment. */
interface AssignAction {
  readonly type: 'xstate.assign';
  readonly assignment: AssignmentFn | Record<string, unknown>;
}

type AssignmentFn = (args: AssignArgs, params: unknown) => unknown;

interface AssignArgs {
  context: unknown;
  event: unknown;
  spawn: unknown;
  self: unknown;
  system: unknown;
}

/** One assignment of a fast transition, with where its params come from. */
interface FastAssign {
  readonly assignment: AssignmentFn | Record<string, unknown>;
  /** Keys of an object assignment, read once. */
  readonly keys: readonly string[] | undefined;
  /** undefined: none; a function: computed from context and event, as xstate does; else the value. */
  readonly params: unknown;
}

/** What an event does in an active atomic state: nothing, assignments only, or anything else. */
type StepPlan = { readonly kind: 'unhandled' } | { readonly kind: 'assign'; readonly assigns: readonly FastAssign[] } | { readonly kind: 'slow' };

const UNHANDLED: StepPlan = { kind: 'unhandled' };
const SLOW: StepPlan = { kind: 'slow' };

/** Per machine: an inert actor scope for `machine.transition`, and the plans of its atomic states. */
interface MachineCache {
  readonly scope: { self: unknown; system: unknown; actionExecutor: (action: unknown) => void } & Record<string, unknown>;
  readonly actions: unknown[];
  readonly plans: WeakMap<StateNodeView, Map<string, StepPlan>>;
}

/**
 * A cache keyed by the machine object (not global state: it holds nothing a
 * runtime could observe). xstate's `transition()` builds a throw-away actor
 * for each call — most of a node's CPU and garbage per message. A transition
 * of a Molt machine reads only `self` and `system` from its scope (no
 * children, no delays) and hands the actions to execute to
 * `actionExecutor`, so one scope serves every actor of the machine.
 */
const caches = new WeakMap<AnyStateMachine, MachineCache>();

function cacheOf(machine: AnyStateMachine): MachineCache {
  let cached = caches.get(machine);
  if (!cached) {
    const self = createActor(machine);
    const actions: unknown[] = [];
    const noop = () => {};
    const scope = { self, system: self.system, id: '', sessionId: '', logger: noop, defer: noop, stopChild: noop, emit: noop, actionExecutor: (a: unknown) => actions.push(a) };
    cached = { scope, actions, plans: new WeakMap() };
    caches.set(machine, cached);
  }
  return cached;
}

/**
 * The snapshot after `event`, and the actions xstate leaves to execute (each
 * with an `exec`); the fast path leaves none. Throws what the machine throws.
 */
export function machineStep(machine: AnyStateMachine, snapshot: AnyMachineSnapshot, event: { readonly type: string; readonly [field: string]: unknown }): [AnyMachineSnapshot, readonly unknown[]] {
  const cached = cacheOf(machine);
  const plan = snapshot.status === 'active' ? planOf(cached, machine, snapshot, event.type) : SLOW;
  if (plan.kind === 'unhandled') return [snapshot, NO_ACTIONS];
  if (plan.kind === 'assign') {
    const next = applyAssigns(cached, snapshot, event, plan.assigns);
    if (next) return [next, NO_ACTIONS];
  }
  cached.actions.length = 0;
  const next = machine.transition(snapshot, event as never, cached.scope as never) as AnyMachineSnapshot;
  return [next, cached.actions.length === 0 ? NO_ACTIONS : cached.actions.splice(0)];
}

/** Shared by every step that leaves no action: read-only, so no caller can fill it for the next. */
const NO_ACTIONS: readonly unknown[] = [];

/** The plan for `eventType` in the snapshot's atomic state, made on first use. */
function planOf(cached: MachineCache, machine: AnyStateMachine, snapshot: AnyMachineSnapshot, eventType: string): StepPlan {
  const nodes = (snapshot as unknown as { _nodes?: readonly StateNodeView[] })._nodes;
  if (!nodes) return SLOW;
  let leaf: StateNodeView | undefined;
  for (const node of nodes) {
    if (node.type === 'atomic' || node.type === 'final') {
      if (leaf) return SLOW; // parallel regions
      leaf = node;
    }
  }
  if (!leaf) return SLOW;
  let byEvent = cached.plans.get(leaf);
  if (!byEvent) cached.plans.set(leaf, (byEvent = new Map()));
  let plan = byEvent.get(eventType);
  if (!plan) byEvent.set(eventType, (plan = makePlan(machine, leaf, eventType)));
  return plan;
}

function makePlan(machine: AnyStateMachine, leaf: StateNodeView, eventType: string): StepPlan {
  if (eventType.startsWith('xstate.')) return SLOW;
  for (let node: StateNodeView | undefined = leaf; node; node = node.parent) {
    if (node.always && node.always.length > 0) return SLOW;
    for (const descriptor of node.transitions.keys()) {
      if (descriptor !== eventType && matchesWildcard(eventType, descriptor)) return SLOW;
    }
  }
  for (let node: StateNodeView | undefined = leaf; node; node = node.parent) {
    const exact = node.transitions.get(eventType);
    if (!exact || exact.length === 0) continue;
    const chosen = exact[0]!;
    if (chosen.guard !== undefined || chosen.target !== undefined) return SLOW;
    const assigns: FastAssign[] = [];
    for (const action of chosen.actions) {
      const fast = assignOf(machine, action);
      if (!fast) return SLOW;
      assigns.push(fast);
    }
    return { kind: 'assign', assigns };
  }
  return UNHANDLED;
}

/** True if `descriptor` is a wildcard that matches `eventType` (`*`, or `a.b.*` for `a.b.c…`). */
function matchesWildcard(eventType: string, descriptor: string): boolean {
  if (descriptor === '*') return true;
  if (!descriptor.endsWith('.*')) return false;
  // Conservative: any partial descriptor whose prefix the event shares sends the event the slow way.
  return eventType.startsWith(descriptor.slice(0, -1)) || eventType === descriptor.slice(0, -2);
}

/** The action as a fast assignment, or undefined if it is anything but xstate's `assign`. */
function assignOf(machine: AnyStateMachine, action: unknown): FastAssign | undefined {
  let resolved: unknown;
  let params: unknown;
  if (typeof action === 'function') resolved = action;
  else {
    const name = typeof action === 'string' ? action : typeof action === 'object' && action !== null ? (action as { type?: unknown }).type : undefined;
    if (typeof name !== 'string') return undefined;
    resolved = (machine.implementations.actions as Record<string, unknown>)[name];
    if (typeof action === 'object' && action !== null && 'params' in action) {
      params = (action as { params: unknown }).params;
      // A params value of undefined is indistinguishable from none here; a function is called per step.
    }
  }
  if (!isAssign(resolved)) return undefined;
  const assignment = resolved.assignment;
  return { assignment, keys: typeof assignment === 'function' ? undefined : Object.keys(assignment), params };
}

function isAssign(action: unknown): action is AssignAction {
  return typeof action === 'function' && (action as { type?: unknown }).type === 'xstate.assign' && (action as { assignment?: unknown }).assignment !== undefined;
}

/**
 * The snapshot with the assignments applied in order, as xstate's
 * `resolveAssign` applies them; undefined if this step must go the slow way
 * after all (no context to assign to, or an assignment tried to spawn).
 */
function applyAssigns(cached: MachineCache, snapshot: AnyMachineSnapshot, event: unknown, assigns: readonly FastAssign[]): AnyMachineSnapshot | undefined {
  if (assigns.length === 0) return snapshot;
  let context = snapshot.context as Record<string, unknown> | undefined;
  if (!context) return undefined; // xstate throws its own error for this
  const { self, system } = cached.scope;
  try {
    for (const a of assigns) {
      const params = typeof a.params === 'function' ? (a.params as (args: { context: unknown; event: unknown }) => unknown)({ context, event }) : a.params;
      const args: AssignArgs = { context, event, spawn: refuseSpawn, self, system };
      let partial: unknown;
      if (a.keys === undefined) partial = (a.assignment as AssignmentFn)(args, params);
      else {
        const update: Record<string, unknown> = {};
        const assignment = a.assignment as Record<string, unknown>;
        for (const key of a.keys) {
          const value = assignment[key];
          update[key] = typeof value === 'function' ? (value as AssignmentFn)(args, params) : value;
        }
        partial = update;
      }
      context = Object.assign({}, context, partial);
    }
  } catch (e) {
    if (e === SPAWN) return undefined;
    throw e;
  }
  // A targetless transition keeps the state nodes, so value, tags and history stay as they are.
  return { ...snapshot, context } as AnyMachineSnapshot;
}

/** Thrown by `spawn` inside a fast assignment: spawning needs xstate's own resolution. */
const SPAWN = Symbol('spawn');

function refuseSpawn(): never {
  throw SPAWN;
}
