/**
 * cart, version 3: checkout needs a shipping address, which the order keeps
 * (`address` reads it). Carts checked out before v3 have none (null).
 */
import { assign, setup } from 'xstate';
import { ask, defineVersion, disallow, P, tell, type EventsOf } from 'molt';
import { line, linesOf, type Items } from './v1.ts';
import { cartV2 } from './v2.ts';

/** What callers of cart@3 can send. */
const messages = {
  add: tell({ sku: P.string, qty: P.number.int().positive() }),
  remove: tell({ sku: P.string }),
  items: ask({}, P.array(line)),
  status: ask({}, P.union('open', 'checkedOut')),
  applyCoupon: tell({ code: P.string }),
  coupon: ask({}, P.union(P.string, null)),
  address: ask({}, P.union(P.string, null)),
  checkout: ask({ address: P.string }, { lines: P.array(line), coupon: P.union(P.string, null), address: P.union(P.string, null) }),
};

const machine = setup({
  types: { context: {} as { items: Items; coupon: string | null; address: string | null }, events: {} as EventsOf<typeof messages> },
}).createMachine({
  id: 'cart',
  context: { items: {}, coupon: null, address: null },
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
        checkout: { target: 'checkedOut', actions: assign({ address: ({ event }) => event.address }) },
      },
    },
    checkedOut: {},
  },
});

/** What the future SO keeps for a cart on a v2 node: the address a v3 caller checked out with. */
type FutureState = { address: string | null };

export const cartV3 = defineVersion({
  type: 'cart',
  version: 3,
  messages,
  machine,
  replies: {
    items: ({ snapshot }) => linesOf(snapshot.context.items),
    status: ({ snapshot }) => (snapshot.matches('open') ? 'open' : 'checkedOut'),
    coupon: ({ snapshot }) => snapshot.context.coupon,
    address: ({ snapshot }) => snapshot.context.address,
    checkout: ({ snapshot }) => ({ lines: linesOf(snapshot.context.items), coupon: snapshot.context.coupon, address: snapshot.context.address }),
  },
}).from(cartV2, {
  // The address comes from the future SO if a v3 caller checked out on a v2
  // node; otherwise there is none yet (or never: a cart checked out at v2).
  transform: ({ context, future }) => ({ context: { ...context, address: future?.address ?? null } }),

  // v2 callers on a v3 node.
  past: {
    handlers: {
      add: ({ request, target }) => target.add(request),
      remove: ({ request, target }) => target.remove(request),
      items: ({ target }) => target.items(),
      status: ({ target }) => target.status(),
      applyCoupon: ({ request, target }) => target.applyCoupon(request),
      coupon: ({ target }) => target.coupon(),
      // Disallowed, and it must be: v3 checks out only with a shipping
      // address, and a v2 caller has no way to give one. Checking out without
      // it would create an order nobody can ship; inventing one would ship it
      // to the wrong place. Either answer would be wrong, so v2 callers get a
      // Disallowed error and must upgrade to check out. Everything else they
      // can still do.
      checkout: disallow('cart@3 needs a shipping address to check out, and cart@2 callers cannot give one: upgrade the caller to cart@3'),
    },
  },

  // v3 callers on a v2 node: the v2 object checks out, this SO keeps the address.
  future: {
    initialState: { address: null } as FutureState,
    handlers: {
      add: ({ request, target }) => target.add(request),
      remove: ({ request, target }) => target.remove(request),
      items: ({ target }) => target.items(),
      status: ({ target }) => target.status(),
      applyCoupon: ({ request, target }) => target.applyCoupon(request),
      coupon: ({ target }) => target.coupon(),
      address: ({ state }) => state.address,
      // As on a v3 object, only the checkout that closes the cart sets the address.
      checkout: ({ request, target, state, setState }) => {
        const closes = target.status() === 'open';
        const order = target.checkout();
        const address = closes ? request.address : state.address;
        if (closes) setState({ address });
        return { ...order, address };
      },
    },
  },
});
