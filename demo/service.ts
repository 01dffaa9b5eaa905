/**
 * The demo service: one counter type at version 1.
 * Run a node of it with `npx molt dev demo/service.ts`.
 */
import { assign, setup } from 'xstate';
import { ask, defineActorType, defineService, defineVersion, P, tell, type EventsOf } from '../runtime/index.ts';

const messages = {
  increment: ask({ by: P.number }, P.number),
  get: ask({}, P.number),
  reset: tell({}),
};

export const counterV1 = defineVersion({
  type: 'counter',
  version: 1,
  messages,
  machine: setup({ types: { context: {} as { count: number }, events: {} as EventsOf<typeof messages> } }).createMachine({
    context: { count: 0 },
    on: {
      increment: { actions: assign({ count: ({ context, event }) => context.count + event.by }) },
      reset: { actions: assign({ count: 0 }) },
    },
  }),
  replies: {
    increment: ({ snapshot }) => snapshot.context.count,
    get: ({ snapshot }) => snapshot.context.count,
  },
});

export default defineService('demo', [defineActorType('counter', [counterV1])]);
