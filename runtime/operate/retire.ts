/**
 * Retiring by evidence (`molt retire … --when-unused [window]`). A version is
 * retired only once no node has seen a caller of it for the window (the
 * type's `retireWhenUnusedMs` policy when no window is given), judged from
 * the nodes' caller evidence in the UDB (runtime/udb/evidence.ts). Also what
 * `molt status` shows as old versions and which of them are ready to retire.
 *
 * @module
 */
import { ErrorCode, MoltError } from '../errors.ts';
import type { CallerRecord, NodeRecord, RetireRecord, Udb } from '../udb/index.ts';
import { duration, judgeUnused, policyWindow, versionUse } from '../udb/evidence.ts';

/** An old version of a type (below what every live node runs, not retired), as `molt status` shows it. */
export interface OldVersionView {
  type: string;
  version: number;
  /** When a caller of it was last seen, by which node (absent: none since evidence began). */
  lastSeenAt?: number;
  lastSeenBy?: string;
  /** How long no node has seen a caller of it (by the reader's clock). */
  unusedForMs: number;
  /** The type's policy window, when its nodes declare one. */
  policyMs?: number;
  /** Unused for the policy window (and the nodes' slack): `molt retire <type> --when-unused` retires it. */
  readyToRetire: boolean;
}

/** The lowest version of `type` a live node runs natively (undefined: no live node hosts it). */
function lowestLive(nodes: readonly NodeRecord[], type: string, now: number, leaseMs: number): number | undefined {
  const live = nodes.filter((n) => n.status !== 'stopped' && now - n.heartbeatAt <= leaseMs && typeof n.versions[type] === 'number');
  return live.length > 0 ? Math.min(...live.map((n) => n.versions[type]!)) : undefined;
}

/**
 * The old versions of every type with evidence: versions below the lowest one
 * a live node runs and not retired, each with its last caller and whether the
 * type's policy would retire it now.
 */
export function oldVersions(snap: { nodes: readonly NodeRecord[]; retired: readonly RetireRecord[]; callers?: readonly CallerRecord[] | undefined }, now: number, leaseMs: number): OldVersionView[] {
  const records = snap.callers ?? [];
  const out: OldVersionView[] = [];
  for (const type of [...new Set(records.map((r) => r.type))].sort()) {
    const lowest = lowestLive(snap.nodes, type, now, leaseMs);
    if (lowest === undefined || lowest <= 1) continue;
    const candidates = Array.from({ length: lowest - 1 }, (_, i) => i + 1).filter((v) => !snap.retired.some((r) => r.type === type && r.version === v));
    const policy = policyWindow(records, type);
    for (const use of versionUse(records, type, candidates)) {
      if (!candidates.includes(use.version)) continue;
      out.push({
        type,
        version: use.version,
        ...(use.lastSeenAt !== undefined ? { lastSeenAt: use.lastSeenAt, lastSeenBy: use.lastSeenBy! } : {}),
        unusedForMs: Math.max(0, now - use.unusedSince),
        ...(policy !== undefined ? { policyMs: policy } : {}),
        readyToRetire: policy !== undefined && judgeUnused(records, type, use.version, policy, now).ready,
      });
    }
  }
  return out;
}

/** One line per old version for `molt status`. */
export function oldVersionLine(v: OldVersionView): string {
  const seen = v.lastSeenAt !== undefined ? `last caller ${duration(v.unusedForMs)} ago (${v.lastSeenBy})` : `no caller for ${duration(v.unusedForMs)} (since evidence began)`;
  const policy = v.policyMs === undefined ? '' : v.readyToRetire ? `; unused for its policy's ${duration(v.policyMs)}: ready to retire` : `; policy ${duration(v.policyMs)}`;
  return `  ${v.type}@${v.version}: ${seen}${policy}`;
}

/** What `molt retire --when-unused` did. */
export interface RetireByEvidenceResult {
  retired: number[];
  /** Versions not retired, and why. */
  refused: Array<{ version: number; why: string }>;
}

/**
 * Retires `type@version` (or, without `version`, every old version of the
 * type) that no node has seen a caller of for `windowMs` (default: the
 * type's policy). `retire` does the retiring (it refuses a version a live
 * node runs natively).
 *
 * @throws MoltError `InvalidDefinition` with no window and no policy; `OperationRefused` when nothing could be retired.
 */
export async function retireWhenUnused(
  udb: Udb,
  options: { type: string; version?: number | undefined; windowMs?: number | undefined; now: number; leaseMs: number },
  retire: (type: string, version: number) => Promise<string>,
): Promise<RetireByEvidenceResult> {
  const { type, now } = options;
  const [records, nodes, retired] = await Promise.all([udb.callers(type), udb.nodes(), udb.retirements()]);
  const mine = records.filter((r) => r.type === type);
  const windowMs = options.windowMs ?? policyWindow(mine, type);
  if (windowMs === undefined) {
    throw new MoltError(
      ErrorCode.InvalidDefinition,
      `--when-unused needs a window (e.g. --when-unused 30d) for ${type}: its nodes declare no policy (defineActorType('${type}', …, { retireWhenUnusedMs }))`,
    );
  }
  let versions: number[];
  if (options.version !== undefined) versions = [options.version];
  else {
    const old = oldVersions({ nodes, retired, callers: mine }, now, options.leaseMs);
    versions = old.map((o) => o.version);
    if (versions.length === 0) {
      throw new MoltError(ErrorCode.OperationRefused, `${type} has no old version to retire: every version below the lowest a live node runs is retired already, or no node has recorded evidence about its callers yet`);
    }
  }
  const result: RetireByEvidenceResult = { retired: [], refused: [] };
  for (const version of versions) {
    if (retired.some((r) => r.type === type && r.version === version)) {
      result.refused.push({ version, why: `${type}@${version} is retired already` });
      continue;
    }
    const verdict = judgeUnused(mine, type, version, windowMs, now);
    if (!verdict.ready) {
      result.refused.push({ version, why: verdict.why });
      continue;
    }
    try {
      await retire(type, version);
      result.retired.push(version);
    } catch (e) {
      result.refused.push({ version, why: (e as Error).message });
    }
  }
  if (result.retired.length === 0) {
    throw new MoltError(ErrorCode.OperationRefused, `not retired: ${result.refused.map((r) => `${type}@${r.version}: ${r.why}`).join('; ')}`, {
      data: { refused: result.refused },
    });
  }
  return result;
}
