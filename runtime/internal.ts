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
export type { NodeRecord } from './udb/records.ts';
export { admit, routeFor, nativeRoute, servedVersions, restore, persist, refreshSOStates, runTurn, initialActorState } from './upgrade/layer.ts';
export type { ActorState, PersistedActor, Route, TypeVersions } from './upgrade/layer.ts';
export { checkVersionChain } from './define/service.ts';
export { freePort } from './nats/embedded.ts';
export { resolveConnection, isConnection } from './nats/connect.ts';
export { buildBundle, importBundle, bundleExports, sha256Hex, SHARED_PACKAGES } from './server/bundle.ts';
export type { LoadedBundle } from './server/bundle.ts';
export {
  canonicalJson,
  descriptorKey,
  parseDescriptorKey,
  bundleObjectName,
  signDescriptor,
  verifyDescriptor,
  parseSignedDescriptor,
  DESCRIPTOR_FORMAT,
} from './server/descriptor.ts';
export type { RejectionReason } from './server/descriptor.ts';
export { openUpgradeStore, upgradeBucketNames } from './server/store.ts';
export type { UpgradeStore, StoredDescriptor } from './server/store.ts';
export { isPublicKey, checkTrustedKeys, verifySignature, writeSeedFile } from './server/keys.ts';
export { udbKey, UdbPrefix, udbShapes, parseRecord } from './udb/index.ts';
export { upgradeLifecycle } from '../actors/upgrade-manager.ts';
export { nodeInternals } from './node/internals.ts';
export type { NodeInternals } from './node/internals.ts';
