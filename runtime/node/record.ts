/**
 * What a node publishes about itself in the upgrade database, heartbeat after
 * heartbeat: its versions, status and counters. Placement adds its claims and
 * the heartbeat time; everything else comes from here.
 *
 * @module
 */
import { hostname } from 'node:os';
import type { ActorHost } from '../host/actor-host.ts';
import type { NodeRecord } from '../udb/records.ts';

/** A record stays small: it is written every heartbeat. */
const MAX_UNREADABLE_REPORTED = 20;

/** The parts of a node's state its record reports that change over time. */
export interface NodeRecordState {
  status: NodeRecord['status'];
  lastError: string | undefined;
  /** Types being upgraded now, and their target version. */
  upgradingTo: Record<string, number>;
}

/** Builds this node's record from its hosts and state. */
export function buildNodeRecord(
  identity: { nodeId: string; service: string; startedAt: number; trusts?: readonly string[] | undefined; labels?: Readonly<Record<string, string>> | undefined },
  hosts: ReadonlyMap<string, ActorHost>,
  state: NodeRecordState,
  now: number,
): NodeRecord {
  const versions: Record<string, number> = {};
  const known: Record<string, number[]> = {};
  const stats = { calls: 0, failed: 0, disallowed: 0, transformFailures: 0 };
  // Per type as well: a rollout's health gate must judge the type it upgrades, not the node.
  const typeStats: Record<string, Record<string, number>> = {};
  const traffic: NonNullable<NodeRecord['traffic']> = {};
  for (const [name, host] of hosts) {
    versions[name] = host.currentVersion;
    known[name] = host.knownVersions;
    const { calls, failed, disallowed, transformFailures } = host.stats;
    typeStats[name] = { calls, failed, disallowed, transformFailures };
    traffic[name] = host.counts.traffic();
    stats.calls += calls;
    stats.failed += failed;
    stats.disallowed += disallowed;
    stats.transformFailures += transformFailures;
  }
  const record: NodeRecord = {
    id: identity.nodeId,
    service: identity.service,
    host: hostname(),
    pid: process.pid,
    versions,
    known,
    status: state.status,
    startedAt: identity.startedAt,
    heartbeatAt: now,
    stats,
    typeStats,
    traffic,
  };
  const unreadable: NonNullable<NodeRecord['unreadable']> = [];
  for (const [type, host] of hosts) {
    for (const u of host.unreadable.values()) {
      if (unreadable.length < MAX_UNREADABLE_REPORTED) unreadable.push({ type, key: u.key, revision: u.revision, message: u.message });
    }
  }
  if (unreadable.length > 0) record.unreadable = unreadable;
  if (state.lastError !== undefined) record.lastError = state.lastError;
  if (identity.trusts) record.trusts = [...identity.trusts];
  if (identity.labels && Object.keys(identity.labels).length > 0) record.labels = { ...identity.labels };
  if (Object.keys(state.upgradingTo).length > 0) record.upgrading = { ...state.upgradingTo };
  return record;
}

/**
 * The versions a node left off at, from the record its id last wrote: a node
 * restarted after a crash never runs a type older than it last ran it, and a
 * node killed mid-upgrade resumes at the target (some actors may already be
 * stored there; the rest follow lazily). A malformed record gives nothing.
 */
export function versionsToResume(previous: NodeRecord | undefined): Record<string, number> {
  const resumed: Record<string, number> = {};
  if (!previous) return resumed;
  Object.assign(resumed, previous.versions ?? {});
  for (const [type, target] of Object.entries(previous.upgrading ?? {})) resumed[type] = Math.max(resumed[type] ?? 0, target);
  return resumed;
}
