/**
 * `molt`: declare versions, types and a service, and call actors.
 *
 * Declare versions with {@link defineVersion}, group them into types and a
 * service, and call actors with {@link createClient}; every error is a
 * {@link MoltError}. Running nodes is `molt/node`; publishing and operating
 * upgrades is `molt/upgrades`; writing scheduling functions is
 * `molt/schedules`; testing upgrades without NATS is `molt/testing`.
 *
 * @module
 */
export { P } from '../pattern.ts';
export { ask, tell } from '../define/messages.ts';
export type { AskSpec, TellSpec, MessageSpec, MessageSpecs, MessageOptions, RequestOf, ReplyOf, EventsOf, AskNames } from '../define/messages.ts';
export { defineVersion, disallow, isDisallow, ActorVersion } from '../define/version.ts';
export type {
  ActorInterface,
  AnyActorVersion,
  Disallow,
  Handle,
  ObservedCall,
  ReplyFn,
  ReplyFns,
  SimulationCall,
  SimulationObject,
  TransformFunction,
  TransformInput,
  TransformOutput,
  UpgradeSpec,
  VersionState,
} from '../define/version.ts';
export { defineActorType, defineService } from '../define/service.ts';
export type { ActorType, ActorTypeOptions, ServiceDefinition } from '../define/service.ts';
export type { Schema, Infer } from '../schema.ts';
export { checkSchema } from '../schema.ts';
export { ErrorCode, MoltError, isMoltError, isRetryable } from '../errors.ts';
export type { WireError } from '../errors.ts';
export { createClient } from '../client.ts';
export type { ActorRef, ClientOptions, MoltClient } from '../client.ts';
export { connectNats, natsFromEnv } from '../nats/connect.ts';
export type { NatsTarget, NatsConnectOptions, NatsCredentials } from '../nats/connect.ts';
export { createSuperjsonCodec } from '../wire/codec.ts';
export type { Codec } from '../wire/codec.ts';
