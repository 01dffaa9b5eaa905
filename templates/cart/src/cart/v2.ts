/**
 * cart, version 2: coupons. `applyCoupon` sets the cart's coupon (the last
 * one wins), `coupon` reads it, and checkout answers the coupon with the lines.
 */
import { assign, setup } from 'xstate';
import { ask, defineVersion, P, tell, type EventsOf } from 'molt';
import { cartV1, line, linesOf, type Items } from './v1.ts';

/** What callers of cart@2 can send. */
const messages = {
  add: tell({ sku: P.string, qty: P.number.int().positive() }),
  remove: tell({ sku: P.string }),
  items: ask({}, P.array(line)),
  status: ask({}, P.union('open', 'checkedOut')),
  applyCoupon: tell({ code: P.string }),
  coupon: ask({}, P.union(P.string, null)),
  checkout: ask({}, { lines: P.array(line), coupon: P.union(P.string, null) }),
};

const machine = setup({
  types: { context: {} as { items: Items; coupon: string | null }, events: {} as EventsOf<typeof messages> },
}).createMachine({
  id: 'cart',
  context: { items: {}, coupon: null },
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
        applyCoupon: { actions: assign({ coupon: ({ event }) => event.code }) },
        checkout: { target: 'checkedOut' },
      },
    },
    checkedOut: {},
  },
});

/** What the future SO keeps for a cart on a v1 node: the coupon a v2 caller applied. */
type FutureState = { coupon: string | null };

export const cartV2 = defineVersion({
  type: 'cart',
  version: 2,
  messages,
  machine,
  replies: {
    items: ({ snapshot }) => linesOf(snapshot.context.items),
    status: ({ snapshot }) => (snapshot.matches('open') ? 'open' : 'checkedOut'),
    coupon: ({ snapshot }) => snapshot.context.coupon,
    checkout: ({ snapshot }) => ({ lines: linesOf(snapshot.context.items), coupon: snapshot.context.coupon }),
  },
}).from(cartV1, {
  // A v1 cart has no coupon, unless a v2 caller applied one through the
  // future SO before this node upgraded: then it is the cart's coupon now.
  transform: ({ context, future }) => ({ context: { items: context.items, coupon: future?.coupon ?? null } }),

  // v1 callers on a v2 node: everything but checkout is the same message;
  // v1's checkout answers the lines alone.
  past: {
    handlers: {
      add: ({ request, target }) => target.add(request),
      remove: ({ request, target }) => target.remove(request),
      items: ({ target }) => target.items(),
      status: ({ target }) => target.status(),
      checkout: ({ target }) => target.checkout().lines,
    },
  },

  // v2 callers on a v1 node: the v1 object keeps the items, this SO the coupon.
  future: {
    initialState: { coupon: null } as FutureState,
    handlers: {
      add: ({ request, target }) => target.add(request),
      remove: ({ request, target }) => target.remove(request),
      items: ({ target }) => target.items(),
      status: ({ target }) => target.status(),
      // Like the v2 object, a checked-out cart ignores a coupon.
      applyCoupon: ({ request, target, setState }) => {
        if (target.status() === 'open') setState({ coupon: request.code });
      },
      coupon: ({ state }) => state.coupon,
      checkout: ({ target, state }) => ({ lines: target.checkout(), coupon: state.coupon }),
    },
  },
});
