/**
 * Message interfaces: for each message of an actor version, its request
 * schema and, for an ask, its reply schema. A tell has no reply.
 *
 * @module
 */
import type { Infer, Schema } from '../schema.ts';

/** A request/reply message: the caller waits for the reply. */
export interface AskSpec<TRequest extends Schema = Schema, TReply extends Schema = Schema> {
  readonly kind: 'ask';
  readonly request: TRequest;
  readonly reply: TReply;
  /** Accept NaN and ±Infinity in the payload (refused by default). */
  readonly nonFinite?: boolean;
}

/** A one-way message: the caller is told only that it was accepted. */
export interface TellSpec<TRequest extends Schema = Schema> {
  readonly kind: 'tell';
  readonly request: TRequest;
  /** Accept NaN and ±Infinity in the payload (refused by default). */
  readonly nonFinite?: boolean;
}

/** Options of a message declaration. */
export interface MessageOptions {
  /**
   * Accept NaN, Infinity and -Infinity where the request schema accepts a
   * number. Refused by default (`InvalidPayload`): `P.number` matches them,
   * and one caller could otherwise store NaN in an actor for good.
   */
  nonFinite?: boolean;
}

/** One message of an interface. */
export type MessageSpec = AskSpec | TellSpec;

/** A version's message interface: message name → spec. */
export type MessageSpecs = Record<string, MessageSpec>;

/**
 * Declares an ask: `ask({ by: P.number }, P.number)`.
 * @param request pattern the payload must match (an object pattern)
 * @param reply pattern of the reply (its static type; replies are not re-validated)
 */
export function ask<const TRequest extends Schema, const TReply extends Schema>(
  request: TRequest,
  reply: TReply,
  options: MessageOptions = {},
): AskSpec<TRequest, TReply> {
  return options.nonFinite ? { kind: 'ask', request, reply, nonFinite: true } : { kind: 'ask', request, reply };
}

/** Declares a tell: `tell({ reason: P.string })`. */
export function tell<const TRequest extends Schema>(request: TRequest, options: MessageOptions = {}): TellSpec<TRequest> {
  return options.nonFinite ? { kind: 'tell', request, nonFinite: true } : { kind: 'tell', request };
}

/** The payload type of a message. */
export type RequestOf<TSpec> = TSpec extends { request: infer R } ? Infer<R> : never;

/** The reply type of a message (`void` for a tell). */
export type ReplyOf<TSpec> = TSpec extends AskSpec<any, infer R> ? Infer<R> : void;

/** Names of the asks of an interface. */
export type AskNames<TMessages extends MessageSpecs> = {
  [K in keyof TMessages & string]: TMessages[K] extends AskSpec ? K : never;
}[keyof TMessages & string];

/**
 * The xstate events a version's machine receives: one per message, the
 * payload's fields next to `type`. Use it in `setup({ types: { events } })`.
 */
export type EventsOf<TMessages extends MessageSpecs> = {
  [K in keyof TMessages & string]: { type: K } & RequestOf<TMessages[K]>;
}[keyof TMessages & string];
