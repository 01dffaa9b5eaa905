/**
 * colorset, version 1: a set of integers.
 */
import { assign, setup } from 'xstate';
import { ask, defineVersion, P, tell, type EventsOf } from 'molt';

/** What callers of colorset@1 can send. */
const messages = {
  insert: tell({ x: P.number }),
  delete: tell({ x: P.number }),
  contains: ask({ x: P.number }, P.boolean),
  elements: ask({}, P.array(P.number)),
};

const machine = setup({
  types: { context: {} as { elements: number[] }, events: {} as EventsOf<typeof messages> },
}).createMachine({
  id: 'colorset',
  context: { elements: [] },
  on: {
    insert: {
      actions: assign({
        elements: ({ context, event }) => (context.elements.includes(event.x) ? context.elements : [...context.elements, event.x].sort((a, b) => a - b)),
      }),
    },
    delete: { actions: assign({ elements: ({ context, event }) => context.elements.filter((e) => e !== event.x) }) },
  },
});

export const colorsetV1 = defineVersion({
  type: 'colorset',
  version: 1,
  messages,
  machine,
  replies: {
    contains: ({ snapshot, request }) => snapshot.context.elements.includes(request.x),
    elements: ({ snapshot }) => snapshot.context.elements,
  },
});
