/**
 * `account` version 3, published to running nodes as a signed bundle: funds
 * can be put **on hold** (a card authorisation, say). The balance is the
 * ledger balance; the **available** balance is what is not held, and only
 * available funds can be withdrawn or held again.
 *
 * Carried from version 2 by:
 * - the **future SO**, serving v3 callers on a v2 node: v2 has no holds, so a
 *   hold *moves* the funds out of the v2 balance (a v2 withdrawal) into the
 *   SO's own state; a release moves them back (a v2 deposit). v2 callers thus
 *   see the available balance, and can never spend held funds;
 * - the **TF** 2→3: ledger balance = v2 balance + the funds the SO held; the
 *   holds become real v3 holds;
 * - the **past SO**, serving v2 callers on a v3 node: v2 callers see the
 *   available balance as their balance — exactly what a v2 node showed them.
 *
 * On a v1 node, v3 callers are served by this future SO chained onto v2's
 * (a hold there moves whole units and odd cents through both).
 *
 * @module
 */
import { assign, setup } from 'xstate';
import { ask, defineActorType, defineService, defineVersion, P, type EventsOf } from '../runtime/index.ts';
import { accountV1 } from './service.ts';
import { accountV2 } from './account-v2.ts';

const cents = P.number.int().positive();
const holdId = P.string.minLength(1).maxLength(64);
const balances = { balanceCents: P.number, availableCents: P.number };

/** Version 3's interface. */
export const v3Messages = {
  /** Adds `cents` to the balance (and to the available balance). */
  deposit: ask({ cents }, balances),
  /** Takes `cents` if the *available* balance covers them (`ok: false` and no change otherwise). */
  withdraw: ask({ cents }, { ok: P.boolean, ...balances }),
  /** Ledger and available balance. */
  balance: ask({}, balances),
  /** Reserves `cents` of the available balance under `holdId` (`ok: false` if not covered, or the id is taken). */
  placeHold: ask({ holdId, cents }, { ok: P.boolean, availableCents: P.number }),
  /** Gives a hold's funds back to the available balance (`ok: false` if there is no such hold). */
  releaseHold: ask({ holdId }, { ok: P.boolean, availableCents: P.number }),
  /** Balances, the changes since version 2 (holds placed and released count), and the open holds. */
  statement: ask({}, { ...balances, operations: P.number, holds: P.record(P.string, P.number) }),
};

/** Version 3's persisted state. */
export interface AccountV3Context {
  /** Ledger balance: held funds included. */
  balanceCents: number;
  operations: number;
  /** Open holds: id → cents. */
  holds: Record<string, number>;
}

/** What the future SO keeps for one account on a v2 (or v1) node. */
export interface HoldsOnV2 {
  /** Funds moved out of the v2 balance, by hold id. */
  holds: Record<string, number>;
}

const heldOf = (holds: Record<string, number>) => Object.values(holds).reduce((a, b) => a + b, 0);
const availableOf = (c: AccountV3Context) => c.balanceCents - heldOf(c.holds);
const covers = (available: number, want: number) => want <= available;
const withoutHold = (holds: Record<string, number>, id: string) => {
  const { [id]: _released, ...rest } = holds;
  return rest;
};

const v3Machine = setup({
  types: { context: {} as AccountV3Context, events: {} as EventsOf<typeof v3Messages> },
}).createMachine({
  id: 'account',
  context: { balanceCents: 0, operations: 0, holds: {} },
  on: {
    deposit: { actions: assign({ balanceCents: ({ context, event }) => context.balanceCents + event.cents, operations: ({ context }) => context.operations + 1 }) },
    withdraw: {
      guard: ({ context, event }) => covers(availableOf(context), event.cents),
      actions: assign({ balanceCents: ({ context, event }) => context.balanceCents - event.cents, operations: ({ context }) => context.operations + 1 }),
    },
    placeHold: {
      guard: ({ context, event }) => !Object.hasOwn(context.holds, event.holdId) && covers(availableOf(context), event.cents),
      actions: assign({ holds: ({ context, event }) => ({ ...context.holds, [event.holdId]: event.cents }), operations: ({ context }) => context.operations + 1 }),
    },
    releaseHold: {
      guard: ({ context, event }) => Object.hasOwn(context.holds, event.holdId),
      actions: assign({ holds: ({ context, event }) => withoutHold(context.holds, event.holdId), operations: ({ context }) => context.operations + 1 }),
    },
  },
});

const view = (c: AccountV3Context) => ({ balanceCents: c.balanceCents, availableCents: availableOf(c) });

export const accountV3 = defineVersion({
  type: 'account',
  version: 3,
  messages: v3Messages,
  machine: v3Machine,
  replies: {
    deposit: ({ snapshot }) => view(snapshot.context),
    withdraw: ({ snapshot, previous, request }) => ({ ok: covers(availableOf(previous.context), request.cents), ...view(snapshot.context) }),
    balance: ({ snapshot }) => view(snapshot.context),
    placeHold: ({ snapshot, previous, request }) => ({
      ok: !Object.hasOwn(previous.context.holds, request.holdId) && covers(availableOf(previous.context), request.cents),
      availableCents: availableOf(snapshot.context),
    }),
    releaseHold: ({ snapshot, previous, request }) => ({ ok: Object.hasOwn(previous.context.holds, request.holdId), availableCents: availableOf(snapshot.context) }),
    statement: ({ snapshot }) => ({ ...view(snapshot.context), operations: snapshot.context.operations, holds: snapshot.context.holds }),
  },
}).from(accountV2, {
  // Identity: the new object shows ledger = v2 balance + held, available = v2
  // balance, the same count and holds — what the future SO showed; the past
  // SO shows the available balance — what the v2 object showed.
  transform: ({ context, future }) => {
    const holds = future?.holds ?? {};
    return { context: { balanceCents: context.balanceCents + heldOf(holds), operations: context.operations, holds } };
  },

  // v2 callers on a v3 node: their balance is the available balance.
  past: {
    handlers: {
      deposit: ({ request, target }) => target.deposit(request).availableCents,
      withdraw: ({ request, target }) => {
        const r = target.withdraw(request);
        return { ok: r.ok, balanceCents: r.availableCents };
      },
      balance: ({ target }) => target.balance().availableCents,
      statement: ({ target }) => {
        const s = target.statement();
        return { balanceCents: s.availableCents, operations: s.operations };
      },
    },
  },

  // v3 callers on a v2 node (direct style: the held funds are out of the v2
  // balance, so nothing a v2 caller does can reach them).
  future: {
    initialState: { holds: {} } as HoldsOnV2,
    handlers: {
      deposit: ({ request, target, state }) => {
        const available = target.deposit(request);
        return { balanceCents: available + heldOf(state.holds), availableCents: available };
      },
      withdraw: ({ request, target, state }) => {
        const r = target.withdraw(request);
        return { ok: r.ok, balanceCents: r.balanceCents + heldOf(state.holds), availableCents: r.balanceCents };
      },
      balance: ({ target, state }) => {
        const available = target.balance();
        return { balanceCents: available + heldOf(state.holds), availableCents: available };
      },
      placeHold: ({ request, target, state, setState }) => {
        if (Object.hasOwn(state.holds, request.holdId)) return { ok: false, availableCents: target.balance() };
        const r = target.withdraw({ cents: request.cents });
        if (r.ok) setState({ holds: { ...state.holds, [request.holdId]: request.cents } });
        return { ok: r.ok, availableCents: r.balanceCents };
      },
      releaseHold: ({ request, target, state, setState }) => {
        const amount = state.holds[request.holdId];
        if (amount === undefined || !Object.hasOwn(state.holds, request.holdId)) return { ok: false, availableCents: target.balance() };
        setState({ holds: withoutHold(state.holds, request.holdId) });
        return { ok: true, availableCents: target.deposit({ cents: amount }) };
      },
      // On a v1 node, `target.statement()` is version 2's future SO, which
      // disallows it (v1 keeps no count): the refusal reaches the v3 caller.
      statement: ({ target, state }) => {
        const s = target.statement();
        return { balanceCents: s.balanceCents + heldOf(state.holds), availableCents: s.balanceCents, operations: s.operations, holds: state.holds };
      },
    },
  },
});

export const account = defineActorType('account', [accountV1, accountV2, accountV3]);

export default defineService('bank', [account]);
