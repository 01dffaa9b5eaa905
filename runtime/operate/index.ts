/**
 * The operator API: what `molt status`, `pause`, `resume`, `abort`,
 * `rollback`, `retire`, `prune` and the dashboard run, as functions a program or a
 * test calls directly (exported from `molt/upgrades`).
 *
 * @module
 */
export { findService, openUdbFor } from './service.ts';
export { findRollout, controlRollout, retireVersion, rollbackRefusal, rollbackRollout } from './rollouts.ts';
export { retireWhenUnused, oldVersions } from './retire.ts';
export type { OldVersionView, RetireByEvidenceResult } from './retire.ts';
export { pruneHistory, renderPrune, PRUNE_DEFAULT_WINDOW_MS } from './prune.ts';
export type { PrunePlan, PruneResult, GoneNodeView, FinishedRolloutView } from './prune.ts';
export { statusView, statusErrorView, renderStatus, STATUS_FORMAT } from './status.ts';
export type { StatusView, StatusErrorView, NodeStatusView, RolloutStatusView, RolloutNodeView, BehindNodeView, ProblemView } from './status.ts';
