/**
 * `molt/upgrades`: publish upgrades, manage them on nodes, and operate them.
 *
 * {@link publishUpgrade} signs and publishes new versions (`molt publish`);
 * {@link startUpgradeManager} makes a node follow published upgrades; the
 * upgrade database ({@link openUdb}) holds rollouts, control records and
 * node records; the operator functions are what `molt pause|resume|abort`,
 * `molt retire`, `molt rollback`, `molt prune` and `molt status` run.
 *
 * @module
 */
export { startUpgradeManager } from '../manager/index.ts';
export type { UpgradeManager, UpgradeManagerOptions, ManagedUpgrade } from '../manager/index.ts';
export { publishUpgrade } from '../server/publish.ts';
export type { PublishOptions, PublishResult } from '../server/publish.ts';
export { generatePublisherKeys, signerFromSeed, loadSeedFile, parseTrustedKeys, keyFingerprint } from '../server/keys.ts';
export type { PublisherKeys, Signer } from '../server/keys.ts';
export type { UpgradeDescriptor, SignedDescriptor } from '../server/descriptor.ts';
export { Udb, openUdb } from '../udb/index.ts';
export type {
  UdbSnapshot,
  NodeRecord,
  RolloutRecord,
  RolloutState,
  ControlRecord,
  ControlCommand,
  RetireRecord,
  ProgressRecord,
  ProgressStep,
  ReportRecord,
} from '../udb/index.ts';
export {
  findService,
  openUdbFor,
  findRollout,
  controlRollout,
  retireVersion,
  rollbackRefusal,
  rollbackRollout,
  retireWhenUnused,
  oldVersions,
  statusView,
  statusErrorView,
  renderStatus,
  STATUS_FORMAT,
  pruneHistory,
  renderPrune,
  PRUNE_DEFAULT_WINDOW_MS,
} from '../operate/index.ts';
export type {
  OldVersionView,
  RetireByEvidenceResult,
  StatusView,
  StatusErrorView,
  NodeStatusView,
  RolloutStatusView,
  RolloutNodeView,
  BehindNodeView,
  ProblemView,
  PrunePlan,
  PruneResult,
  GoneNodeView,
  FinishedRolloutView,
} from '../operate/index.ts';
