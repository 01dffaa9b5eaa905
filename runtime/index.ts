/**
 * Molt: services that upgrade themselves while they run.
 *
 * The public entry. Declare versions with {@link defineVersion}, group them
 * into types and a service, run nodes with {@link createNode}, and call
 * actors with {@link createClient}.
 *
 * @module
 */
export { P } from './pattern.ts';
export { ask, tell } from './define/messages.ts';
export type { AskSpec, TellSpec, MessageSpec, MessageSpecs, MessageOptions, RequestOf, ReplyOf, EventsOf, AskNames } from './define/messages.ts';
export { defineVersion, disallow, isDisallow, ActorVersion } from './define/version.ts';
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
} from './define/version.ts';
export { defineActorType, defineService } from './define/service.ts';
export type { ActorType, ActorTypeOptions, ServiceDefinition } from './define/service.ts';
export type { Schema, Infer } from './schema.ts';
export { checkSchema } from './schema.ts';
export { ErrorCode, MoltError, isMoltError, isRetryable } from './errors.ts';
export type { WireError } from './errors.ts';
export { createNode } from './node.ts';
export type { MoltNode, NodeOptions, TypeStatus, UpgradeResult } from './node.ts';
export type { MetricsOptions } from './observe/metrics.ts';
export { createClient } from './client.ts';
export type { ActorRef, ClientOptions, MoltClient } from './client.ts';
export { createSuperjsonCodec } from './wire/codec.ts';
export type { Codec } from './wire/codec.ts';
export { systemClock, SimulatedClock, createJsonLogger, silentLogger, createIdGenerator } from './env.ts';
export type { Clock, Logger, LogLevel, IdGenerator } from './env.ts';
export { startEmbeddedNats, findNatsServer } from './nats/embedded.ts';
export type { EmbeddedNats, EmbeddedNatsOptions } from './nats/embedded.ts';
export { connectNats, natsFromEnv } from './nats/connect.ts';
export type { NatsTarget, NatsConnectOptions, NatsCredentials } from './nats/connect.ts';
export {
  builtInSchedules,
  resolveSchedule,
  validateScheduleParams,
  isBuiltInSchedule,
  scheduleExamples,
  defineSchedule,
  isScheduleMachine,
  fromSchedulePolicy,
  parseWith,
  ParamReader,
  scheduleStatusOf,
  stableOrder,
  rollingGate,
  healthProblem,
  inWindow,
  minutesOfDay,
  parseTimeZone,
  ScheduleTag,
} from '../actors/schedules/index.ts';
export type {
  BuiltInScheduleName,
  ScheduleDecision,
  ScheduleDescriptor,
  ScheduleEmitted,
  ScheduleEvent,
  ScheduleInput,
  ScheduleMachine,
  ScheduleNodeView,
  SchedulePolicy,
  ScheduleView,
  ScheduleStatus,
  HealthParams,
  GateResult,
  ParseResult,
} from '../actors/schedules/index.ts';
export { startUpgradeManager } from './manager/index.ts';
export type { UpgradeManager, UpgradeManagerOptions, ManagedUpgrade } from './manager/index.ts';
export { publishUpgrade } from './server/publish.ts';
export type { PublishOptions, PublishResult } from './server/publish.ts';
export { generatePublisherKeys, signerFromSeed, loadSeedFile, parseTrustedKeys, keyFingerprint } from './server/keys.ts';
export type { PublisherKeys, Signer } from './server/keys.ts';
export type { UpgradeDescriptor, SignedDescriptor } from './server/descriptor.ts';
export { Udb, openUdb } from './udb/index.ts';
export type {
  UdbSnapshot,
  RolloutRecord,
  RolloutState,
  ControlRecord,
  ControlCommand,
  RetireRecord,
  ProgressRecord,
  ProgressStep,
  ReportRecord,
} from './udb/index.ts';
