/**
 * colorset, version 2: every element has a colour. `insertColor` replaces
 * `insert`, and `getColor` reads an element's colour (null if absent).
 *
 * Upgrading from version 1 needs all three pieces of the paper:
 * - the future SO lets a v1 node serve v2 callers before it upgrades. It is an
 *   *interceptor*: it also sees the calls v1 callers make to the object, so a
 *   colour never outlives the element it was given to;
 * - the transform function builds each actor's v2 state from its v1 state and
 *   the colours the future SO recorded;
 * - the past SO lets a v2 node keep serving v1 callers.
 */
import { assign, setup } from 'xstate';
import { ask, defineVersion, P, tell, type EventsOf } from 'molt';
import { colorsetV1 } from './v1.ts';

/** The colour of elements inserted without one (by v1 callers). */
export const DEFAULT_COLOR = 'none';

/** What callers of colorset@2 can send. */
const messages = {
  insertColor: tell({ x: P.number, color: P.string }),
  delete: tell({ x: P.number }),
  contains: ask({ x: P.number }, P.boolean),
  getColor: ask({ x: P.number }, P.union(P.string, P.nullish)),
  elements: ask({}, P.array(P.number)),
};

/** Colour by element (object keys are strings: `String(x)`). */
type Colors = Record<string, string>;

const machine = setup({
  types: { context: {} as { colors: Colors }, events: {} as EventsOf<typeof messages> },
}).createMachine({
  id: 'colorset',
  context: { colors: {} },
  on: {
    insertColor: { actions: assign({ colors: ({ context, event }) => ({ ...context.colors, [String(event.x)]: event.color }) }) },
    delete: { actions: assign({ colors: ({ context, event }) => without(context.colors, event.x) }) },
  },
});

function without(colors: Colors, x: number): Colors {
  const { [String(x)]: _removed, ...rest } = colors;
  return rest;
}

const sorted = (colors: Colors): number[] => Object.keys(colors).map(Number).sort((a, b) => a - b);

export const colorsetV2 = defineVersion({
  type: 'colorset',
  version: 2,
  messages,
  machine,
  replies: {
    contains: ({ snapshot, request }) => String(request.x) in snapshot.context.colors,
    getColor: ({ snapshot, request }) => snapshot.context.colors[String(request.x)] ?? null,
    elements: ({ snapshot }) => sorted(snapshot.context.colors),
  },
}).from(colorsetV1, {
  // Each element keeps the colour a v2 caller gave it through the future SO,
  // or gets the default. Pure: it may run again after a crash.
  transform: ({ context, future }) => ({
    context: { colors: Object.fromEntries(context.elements.map((x) => [String(x), future?.[String(x)] ?? DEFAULT_COLOR])) },
  }),

  // v1 callers on a v2 node. An insert of a new element gives it the default
  // colour; re-inserting an element that has one keeps it, as v1's insert of
  // an element already present changes nothing.
  past: {
    handlers: {
      insert: ({ request, target }) => {
        if (!target.contains(request)) target.insertColor({ x: request.x, color: DEFAULT_COLOR });
      },
      delete: ({ request, target }) => target.delete(request),
      contains: ({ request, target }) => target.contains(request),
      elements: ({ target }) => target.elements(),
    },
  },

  // v2 callers on a v1 node: the v1 object holds the elements, this SO's
  // state the colours v2 callers gave them.
  future: {
    initialState: {} as Colors,
    handlers: {
      insertColor: ({ request, target, state, setState }) => {
        target.insert({ x: request.x });
        setState({ ...state, [String(request.x)]: request.color });
      },
      delete: ({ request, target, state, setState }) => {
        target.delete(request);
        setState(without(state, request.x));
      },
      contains: ({ request, target }) => target.contains(request),
      getColor: ({ request, target, state }) => (target.contains(request) ? (state[String(request.x)] ?? DEFAULT_COLOR) : null),
      elements: ({ target }) => target.elements(),
    },
    // The interceptor: when a v1 caller deletes x through the object, the
    // colour recorded for x is stale (after insertColor(1, red) here, then
    // delete(1) and insert(1) through the object, element 1 is a new element
    // and red was the old one's colour). A direct SO could not see that
    // delete, and would have to disallow getColor instead. A v1 insert needs
    // nothing: of a new element there is no colour to clear, and of an element
    // already present it changes nothing, so the colour stands.
    observe: ({ message, request, state, setState }) => {
      if (message === 'delete' && String(request.x) in state) setState(without(state, request.x));
    },
  },
});
