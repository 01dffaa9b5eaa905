/**
 * The demo service `bank`, as its nodes start: one actor type, `account`, at
 * version 1. Version 1 keeps a balance in whole currency units.
 *
 * Versions 2 and 3 live in their own modules (./account-v2.ts,
 * ./account-v3.ts) and reach running nodes only as signed upgrade bundles —
 * this module is all a node is started with.
 *
 * Run a node of it by hand with `npx molt dev demo/service.ts`.
 *
 * @module
 */
import { assign, setup } from 'xstate';
import { ask, defineActorType, defineService, defineVersion, P, type EventsOf } from '../runtime/index.ts';

/** A positive whole number: version 1 knows only whole units. */
const units = P.number.int().positive();

/** Version 1's interface: whole units in, whole units out. */
export const v1Messages = {
  /** Adds `amount` units; replies with the new balance. */
  deposit: ask({ amount: units }, P.number),
  /** Takes `amount` units if the balance covers them (`ok: false` and no change otherwise). */
  withdraw: ask({ amount: units }, { ok: P.boolean, balance: P.number }),
  /** The balance in units. */
  balance: ask({}, P.number),
};

/** Version 1's persisted state. */
export interface AccountV1Context {
  /** Whole units. */
  balance: number;
}

const covers = (balance: number, amount: number) => amount <= balance;

const v1Machine = setup({
  types: { context: {} as AccountV1Context, events: {} as EventsOf<typeof v1Messages> },
}).createMachine({
  id: 'account',
  context: { balance: 0 },
  on: {
    deposit: { actions: assign({ balance: ({ context, event }) => context.balance + event.amount }) },
    withdraw: {
      guard: ({ context, event }) => covers(context.balance, event.amount),
      actions: assign({ balance: ({ context, event }) => context.balance - event.amount }),
    },
  },
});

export const accountV1 = defineVersion({
  type: 'account',
  version: 1,
  messages: v1Messages,
  machine: v1Machine,
  replies: {
    deposit: ({ snapshot }) => snapshot.context.balance,
    // Decided on the state the withdrawal saw, exactly as the guard did.
    withdraw: ({ snapshot, previous, request }) => ({ ok: covers(previous.context.balance, request.amount), balance: snapshot.context.balance }),
    balance: ({ snapshot }) => snapshot.context.balance,
  },
});

export const account = defineActorType('account', [accountV1]);

export default defineService('bank', [account]);
