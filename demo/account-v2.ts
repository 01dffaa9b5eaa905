/**
 * `account` version 2, published to running nodes as a signed bundle:
 * balances are kept in **cents**, every change is **counted**, and a new
 * message `statement` reports both.
 *
 * Carried from version 1 by:
 * - the **TF** 1→2: units × 100, plus the cents the future SO held (below);
 * - the **past SO**, serving v1 callers on a v2 node: v1 speaks whole units,
 *   so it sees the balance rounded down to a unit — exactly what a v1 node
 *   shows while v2 callers have added odd cents through the future SO;
 * - the **future SO**, serving v2 callers on a v1 node: v1 can only hold whole
 *   units, so the SO keeps the odd cents (0–99) in its own state, and hands
 *   them to the TF. It refuses `statement` (see there).
 *
 * @module
 */
import { assign, setup } from 'xstate';
import { ask, defineActorType, defineService, defineVersion, disallow, P, type EventsOf } from '../runtime/index.ts';
import { accountV1 } from './service.ts';

const cents = P.number.int().positive();

/** Version 2's interface. */
export const v2Messages = {
  /** Adds `cents`; replies with the new balance in cents. */
  deposit: ask({ cents }, P.number),
  /** Takes `cents` if the balance covers them (`ok: false` and no change otherwise). */
  withdraw: ask({ cents }, { ok: P.boolean, balanceCents: P.number }),
  /** The balance in cents. */
  balance: ask({}, P.number),
  /**
   * The balance and the number of changes (deposits and withdrawals that
   * succeeded) since the account came to version 2 — version 1 kept no count.
   */
  statement: ask({}, { balanceCents: P.number, operations: P.number }),
};

/** Version 2's persisted state. */
export interface AccountV2Context {
  balanceCents: number;
  /** Changes applied since the account was carried to version 2. */
  operations: number;
}

/** What the future SO keeps for one account on a v1 node: the cents v1 cannot hold. */
export interface CentsOnV1 {
  /** 0–99: the part of the balance below one unit. */
  extraCents: number;
}

const covers = (balanceCents: number, want: number) => want <= balanceCents;

const v2Machine = setup({
  types: { context: {} as AccountV2Context, events: {} as EventsOf<typeof v2Messages> },
}).createMachine({
  id: 'account',
  context: { balanceCents: 0, operations: 0 },
  on: {
    deposit: { actions: assign({ balanceCents: ({ context, event }) => context.balanceCents + event.cents, operations: ({ context }) => context.operations + 1 }) },
    withdraw: {
      guard: ({ context, event }) => covers(context.balanceCents, event.cents),
      actions: assign({ balanceCents: ({ context, event }) => context.balanceCents - event.cents, operations: ({ context }) => context.operations + 1 }),
    },
  },
});

const toUnits = (c: number) => Math.floor(c / 100);

export const accountV2 = defineVersion({
  type: 'account',
  version: 2,
  messages: v2Messages,
  machine: v2Machine,
  replies: {
    deposit: ({ snapshot }) => snapshot.context.balanceCents,
    withdraw: ({ snapshot, previous, request }) => ({ ok: covers(previous.context.balanceCents, request.cents), balanceCents: snapshot.context.balanceCents }),
    balance: ({ snapshot }) => snapshot.context.balanceCents,
    statement: ({ snapshot }) => ({ balanceCents: snapshot.context.balanceCents, operations: snapshot.context.operations }),
  },
}).from(accountV1, {
  // Identity: v2 shows units × 100 + the cents the future SO held — what the
  // future SO showed before; the past SO shows ⌊cents / 100⌋ = the v1 units.
  // The count starts here: version 1 never recorded one.
  transform: ({ context, future }) => ({
    context: { balanceCents: context.balance * 100 + (future?.extraCents ?? 0), operations: 0 },
  }),

  // v1 callers on a v2 node. Stateless: a v1 amount is a whole number of units.
  past: {
    handlers: {
      deposit: ({ request, target }) => toUnits(target.deposit({ cents: request.amount * 100 })),
      withdraw: ({ request, target }) => {
        const r = target.withdraw({ cents: request.amount * 100 });
        return { ok: r.ok, balance: toUnits(r.balanceCents) };
      },
      balance: ({ target }) => toUnits(target.balance()),
    },
  },

  // v2 callers on a v1 node (direct style: v1 callers change whole units
  // only, so they can never touch the odd cents this SO keeps).
  future: {
    initialState: { extraCents: 0 } as CentsOnV1,
    handlers: {
      deposit: ({ request, target, state, setState }) => {
        const sum = state.extraCents + request.cents;
        const whole = toUnits(sum);
        const units = whole > 0 ? target.deposit({ amount: whole }) : target.balance();
        setState({ extraCents: sum - whole * 100 });
        return units * 100 + (sum - whole * 100);
      },
      withdraw: ({ request, target, state, setState }) => {
        const units = target.balance();
        const total = units * 100 + state.extraCents;
        if (!covers(total, request.cents)) return { ok: false, balanceCents: total };
        const after = total - request.cents;
        const take = units - toUnits(after);
        if (take > 0 && !target.withdraw({ amount: take }).ok) {
          // Cannot happen (take ≤ units); refusing keeps the turn all-or-nothing if it ever did.
          return disallow('version 1 refused a withdrawal its balance covers');
        }
        setState({ extraCents: after % 100 });
        return { ok: true, balanceCents: after };
      },
      balance: ({ target, state }) => target.balance() * 100 + state.extraCents,
      // Disallowed by design: version 1 does not record operations, and v1
      // callers keep changing the account here unseen by this (direct) SO, so
      // any count it gave would be a guess — and a guess would contradict the
      // count the v2 object reports once the node upgrades. Callers get
      // `Disallowed`, never a wrong number; on v2 nodes the call is served.
      statement: disallow('a version 1 node does not record operations, so any count would be a guess; ask again once this account is served by version 2'),
    },
  },
});

export const account = defineActorType('account', [accountV1, accountV2]);

export default defineService('bank', [account]);
