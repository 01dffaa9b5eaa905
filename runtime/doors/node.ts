/**
 * `molt/node`: run a node of a service, with its clock, logger and NATS.
 *
 * {@link createNode} serves a service's actors; {@link startEmbeddedNats}
 * starts a local nats-server (development and tests). A node that follows
 * published upgrades also runs `startUpgradeManager` from `molt/upgrades`.
 *
 * @module
 */
export { createNode } from '../node/index.ts';
export type { MoltNode, NodeOptions, TypeStatus, UpgradeResult } from '../node/index.ts';
export type { MetricsOptions } from '../observe/metrics.ts';
export { systemClock, SimulatedClock, createJsonLogger, silentLogger, createIdGenerator } from '../env.ts';
export type { Clock, Logger, LogLevel, IdGenerator } from '../env.ts';
export { startEmbeddedNats, findNatsServer } from '../nats/embedded.ts';
export type { EmbeddedNats, EmbeddedNatsOptions } from '../nats/embedded.ts';
export { connectNats, natsFromEnv } from '../nats/connect.ts';
export type { NatsTarget, NatsConnectOptions, NatsCredentials } from '../nats/connect.ts';
export { setupServiceBuckets } from '../udb/buckets.ts';
export type { SetupOptions, BucketOutcome } from '../udb/buckets.ts';
export { permissionsConfig, roleUsers } from '../nats/permissions.ts';
export type { PermissionsOptions, RoleUser, SubjectGroup } from '../nats/permissions.ts';
