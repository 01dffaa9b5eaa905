/**
 * cart, version 1: items and quantities, then checkout. A checked-out cart
 * ignores further changes.
 */
import { assign, setup } from 'xstate';
import { ask, defineVersion, P, tell, type EventsOf } from 'molt';

/** One line of a cart. */
export const line = { sku: P.string, qty: P.number };

/** What callers of cart@1 can send. */
const messages = {
  add: tell({ sku: P.string, qty: P.number.int().positive() }),
  remove: tell({ sku: P.string }),
  items: ask({}, P.array(line)),
  status: ask({}, P.union('open', 'checkedOut')),
  checkout: ask({}, P.array(line)),
};

/** Quantity by SKU. */
export type Items = Record<string, number>;

/** The lines of a cart, in SKU order. */
export const linesOf = (items: Items) =>
  Object.entries(items)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([sku, qty]) => ({ sku, qty }));

const machine = setup({
  types: { context: {} as { items: Items }, events: {} as EventsOf<typeof messages> },
}).createMachine({
  id: 'cart',
  context: { items: {} },
  initial: 'open',
  states: {
    open: {
      on: {
        add: { actions: assign({ items: ({ context, event }) => ({ ...context.items, [event.sku]: (context.items[event.sku] ?? 0) + event.qty }) }) },
        remove: {
          actions: assign({
            items: ({ context, event }) => {
              const { [event.sku]: _removed, ...rest } = context.items;
              return rest;
            },
          }),
        },
        checkout: { target: 'checkedOut' },
      },
    },
    checkedOut: {},
  },
});

export const cartV1 = defineVersion({
  type: 'cart',
  version: 1,
  messages,
  machine,
  replies: {
    items: ({ snapshot }) => linesOf(snapshot.context.items),
    status: ({ snapshot }) => (snapshot.matches('open') ? 'open' : 'checkedOut'),
    checkout: ({ snapshot }) => linesOf(snapshot.context.items),
  },
});
