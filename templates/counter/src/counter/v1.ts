/**
 * counter, version 1: a number that callers add to, read and reset.
 * Each actor (one per key) keeps its own count, persisted after every change.
 */
import { assign, setup } from 'xstate';
import { ask, defineVersion, P, tell, type EventsOf } from 'molt';

/** What callers of counter@1 can send: an `ask` waits for a reply, a `tell` does not. */
const messages = {
  increment: ask({ by: P.number }, P.number),
  get: ask({}, P.number),
  reset: tell({}),
};

/** The behaviour: one event per message, with the payload's fields beside `type`. */
const machine = setup({
  types: { context: {} as { count: number }, events: {} as EventsOf<typeof messages> },
}).createMachine({
  id: 'counter',
  context: { count: 0 },
  on: {
    increment: { actions: assign({ count: ({ context, event }) => context.count + event.by }) },
    reset: { actions: assign({ count: 0 }) },
  },
});

export const counterV1 = defineVersion({
  type: 'counter',
  version: 1,
  messages,
  machine,
  // The reply of each ask, read from the state after the message.
  replies: {
    increment: ({ snapshot }) => snapshot.context.count,
    get: ({ snapshot }) => snapshot.context.count,
  },
});
