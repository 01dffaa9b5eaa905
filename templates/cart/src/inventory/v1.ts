/**
 * inventory, version 1: stock by SKU in one warehouse (one actor per
 * warehouse). A reservation takes stock only if there is enough.
 */
import { assign, setup } from 'xstate';
import { ask, defineVersion, P, tell, type EventsOf } from 'molt';

/** What callers of inventory@1 can send. */
const messages = {
  restock: tell({ sku: P.string, qty: P.number.int().positive() }),
  reserve: ask({ sku: P.string, qty: P.number.int().positive() }, P.boolean),
  available: ask({ sku: P.string }, P.number),
};

const machine = setup({
  types: { context: {} as { stock: Record<string, number> }, events: {} as EventsOf<typeof messages> },
  guards: {
    inStock: ({ context, event }) => event.type === 'reserve' && (context.stock[event.sku] ?? 0) >= event.qty,
  },
}).createMachine({
  id: 'inventory',
  context: { stock: {} },
  on: {
    restock: { actions: assign({ stock: ({ context, event }) => ({ ...context.stock, [event.sku]: (context.stock[event.sku] ?? 0) + event.qty }) }) },
    reserve: {
      guard: 'inStock',
      actions: assign({ stock: ({ context, event }) => ({ ...context.stock, [event.sku]: (context.stock[event.sku] ?? 0) - event.qty }) }),
    },
  },
});

export const inventoryV1 = defineVersion({
  type: 'inventory',
  version: 1,
  messages,
  machine,
  replies: {
    // Reserved if the machine took the stock: compare before and after.
    reserve: ({ previous, snapshot, request }) => (snapshot.context.stock[request.sku] ?? 0) < (previous.context.stock[request.sku] ?? 0),
    available: ({ snapshot, request }) => snapshot.context.stock[request.sku] ?? 0,
  },
});
