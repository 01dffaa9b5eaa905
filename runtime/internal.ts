/**
 * The staff door: internals for `actors/`, `codegen/`, tools and tests.
 * Not part of the public API; may change in any release.
 *
 * @module
 */
export * from './index.ts';
export * from './wire/protocol.ts';
export { createMemoryStore, createKvStore, RevisionConflict } from './host/store.ts';
export type { StateStore, StoredRecord } from './host/store.ts';
export { ActorHost } from './host/actor-host.ts';
export { Placement, assignShards, NODE_PREFIX } from './host/placement.ts';
export type { NodeRecord } from './host/placement.ts';
export { admit, routeFor, servedVersions, restore, persist, runTurn, initialActorState } from './upgrade/layer.ts';
export type { ActorState, PersistedActor, Route, TypeVersions } from './upgrade/layer.ts';
export { checkVersionChain } from './define/service.ts';
export { freePort } from './nats/embedded.ts';
export { resolveConnection, isConnection } from './nats/connect.ts';
