/**
 * The shell every built-in SF shares, and that custom SFs may use too:
 * {@link fromSchedulePolicy} turns a small policy (parse params, fold events
 * into state, say whether this node may go) into an xstate v5 machine that
 * honours the whole {@link ScheduleMachine} contract — operator pause, resume
 * and abort, the health gate (`params.health`), status notes, tags and
 * emitted events — so each built-in only states its own rule.
 *
 * States of the machine (the same for every built-in, so `molt status` can
 * show any of them):
 *
 * ```
 * starting ──(params invalid)──────────────────────────────► aborted (final)
 *    │ (input.paused)          ┌──────── control: abort ────►    ▲
 *    ├──────────────────► paused ◄── control: pause ──┐          │
 *    ▼                       │ control: resume         │          │
 * running ◄──────────────────┘                         │          │
 *  [waiting] ──(health check fails, onFailure: halt)──► halted ───┘ (abort)
 *    │   ▲                                  control: resume (forgives)
 *    │   └────────────────────────────────────────────────┘
 *    └──(policy says go, health ok)──► upgrade (final)
 * ```
 *
 * Events are folded into the context in every state (a paused or halted SF
 * keeps an up-to-date view), but only `running` decides.
 *
 * @module
 */
import { assign, enqueueActions, setup } from 'xstate';
import type {
  ScheduleDecision,
  ScheduleEmitted,
  ScheduleEvent,
  ScheduleInput,
  ScheduleMachine,
  ScheduleNodeView,
} from './contract.ts';
import { ScheduleTag } from './contract.ts';
import { forgiveLedger, healthProblem, updateLedger, type HealthLedger } from './health.ts';
import { withSelf, type GateResult } from './order.ts';
import type { HealthParams, ParseResult } from './params.ts';

/** Everything an SF policy can look at when it folds an event or decides. */
export interface ScheduleView<TParams> {
  readonly input: ScheduleInput;
  readonly params: TParams;
  /** Latest time known (from `input.now` and `tick`s). */
  readonly now: number;
  /** Latest node list, this node included; null until the first `udb.nodes` (or `input.nodes`). */
  readonly nodes: readonly ScheduleNodeView[] | null;
  /** Per-node counter rises since this SF first saw each node (empty for a policy with `needsLedger: false` and no health gate). */
  readonly ledger: HealthLedger;
  /**
   * False while the SF is paused by the operator or halted by its health gate
   * (it still observes): a policy that measures time (a soak, a pause between
   * batches) counts only the time the rollout runs.
   */
  readonly running: boolean;
}

/** Events a policy folds into its state (everything but operator control). */
export type ObservedEvent = Exclude<ScheduleEvent, { type: 'control' }>;

/**
 * A schedule's own rule. Pure functions over plain data: no I/O, no timers,
 * no `Date.now()` (use `view.now`).
 */
export interface SchedulePolicy<TParams extends { health?: HealthParams | undefined }, TState> {
  /** The schedule's name, used in messages and as the machine id suffix. */
  readonly name: string;
  /** Validates `input.params`. Unknown names must be problems. */
  parse(params: unknown): ParseResult<TParams>;
  /** Checks that need the input (e.g. a dependency on itself); returns a problem or undefined. */
  check?(input: ScheduleInput, params: TParams): string | undefined;
  /** Other (service, type) pairs whose versions the SF needs (`udb.versions`). */
  watches?(input: ScheduleInput, params: TParams): Array<{ service: string; type_: string }>;
  /**
   * Whether the policy reads `view.ledger` even without a health gate
   * (default true). The ledger costs time in proportion to the node count on
   * every node list; a policy that never reads it sets false, and then the
   * ledger is kept only while `params.health` gates the rollout.
   */
  readonly needsLedger?: boolean;
  /** The policy's initial state. */
  init(input: ScheduleInput, params: TParams): TState;
  /** Folds an event into the state; the view already includes the event's effect. */
  observe?(state: TState, event: ObservedEvent, view: ScheduleView<TParams>): TState;
  /** May this node upgrade now? If not, one human line saying what it waits for. */
  evaluate(state: TState, view: ScheduleView<TParams>): GateResult;
}

/** Context of a machine made by {@link fromSchedulePolicy}; plain data, persistable. */
export interface ScheduleContext {
  input: ScheduleInput;
  /** Parsed params, or null if they were invalid. */
  params: { health?: HealthParams | undefined } | null;
  /** Why the params or input are unusable, or null. */
  problem: string | null;
  now: number;
  nodes: ScheduleNodeView[] | null;
  ledger: HealthLedger;
  /** The policy's own state. */
  state: unknown;
  /** Last status reported with `schedule.status`. */
  status: { state: 'waiting' | 'paused' | 'halted'; note: string };
  /** Why the health gate halted, while halted. */
  haltReason: string | null;
  /** Paused or halted: the policy's clocks stand still (see {@link ScheduleView.running}). */
  held: boolean;
  decision: ScheduleDecision | null;
}

/**
 * Builds a complete SF machine from a policy. The built-ins are made this
 * way; a custom SF can be too (or be any xstate machine, see `defineSchedule`).
 *
 * @example
 * ```ts
 * const evenMinutes = fromSchedulePolicy({
 *   name: 'evenMinutes',
 *   parse: (params) => parseWith('evenMinutes', params, (r) => ({ health: r.health() })),
 *   init: () => null,
 *   evaluate: (_s, view) =>
 *     Math.floor(view.now / 60_000) % 2 === 0 ? { ready: true } : { ready: false, note: 'waiting for an even minute' },
 * });
 * ```
 */
export function fromSchedulePolicy<TParams extends { health?: HealthParams | undefined }, TState>(
  policy: SchedulePolicy<TParams, TState>,
): ScheduleMachine {
  const viewOf = (ctx: ScheduleContext): ScheduleView<TParams> => ({
    input: ctx.input,
    params: ctx.params as TParams,
    now: ctx.now,
    nodes: ctx.nodes,
    ledger: ctx.ledger,
    running: !ctx.held,
  });

  /** Folds one observed event into the context (time, nodes, ledger, policy state). */
  const fold = (ctx: ScheduleContext, event: ObservedEvent): Partial<ScheduleContext> => {
    if (ctx.params === null) return {};
    let { now, nodes, ledger } = ctx;
    if (event.type === 'tick') now = Math.max(now, event.now);
    if (event.type === 'udb.nodes') {
      nodes = withSelf(event.nodes, ctx.input);
      if (policy.needsLedger !== false || ctx.params.health) ledger = updateLedger(ledger, nodes, ctx.input.to);
    }
    const view: ScheduleView<TParams> = { input: ctx.input, params: ctx.params as TParams, now, nodes, ledger, running: !ctx.held };
    const state = policy.observe ? policy.observe(ctx.state as TState, event, view) : ctx.state;
    return { now, nodes, ledger, state };
  };

  /** The health gate's verdict, or undefined when healthy or not gated. */
  const unhealthy = (ctx: ScheduleContext): string | undefined => {
    const h = ctx.params?.health;
    if (!h || !ctx.nodes) return undefined;
    return healthProblem(h, ctx.ledger, ctx.nodes, ctx.input.to);
  };

  /** The policy's gate, plus "a health-gated SF needs one node list first". */
  const gate = (ctx: ScheduleContext): GateResult => {
    if (ctx.params?.health && ctx.nodes === null) return { ready: false, note: 'waiting for the node list (health gate needs it)' };
    // The verdict is a function of what the policy sees (its state and view), so it is kept
    // while those stay the same objects: the waiting note, the `ready` guard after the note
    // changed (a new context, the same view) and later events that changed nothing it reads
    // all get it without evaluating again.
    const last = verdicts.get(ctx.input);
    if (
      last !== undefined &&
      last.state === ctx.state &&
      last.nodes === ctx.nodes &&
      last.now === ctx.now &&
      last.ledger === ctx.ledger &&
      last.held === ctx.held &&
      last.params === ctx.params
    ) {
      return last.verdict;
    }
    const verdict = policy.evaluate(ctx.state as TState, viewOf(ctx));
    // One record per SF, updated in place (a new one per event is garbage the collector must trace).
    if (last === undefined) verdicts.set(ctx.input, { state: ctx.state, nodes: ctx.nodes, now: ctx.now, ledger: ctx.ledger, held: ctx.held, params: ctx.params, verdict });
    else {
      last.state = ctx.state;
      last.nodes = ctx.nodes;
      last.now = ctx.now;
      last.ledger = ctx.ledger;
      last.held = ctx.held;
      last.params = ctx.params;
      last.verdict = verdict;
    }
    return verdict;
  };
  /** The last verdict of each SF (keyed by its input, one object per actor) and what it was computed from. */
  const verdicts = new WeakMap<
    ScheduleInput,
    Pick<ScheduleContext, 'state' | 'nodes' | 'now' | 'ledger' | 'held' | 'params'> & { verdict: GateResult }
  >();

  /** The waiting status for this context, or undefined if it is the one already reported. */
  const waitingStatus = (ctx: ScheduleContext): ScheduleContext['status'] | undefined => {
    const g = gate(ctx);
    const note = g.ready ? 'ready' : g.note;
    if (ctx.status.state === 'waiting' && ctx.status.note === note) return undefined;
    return { state: 'waiting', note };
  };

  const initialContext = (input: ScheduleInput): ScheduleContext => {
    const base: ScheduleContext = {
      input,
      params: null,
      problem: null,
      now: input.now,
      nodes: null,
      ledger: {},
      state: null,
      status: { state: 'waiting', note: 'starting' },
      haltReason: null,
      held: input.paused === true,
      decision: null,
    };
    const parsed = policy.parse(input.params);
    if (!parsed.ok) {
      const problem = `invalid params for schedule "${policy.name}": ${parsed.problems.join('; ')}`;
      return { ...base, problem, decision: { decision: 'abort', reason: problem } };
    }
    const checked = policy.check?.(input, parsed.params);
    if (checked) {
      const problem = `schedule "${policy.name}" cannot run here: ${checked}`;
      return { ...base, problem, decision: { decision: 'abort', reason: problem } };
    }
    let ctx: ScheduleContext = { ...base, params: parsed.params, state: policy.init(input, parsed.params) };
    if (input.nodes) ctx = { ...ctx, ...fold(ctx, { type: 'udb.nodes', nodes: input.nodes }) };
    return ctx;
  };

  const machineSetup = setup({
    types: {
      context: {} as ScheduleContext,
      events: {} as ScheduleEvent,
      input: {} as ScheduleInput,
      output: {} as ScheduleDecision,
      emitted: {} as ScheduleEmitted,
      tags: {} as ScheduleTag,
    },
    guards: {
      invalid: ({ context }) => context.problem !== null,
      startsPaused: ({ context }) => context.input.paused === true,
      isAbort: ({ event }) => event.type === 'control' && event.command === 'abort',
      isPause: ({ event }) => event.type === 'control' && event.command === 'pause',
      isResume: ({ event }) => event.type === 'control' && event.command === 'resume',
      unhealthyAbort: ({ context }) => context.params?.health?.onFailure === 'abort' && unhealthy(context) !== undefined,
      unhealthy: ({ context }) => unhealthy(context) !== undefined,
      ready: ({ context }) => gate(context).ready,
    },
    actions: {
      observe: assign(({ context, event }) => (event.type === 'control' ? {} : fold(context, event))),
      /** Recomputes the waiting note; emits `schedule.status` when it changed. */
      noteWaiting: enqueueActions(({ context, enqueue }) => {
        const status = waitingStatus(context);
        if (!status) return;
        enqueue.assign({ status });
        enqueue.emit({ type: 'schedule.status', ...status });
      }),
      /**
       * `observe` then `noteWaiting`, as one update of the context: what a
       * waiting SF does on every event, so one step instead of two.
       */
      observeAndNote: enqueueActions(({ context, event, enqueue }) => {
        if (event.type === 'control') return;
        const folded = fold(context, event);
        const status = waitingStatus({ ...context, ...folded });
        if (!status) {
          enqueue.assign(folded);
          return;
        }
        enqueue.assign({ ...folded, status });
        enqueue.emit({ type: 'schedule.status', ...status });
      }),
      notePaused: enqueueActions(({ context, event, enqueue }) => {
        // Who paused it and why: the command that did, or the input (started paused).
        const by = event.type === 'control' ? event.by : context.input.pausedBy;
        const reason = event.type === 'control' ? event.reason : context.input.pauseReason;
        const status = { state: 'paused' as const, note: `paused by ${by ?? 'the operator'}${reason ? `: ${reason}` : ''}` };
        enqueue.assign({ status, held: true });
        enqueue.emit({ type: 'schedule.status', ...status });
      }),
      emitWatches: enqueueActions(({ context, enqueue }) => {
        if (context.params === null || !policy.watches) return;
        for (const w of policy.watches(context.input, context.params as TParams)) enqueue.emit({ type: 'schedule.watch', ...w });
      }),
      halt: enqueueActions(({ context, enqueue }) => {
        const reason = `health gate: ${unhealthy(context) ?? 'unhealthy'}`;
        const status = { state: 'halted' as const, note: `${reason} (resume to accept and continue, or abort)` };
        enqueue.assign({ haltReason: reason, status, held: true });
        enqueue.emit({ type: 'schedule.halted', reason });
        enqueue.emit({ type: 'schedule.status', ...status });
      }),
      forgive: assign(({ context }) => ({ ledger: forgiveLedger(context.ledger), haltReason: null })),
      decideUpgrade: assign({ decision: () => ({ decision: 'upgrade' as const }) }),
      decideHealthAbort: assign({
        decision: ({ context }) => ({ decision: 'abort' as const, reason: `health gate: ${unhealthy(context) ?? 'unhealthy'}` }),
      }),
      decideOperatorAbort: assign({
        decision: ({ event }) => ({
          decision: 'abort' as const,
          reason: event.type === 'control' && event.reason ? `aborted by the operator: ${event.reason}` : 'aborted by the operator',
        }),
      }),
    },
  });
  // While paused or halted, the SF keeps its view of the world current, so it
  // decides on fresh facts the moment it runs again.
  const keepObserving = {
    'udb.nodes': { actions: 'observe' },
    tick: { actions: 'observe' },
    load: { actions: 'observe' },
    'udb.versions': { actions: 'observe' },
  } as const;
  const machine = machineSetup.createMachine({
    id: `molt.schedule.${policy.name}`,
    context: ({ input }) => initialContext(input),
    initial: 'starting',
    states: {
      starting: {
        entry: 'emitWatches',
        always: [{ guard: 'invalid', target: 'aborted' }, { guard: 'startsPaused', target: 'paused' }, { target: 'running' }],
      },
      running: {
        tags: [ScheduleTag.waiting],
        entry: [assign({ held: false }), 'noteWaiting'],
        on: {
          'udb.nodes': { actions: 'observeAndNote' },
          tick: { actions: 'observeAndNote' },
          load: { actions: 'observeAndNote' },
          'udb.versions': { actions: 'observeAndNote' },
          control: [
            { guard: 'isAbort', target: 'aborted', actions: 'decideOperatorAbort' },
            { guard: 'isPause', target: 'paused' },
          ],
        },
        // Health first: a node never decides to upgrade on a view that shows failures.
        always: [
          { guard: 'unhealthyAbort', target: 'aborted', actions: 'decideHealthAbort' },
          { guard: 'unhealthy', target: 'halted' },
          { guard: 'ready', target: 'upgrade', actions: 'decideUpgrade' },
        ],
      },
      paused: {
        tags: [ScheduleTag.paused],
        entry: 'notePaused',
        on: {
          ...keepObserving,
          control: [
            { guard: 'isAbort', target: 'aborted', actions: 'decideOperatorAbort' },
            { guard: 'isResume', target: 'running' },
          ],
        },
      },
      halted: {
        tags: [ScheduleTag.halted],
        entry: 'halt',
        on: {
          ...keepObserving,
          control: [
            { guard: 'isAbort', target: 'aborted', actions: 'decideOperatorAbort' },
            // Resume after a halt accepts the errors seen so far: counters restart from here.
            { guard: 'isResume', target: 'running', actions: 'forgive' },
          ],
        },
      },
      upgrade: { type: 'final' },
      aborted: { type: 'final' },
    },
    output: ({ context }) => context.decision ?? { decision: 'abort', reason: 'internal: the schedule ended without a decision' },
  });
  quietLists.set(machine, (snapshot, list) => {
    if (snapshot.status !== 'active') return false;
    const waiting = snapshot.value === 'running';
    if (!waiting && snapshot.value !== 'paused') return false;
    const ctx = snapshot.context as ScheduleContext;
    // A health gate or a ledger changes with every list; so may the policy's own state.
    if (ctx.params === null || ctx.params.health || policy.needsLedger !== false) return false;
    const view: ScheduleView<TParams> = { input: ctx.input, params: ctx.params as TParams, now: ctx.now, nodes: withSelf(list, ctx.input), ledger: ctx.ledger, running: !ctx.held };
    if (policy.observe && policy.observe(ctx.state as TState, { type: 'udb.nodes', nodes: list }, view) !== ctx.state) return false;
    // Paused, it only observes; running, it decides only if the gate opens (no health gate here,
    // so the gate is the policy's verdict; not kept, as the SF may never see this list).
    return !waiting || !policy.evaluate(ctx.state as TState, view).ready;
  });
  return machine;
}

/** See {@link nodeListIsQuiet}. */
const quietLists = new WeakMap<ScheduleMachine, (snapshot: { status: string; value: unknown; context: unknown }, nodes: ScheduleNodeView[]) => boolean>();

/**
 * Whether a `udb.nodes` event with `nodes`, sent to an SF of `machine` (one
 * made by {@link fromSchedulePolicy}) whose snapshot is `snapshot`, would
 * change nothing but the node list it holds and its waiting note: it would
 * not decide, halt or change state, and its policy state, clock and ledger
 * would stay the same objects. Such a list can wait; the SF ends up exactly
 * where it would have if it is given only the latest of several such lists,
 * before any other event (`molt simulate` relies on this: in a large fleet
 * most node lists reach SFs with nothing to do yet). False when unsure, and
 * for any other machine.
 *
 * @internal
 */
export function nodeListIsQuiet(machine: ScheduleMachine, snapshot: { status: string; value: unknown; context: unknown }, nodes: ScheduleNodeView[]): boolean {
  const quiet = quietLists.get(machine);
  return quiet !== undefined && quiet(snapshot, nodes);
}
