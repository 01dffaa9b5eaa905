/**
 * Versions of an actor type, and the pieces that carry callers and state from
 * one version to the next (the model of Ajmani, Liskov and Shrira):
 *
 * - the **transform function** (TF) turns version i's persisted state into
 *   version i+1's; it sees the state of i+1's future SO and may seed the state
 *   of i+1's past SO;
 * - the **past SO** serves callers of i on a node running i+1 — and, chained
 *   behind the past SOs of later versions, on any newer node (a v1 caller on
 *   a v4 node passes the past SOs of v2, v3 and v4);
 * - the **future SO** serves callers of i+1 on a node still running i;
 * - or the new version declares itself **compatible**: it serves i's
 *   messages itself.
 *
 * All of these belong to the newer version, declared with `.from(previous, …)`.
 *
 * @module
 */
import type { AnyStateMachine, SnapshotFrom, ContextFrom } from 'xstate';
import type { AskNames, MessageSpecs, ReplyOf, RequestOf } from './messages.ts';

/** What a caller needs to speak one version of a type: its name, number and messages. */
export interface ActorInterface<
  TType extends string = string,
  TVersion extends number = number,
  TMessages extends MessageSpecs = MessageSpecs,
> {
  readonly type: TType;
  readonly version: TVersion;
  readonly messages: TMessages;
}

/** Computes the reply of an ask from the machine's snapshot after (and before) the message. */
export type ReplyFn<TSpec, TMachine extends AnyStateMachine> = (args: {
  /** The snapshot after the message was handled. */
  snapshot: SnapshotFrom<TMachine>;
  /** The snapshot before the message was handled. */
  previous: SnapshotFrom<TMachine>;
  request: RequestOf<TSpec>;
}) => ReplyOf<TSpec>;

/** One reply function per ask of the interface. */
export type ReplyFns<TMessages extends MessageSpecs, TMachine extends AnyStateMachine> = {
  [K in AskNames<TMessages>]: ReplyFn<TMessages[K], TMachine>;
};

/** The persisted state of a version: its machine's state value and context. */
export interface VersionState<TMachine extends AnyStateMachine> {
  value: SnapshotFrom<TMachine> extends { value: infer V } ? V : unknown;
  context: ContextFrom<TMachine>;
}

/** Arguments of a message call: the request may be left out when it has no required fields. */
export type CallArgs<TSpec> = {} extends RequestOf<TSpec> ? [request?: RequestOf<TSpec>] : [request: RequestOf<TSpec>];

/** A synchronous, typed handle on an object of another version, used inside simulation objects. */
export type Handle<TMessages extends MessageSpecs> = {
  readonly [K in keyof TMessages & string]: (...args: CallArgs<TMessages[K]>) => ReplyOf<TMessages[K]>;
};

declare const disallowBrand: unique symbol;

/** The refusal of a simulation object to serve a call it cannot answer correctly. */
export interface Disallow {
  readonly [disallowBrand]: true;
  readonly reason: string;
}

/**
 * Refuses a call in a simulation object: the caller gets a `Disallowed` error
 * naming the message, the version and this reason. Use it where any answer
 * would contradict what callers of the other version can observe.
 */
export function disallow(reason: string): Disallow {
  return { __moltDisallow: true, reason } as unknown as Disallow;
}

/** True if a simulation object's answer is a refusal. */
export function isDisallow(value: unknown): value is Disallow {
  return typeof value === 'object' && value !== null && (value as { __moltDisallow?: unknown }).__moltDisallow === true;
}

/** What a simulation object's handler receives. */
export interface SimulationCall<TRequest, TTarget extends MessageSpecs, TState> {
  request: TRequest;
  /** The object the SO simulates through (a handle on the node's current version, or the next SO down a chain). */
  target: Handle<TTarget>;
  /** The SO's own state (persisted with the actor). Treat as immutable. */
  state: TState;
  /** Replaces the SO's state; takes effect only if the call succeeds. */
  setState(next: TState): void;
}

/** A handler for one message of the simulated interface, or a standing refusal. */
export type SimulationHandler<TSpec, TTarget extends MessageSpecs, TState> =
  | ((call: SimulationCall<RequestOf<TSpec>, TTarget, TState>) => ReplyOf<TSpec> | Disallow)
  | Disallow;

/** A call made to the current object, as an interceptor SO observes it. */
export type ObservedCall<TTarget extends MessageSpecs> = {
  [K in keyof TTarget & string]: { message: K; request: RequestOf<TTarget[K]>; reply: ReplyOf<TTarget[K]> };
}[keyof TTarget & string];

/**
 * A simulation object: implements interface `TServes` through a handle on
 * `TTarget`. With `observe` it is an *interceptor*: it also sees every call
 * made to the object it simulates through (and its reply) by anyone else.
 * Without it, it is *direct*: it sees only the calls made to it.
 */
export interface SimulationObject<TServes extends MessageSpecs, TTarget extends MessageSpecs, TState> {
  /** Initial SO state for actors that have none yet. */
  initialState?: TState;
  /** One handler per message of the simulated interface: exhaustive by type. */
  handlers: { [K in keyof TServes & string]: SimulationHandler<TServes[K], TTarget, TState> };
  /** Interceptor style: called after each call made to the target by anyone but this SO. */
  observe?: (call: ObservedCall<TTarget> & { state: TState; setState(next: TState): void }) => void;
}

/** Alias used in declarations: a past or future simulation object. */
export type AnySimulationObject = SimulationObject<MessageSpecs, MessageSpecs, any>;

/** What the transform function receives. */
export interface TransformInput<TPrevMachine extends AnyStateMachine, TFutureState> extends VersionState<TPrevMachine> {
  /** State of the new version's future SO for this actor (what callers of the new version changed through it). */
  future: TFutureState | undefined;
}

/** What the transform function returns. */
export interface TransformOutput<TMachine extends AnyStateMachine, TPastState> {
  context: ContextFrom<TMachine>;
  /** State value in the new machine; defaults to the old value if it exists there, else the initial one. */
  value?: VersionState<TMachine>['value'];
  /** Initial state of the new version's past SO for this actor. */
  past?: TPastState;
}

/** A transform function from version i's state (plus future SO state) to version i+1's. */
export type TransformFunction<TPrevMachine extends AnyStateMachine, TMachine extends AnyStateMachine, TFutureState, TPastState> = (
  input: TransformInput<TPrevMachine, TFutureState>,
) => TransformOutput<TMachine, TPastState>;

/** Everything that carries version i to version i+1, declared on version i+1. */
export interface UpgradeSpec<
  TPrev extends AnyActorVersion,
  TMessages extends MessageSpecs,
  TMachine extends AnyStateMachine,
  TPastState,
  TFutureState,
> {
  /** Persisted state of i → state of i+1. Omit only if the state shape did not change. */
  transform?: TransformFunction<TPrev['machine'], TMachine, TFutureState, TPastState>;
  /** Serves callers of i on a node at i+1, and on newer nodes through their past SOs (its `target` is then the next past SO). */
  past?: SimulationObject<TPrev['messages'], TMessages, TPastState>;
  /** Serves callers of i+1 on a node still at i. */
  future?: SimulationObject<TMessages, TPrev['messages'], TFutureState>;
  /**
   * The new object serves version i's messages itself (same names, same schemas).
   * Only allowed where every message of i exists in i+1.
   */
  compatible?: [Exclude<keyof TPrev['messages'], keyof TMessages>] extends [never] ? boolean : never;
  /** State of i+1 → state of i, which makes `molt rollback` possible. */
  down?: (input: VersionState<TMachine>) => { context: ContextFrom<TPrev['machine']>; value?: VersionState<TPrev['machine']>['value'] };
}

/** The upgrade pieces as the runtime sees them, with types erased. */
export interface AnyUpgradeSpec {
  transform?: (input: { value: unknown; context: unknown; future: unknown }) => { context: unknown; value?: unknown; past?: unknown };
  past?: AnySimulationObject;
  future?: AnySimulationObject;
  compatible?: boolean;
  down?: (input: { value: unknown; context: unknown }) => { context: unknown; value?: unknown };
}

/**
 * One version of an actor type: its interface, its xstate machine and its
 * reply functions, and (from version 2 on) how it upgrades from the previous.
 */
export class ActorVersion<
  TType extends string,
  TVersion extends number,
  TMessages extends MessageSpecs,
  TMachine extends AnyStateMachine,
> implements ActorInterface<TType, TVersion, TMessages> {
  readonly type: TType;
  readonly version: TVersion;
  readonly messages: TMessages;
  readonly machine: TMachine;
  readonly replies: ReplyFns<TMessages, TMachine>;
  /** The version this one upgrades from, if declared with `.from()`. */
  readonly previous: AnyActorVersion | undefined;
  /** TF and SOs from the previous version. */
  readonly upgrade: AnyUpgradeSpec | undefined;

  /** @internal use {@link defineVersion} */
  constructor(
    def: { type: TType; version: TVersion; messages: TMessages; machine: TMachine; replies: ReplyFns<TMessages, TMachine> },
    previous?: AnyActorVersion,
    upgrade?: AnyUpgradeSpec,
  ) {
    this.type = def.type;
    this.version = def.version;
    this.messages = def.messages;
    this.machine = def.machine;
    this.replies = def.replies;
    this.previous = previous;
    this.upgrade = upgrade;
  }

  /**
   * Declares how this version upgrades from `previous`: its transform
   * function, past and future simulation objects, or `compatible: true`.
   */
  from<TPrev extends AnyActorVersion, TPastState = undefined, TFutureState = undefined>(
    previous: TPrev,
    upgrade: UpgradeSpec<TPrev, TMessages, TMachine, TPastState, TFutureState>,
  ): ActorVersion<TType, TVersion, TMessages, TMachine> {
    return new ActorVersion(
      { type: this.type, version: this.version, messages: this.messages, machine: this.machine, replies: this.replies },
      previous,
      upgrade as unknown as AnyUpgradeSpec,
    );
  }

  /** The interface alone (what a client needs), without the machine. */
  get interface(): ActorInterface<TType, TVersion, TMessages> {
    return { type: this.type, version: this.version, messages: this.messages };
  }
}

/** Any actor version, with its types erased. */
// `any` messages: a version's `from` method is contravariant in its messages.
export type AnyActorVersion = ActorVersion<string, number, any, AnyStateMachine>;

/**
 * Declares one version of an actor type.
 *
 * @example
 * ```ts
 * const messages = { increment: ask({ by: P.number }, P.number), get: ask({}, P.number) };
 * const machine = setup({ types: { context: {} as { count: number }, events: {} as EventsOf<typeof messages> } })
 *   .createMachine({ context: { count: 0 }, on: {
 *     increment: { actions: assign({ count: ({ context, event }) => context.count + event.by }) } } });
 * export const counterV1 = defineVersion({
 *   type: 'counter', version: 1, messages, machine,
 *   replies: { increment: ({ snapshot }) => snapshot.context.count, get: ({ snapshot }) => snapshot.context.count },
 * });
 * ```
 */
export function defineVersion<
  const TType extends string,
  const TVersion extends number,
  TMessages extends MessageSpecs,
  TMachine extends AnyStateMachine,
>(def: {
  type: TType;
  version: TVersion;
  messages: TMessages;
  machine: TMachine;
  replies: ReplyFns<TMessages, TMachine>;
}): ActorVersion<TType, TVersion, TMessages, TMachine> {
  return new ActorVersion(def);
}
