/**
 * Type tests for declaring versions and their upgrades: each `@ts-expect-error`
 * line must be a compile error (tsc fails if it is not), and the plain lines
 * must compile. Checked by `tsc --noEmit -p test/types/tsconfig.json`.
 */
import { assign, setup } from 'xstate';
import { ask, defineVersion, disallow, P, tell, type EventsOf } from '../../runtime/index.ts';

const v1Messages = {
  insert: tell({ x: P.number }),
  contains: ask({ x: P.number }, P.boolean),
};
const v1 = defineVersion({
  type: 'set',
  version: 1,
  messages: v1Messages,
  machine: setup({ types: { context: {} as { items: number[] }, events: {} as EventsOf<typeof v1Messages> } }).createMachine({
    context: { items: [] },
    on: { insert: { actions: assign({ items: ({ context, event }) => [...context.items, event.x] }) } },
  }),
  replies: { contains: ({ snapshot, request }) => snapshot.context.items.includes(request.x) },
});

const v2Messages = {
  insert: tell({ x: P.number, weight: P.number }),
  contains: ask({ x: P.number }, P.boolean),
  weight: ask({ x: P.number }, P.number),
};
const v2Machine = setup({ types: { context: {} as { weights: Record<string, number> }, events: {} as EventsOf<typeof v2Messages> } }).createMachine({
  context: { weights: {} },
});
const v2Base = defineVersion({
  type: 'set',
  version: 2,
  messages: v2Messages,
  machine: v2Machine,
  replies: {
    contains: ({ snapshot, request }) => String(request.x) in snapshot.context.weights,
    weight: ({ snapshot, request }) => snapshot.context.weights[String(request.x)] ?? 0,
  },
});

// A complete, correct upgrade compiles.
v2Base.from(v1, {
  transform: ({ context }) => ({ context: { weights: Object.fromEntries(context.items.map((x) => [String(x), 1])) } }),
  past: {
    handlers: {
      insert: ({ request, target }) => target.insert({ x: request.x, weight: 1 }),
      contains: ({ request, target }) => target.contains(request),
    },
  },
  future: {
    handlers: {
      insert: ({ request, target }) => target.insert({ x: request.x }),
      contains: ({ request, target }) => target.contains(request),
      weight: disallow('v1 has no weights'),
    },
  },
});

// Every reply function an ask needs must be there.
defineVersion({
  type: 'set',
  version: 2,
  messages: v2Messages,
  machine: v2Machine,
  // @ts-expect-error the ask 'weight' has no reply function
  replies: { contains: () => true },
});

// A reply of the wrong type does not compile.
defineVersion({
  type: 'set',
  version: 1,
  messages: v1Messages,
  machine: v1.machine,
  // @ts-expect-error contains replies a boolean, not a string
  replies: { contains: () => 'yes' },
});

// A TF whose input is not version 1's state does not compile.
v2Base.from(v1, {
  // @ts-expect-error v1's context has `items`, not `members`
  transform: ({ context }: { context: { members: string[] } }) => ({ context: { weights: {} } }),
});

// A TF must produce version 2's state.
v2Base.from(v1, {
  // @ts-expect-error v2's context is { weights }, not { items }
  transform: ({ context }) => ({ context: { items: context.items } }),
});

// A past SO must handle every message of version 1.
v2Base.from(v1, {
  past: {
    // @ts-expect-error 'contains' of v1 is not handled
    handlers: {
      insert: ({ request, target }) => target.insert({ x: request.x, weight: 1 }),
    },
  },
});

// A future SO must handle every message of version 2.
v2Base.from(v1, {
  future: {
    // @ts-expect-error 'weight' of v2 is not handled (write disallow(...) if it cannot be served)
    handlers: {
      insert: ({ request, target }) => target.insert({ x: request.x }),
      contains: ({ request, target }) => target.contains(request),
    },
  },
});

// An SO's handle is typed by the object it simulates through.
v2Base.from(v1, {
  future: {
    handlers: {
      // @ts-expect-error a v1 object has no 'weight' message
      insert: ({ request, target }) => target.weight({ x: request.x }),
      contains: ({ request, target }) => target.contains(request),
      weight: disallow('v1 has no weights'),
    },
  },
});

// An SO handler must reply with the simulated message's reply type.
v2Base.from(v1, {
  past: {
    handlers: {
      insert: ({ request, target }) => target.insert({ x: request.x, weight: 1 }),
      // @ts-expect-error contains must reply a boolean
      contains: ({ request, target }) => target.weight(request),
    },
  },
});

// `compatible` is allowed only when every message of v1 exists in v2.
const v3Messages = { contains: ask({ x: P.number }, P.boolean) };
const v3 = defineVersion({
  type: 'set',
  version: 3,
  messages: v3Messages,
  machine: setup({ types: { context: {} as { items: number[] }, events: {} as EventsOf<typeof v3Messages> } }).createMachine({ context: { items: [] } }),
  replies: { contains: () => false },
});
// @ts-expect-error v3 dropped 'insert', so it cannot be compatible with v1
v3.from(v1, { compatible: true });

// Interceptor SOs observe typed calls of the target version.
v2Base.from(v1, {
  future: {
    initialState: { seen: 0 },
    handlers: {
      insert: ({ request, target }) => target.insert({ x: request.x }),
      contains: ({ request, target }) => target.contains(request),
      weight: ({ state }) => state.seen,
    },
    observe: (call) => {
      if (call.message === 'insert') {
        const x: number = call.request.x;
        call.setState({ seen: call.state.seen + x });
      }
      // @ts-expect-error v1 has no message 'weight' to observe
      if (call.message === 'weight') return;
    },
  },
});
