/**
 * The fast path of a machine step (assign-only transitions applied directly)
 * is equivalent to xstate's own transition: over generated machines — flat
 * and nested states, root-level handlers, guards, targets, re-entry, raised
 * events, eventless transitions, wildcards, named and parameterised assigns,
 * custom actions, entry actions, assignments that throw — and generated event
 * sequences, every step gives the same state value, context, status, tags and
 * actions to run, and the same error when the machine throws.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import fc from 'fast-check';
import { assign, fromPromise, initialTransition, raise, setup, transition, type AnyMachineSnapshot, type AnyStateMachine } from 'xstate';
import { machineStep } from '../../runtime/upgrade/machine-step.ts';

const test = suite('machine step');

interface Ctx {
  n: number;
  m: number;
  log: string;
}
type Ev = { type: string; by: number };

const EVENTS = ['inc', 'dec', 'set', 'go', 'x.y', 'ping'] as const;

/** The transition forms the generator picks from, by name (kept printable for counterexamples). */
const FORMS = [
  'assign-fn',
  'assign-object',
  'assign-static',
  'named',
  'named-params',
  'named-params-fn',
  'two-assigns',
  'no-actions',
  'guarded',
  'guarded-then-plain',
  'target',
  'reenter',
  'reenter-targetless',
  'raise',
  'custom',
  'throws-on-13',
] as const;
type Form = (typeof FORMS)[number];

interface MachineSpec {
  /** Top-level states; state 1, when present, is compound (children a, b), state 2 parallel (regions r1: a, b; r2: c). 0: a machine without states. */
  states: number;
  /** Handlers by node path ('' = root, 's0', 's1.a', …) and event. */
  on: Array<{ node: string; event: string; form: Form; target: number }>;
  wildcardAtRoot: boolean;
  partialWildcard: boolean;
  /** States (never s0) with an eventless transition back to s0 when n > 5 or the event's `by` is 4. */
  always: number[];
  entryAssign: boolean;
}

function transitionConfig(form: Form, targetPath: string, here: string): unknown {
  const inc = assign(({ context, event }: { context: Ctx; event: Ev }) => ({ n: context.n + event.by }));
  switch (form) {
    case 'assign-fn':
      return { actions: inc };
    case 'assign-object':
      return { actions: assign({ m: ({ context, event }: { context: Ctx; event: Ev }) => context.m * 2 + event.by, log: ({ context }: { context: Ctx }) => context.log.slice(-4) + 'o' }) };
    case 'assign-static':
      return { actions: assign({ log: 'static', m: 7 }) };
    case 'named':
      return { actions: 'bump' };
    case 'named-params':
      return { actions: { type: 'add', params: { d: 3 } } };
    case 'named-params-fn':
      return { actions: { type: 'add', params: ({ context }: { context: Ctx }) => ({ d: context.n % 5 }) } };
    case 'two-assigns':
      return { actions: [inc, 'bump', assign({ log: ({ context }: { context: Ctx }) => `${context.log.slice(-3)}${context.n}` })] };
    case 'no-actions':
      return { actions: [] };
    case 'guarded':
      return { guard: ({ context }: { context: Ctx }) => context.n % 2 === 0, actions: inc };
    case 'guarded-then-plain':
      return [{ guard: ({ event }: { event: Ev }) => event.by > 2, actions: inc }, { actions: 'bump' }];
    case 'target':
      return { target: targetPath, actions: inc };
    case 'reenter':
      return { target: here, reenter: true, actions: 'bump' };
    case 'reenter-targetless':
      return { reenter: true, actions: 'bump' };
    case 'raise':
      return { actions: [inc, raise({ type: 'raised', by: 1 } as never)] };
    case 'custom':
      return { actions: ['bump', () => {}] };
    case 'throws-on-13':
      return {
        actions: assign(({ context, event }: { context: Ctx; event: Ev }) => {
          if (event.by === 13) throw new Error('thirteen');
          return { n: context.n - event.by };
        }),
      };
  }
}

function buildMachine(spec: MachineSpec): AnyStateMachine {
  const paths = nodePaths(spec.states);
  const nodes: Record<string, Record<string, unknown>> = {};
  const root: Record<string, unknown> = { id: 'm', context: { n: 0, m: 1, log: '' }, on: {} };
  nodes[''] = root;
  if (spec.states > 0) {
    const states: Record<string, unknown> = {};
    for (let i = 0; i < spec.states; i++) {
      const state: Record<string, unknown> = { on: {} };
      if (i === 1) {
        state.initial = 'a';
        state.states = { a: { on: {} }, b: { on: {} } };
        nodes['s1.a'] = (state.states as Record<string, Record<string, unknown>>).a!;
        nodes['s1.b'] = (state.states as Record<string, Record<string, unknown>>).b!;
      }
      if (i === 2) {
        const r1 = { initial: 'a', states: { a: { on: {} }, b: { on: {} } } };
        const r2 = { initial: 'c', states: { c: { on: {} } } };
        state.type = 'parallel';
        state.states = { r1, r2 };
        nodes['s2.r1.a'] = r1.states.a;
        nodes['s2.r1.b'] = r1.states.b;
        nodes['s2.r2.c'] = r2.states.c;
      }
      if (spec.entryAssign && i === spec.states - 1) state.entry = assign({ m: ({ context }: { context: Ctx }) => context.m + 10 });
      if (i !== 0 && spec.always.includes(i)) state.always = [{ guard: ({ context, event }: { context: Ctx; event: Ev }) => context.n > 5 || event.by === 4, target: '#m.s0' }];
      states[`s${i}`] = state;
      nodes[`s${i}`] = state;
    }
    root.initial = 's0';
    root.states = states;
  }
  for (const h of spec.on) {
    const node = nodes[h.node];
    if (!node) continue;
    const target = paths[h.target % paths.length]!;
    (node.on as Record<string, unknown>)[h.event] = transitionConfig(h.form, target ? `#m.${target}` : '#m', h.node ? `#m.${h.node}` : '#m');
  }
  // The target of every raise: handled once, raising nothing (a raise loop would never end).
  (root.on as Record<string, unknown>).raised = { actions: assign({ log: 'raised' }) };
  if (spec.wildcardAtRoot) (root.on as Record<string, unknown>)['*'] = { actions: assign({ log: 'wild' }) };
  if (spec.partialWildcard) (root.on as Record<string, unknown>)['x.*'] = { actions: assign({ log: 'partial' }) };
  return setup({
    types: {} as { context: Ctx; events: Ev },
    actions: {
      bump: assign(({ context }: { context: Ctx }) => ({ m: context.m + 1 })),
      add: assign(({ context }: { context: Ctx }, params: { d: number }) => ({ n: context.n + params.d })),
    },
  }).createMachine(root as never) as unknown as AnyStateMachine;
}

function nodePaths(states: number): string[] {
  const paths = [''];
  for (let i = 0; i < states; i++) paths.push(`s${i}`);
  if (states > 1) paths.push('s1.a', 's1.b');
  if (states > 2) paths.push('s2.r1.a', 's2.r1.b', 's2.r2.c');
  return paths;
}

const specArb: fc.Arbitrary<MachineSpec> = fc.integer({ min: 0, max: 3 }).chain((states) =>
  fc.record({
    states: fc.constant(states),
    on: fc.array(
      fc.record({
        node: fc.constantFrom(...nodePaths(states)),
        event: fc.constantFrom(...EVENTS),
        form: fc.constantFrom(...FORMS),
        target: fc.nat(8),
      }),
      { maxLength: 12 },
    ),
    wildcardAtRoot: fc.boolean(),
    partialWildcard: fc.boolean(),
    always: fc.subarray([1, 2]),
    entryAssign: fc.boolean(),
  }),
);

const eventsArb = fc.array(fc.record({ type: fc.constantFrom(...EVENTS, 'unknown', 'xstate.error.actor.x'), by: fc.oneof(fc.integer({ min: -3, max: 6 }), fc.constant(13)) }), { minLength: 1, maxLength: 25 });

/** What two snapshots must agree on. */
function observable(s: AnyMachineSnapshot) {
  return { value: s.value, context: s.context, status: s.status, tags: [...s.tags].sort(), children: Object.keys(s.children), history: s.historyValue };
}

function outcome(run: () => [AnyMachineSnapshot, readonly unknown[]]): { ok: true; snapshot: AnyMachineSnapshot; actions: string[] } | { ok: false; error: string } {
  try {
    const [snapshot, actions] = run();
    return { ok: true, snapshot, actions: actions.map((a) => String((a as { type?: unknown }).type)) };
  } catch (e) {
    return { ok: false, error: e instanceof Error ? e.message : String(e) };
  }
}

test('agrees with xstate on generated machines and event sequences', () => {
  let fastSteps = 0;
  let steps = 0;
  fc.assert(
    fc.property(specArb, eventsArb, (spec, events) => {
      const machine = buildMachine(spec);
      let reference = initialTransition(machine)[0];
      let ours = initialTransition(machine)[0];
      for (const event of events) {
        const before = structuredClone(observable(ours));
        const expected = outcome(() => transition(machine, reference, event as never) as [AnyMachineSnapshot, unknown[]]);
        const got = outcome(() => machineStep(machine, ours, event));
        steps++;
        assert.equal(observable(ours), before, 'a step changed the snapshot it started from');
        if (!expected.ok || !got.ok) {
          assert.equal(got, expected, `event ${JSON.stringify(event)}`);
          return; // both threw alike: the actor keeps its state, the sequence ends here
        }
        assert.equal(observable(got.snapshot), observable(expected.snapshot), `event ${JSON.stringify(event)}`);
        // xstate's pure transition also reports built-in actions (assign, raise) it resolved; compare those to execute.
        const toRun = (actions: string[]) => actions.filter((a) => !a.startsWith('xstate.'));
        assert.equal(toRun(got.actions), toRun(expected.actions), `actions of ${JSON.stringify(event)}`);
        if (got.snapshot !== ours && got.snapshot.value === ours.value) fastSteps++;
        reference = expected.snapshot;
        ours = got.snapshot;
      }
    }),
    {
      numRuns: 1000,
      seed: 20261206,
      examples: [
        // An assign that enables an eventless transition (its guard reads the event).
        [
          { states: 2, on: [{ node: 's0', event: 'go', form: 'target', target: 2 }, { node: '', event: 'inc', form: 'assign-fn', target: 0 }], wildcardAtRoot: false, partialWildcard: false, always: [1], entryAssign: false },
          [{ type: 'go', by: 1 }, { type: 'inc', by: 4 }],
        ],
        // An assign in one region of a parallel state, with a handler in the other.
        [
          { states: 3, on: [{ node: 's0', event: 'go', form: 'target', target: 3 }, { node: 's2.r1.a', event: 'inc', form: 'assign-fn', target: 0 }, { node: 's2.r2.c', event: 'inc', form: 'named', target: 0 }], wildcardAtRoot: false, partialWildcard: false, always: [], entryAssign: false },
          [{ type: 'go', by: 1 }, { type: 'inc', by: 2 }],
        ],
      ],
    },
  );
  // The property would hold trivially if every step went the slow way.
  assert.ok(fastSteps > steps / 10, `only ${fastSteps} of ${steps} steps took the fast path`);
});

test('a fast step keeps the snapshot usable by xstate afterwards', () => {
  const machine = buildMachine({ states: 2, on: [{ node: 's0', event: 'inc', form: 'assign-fn', target: 0 }, { node: 's0', event: 'go', form: 'target', target: 2 }], wildcardAtRoot: false, partialWildcard: false, always: [], entryAssign: true });
  let s = initialTransition(machine)[0];
  [s] = machineStep(machine, s, { type: 'inc', by: 4 });
  assert.equal(s.context, { n: 4, m: 1, log: '' });
  assert.ok(s.matches('s0'));
  [s] = machineStep(machine, s, { type: 'go', by: 1 });
  assert.equal(s.value, { s1: 'a' });
  assert.equal(s.context, { n: 5, m: 11, log: '' });
});

test('an assignment on a snapshot without context fails as xstate fails it', () => {
  const machine = setup({}).createMachine({ on: { set: { actions: assign({ n: 1 }) } } } as never) as unknown as AnyStateMachine;
  // xstate gives a machine without context `{}`; a snapshot can still come without one.
  const start = { ...initialTransition(machine)[0], context: undefined } as unknown as AnyMachineSnapshot;
  const expected = outcome(() => transition(machine, start, { type: 'set' } as never) as [AnyMachineSnapshot, unknown[]]);
  assert.is(expected.ok, false);
  assert.equal(outcome(() => machineStep(machine, start, { type: 'set' })), expected);
});

test('an assignment that spawns goes the slow way, and its child is kept', () => {
  const machine = setup({ types: {} as { context: { child: unknown }; events: { type: 'start' } } }).createMachine({
    context: { child: undefined },
    on: { start: { actions: assign({ child: ({ spawn }) => spawn(fromPromise(async () => 1)) }) } },
  }) as unknown as AnyStateMachine;
  const [next] = machineStep(machine, initialTransition(machine)[0], { type: 'start' });
  assert.is(Object.keys(next.children).length, 1);
  assert.ok((next.context as { child: unknown }).child);
});

test.run();
