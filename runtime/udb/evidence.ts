/**
 * Retiring by evidence: which old versions of a type no caller has used for a
 * while, judged from what the nodes saw rather than guessed.
 *
 * Every node counts the calls it receives per caller version (the same count
 * the health gate reads, split by version) and writes, per type, when it last
 * saw a caller of each version: UDB key `callers.<type>.<node>` (a
 * {@link CallerRecord}). It writes at a low rate — when a version it had not
 * seen for `everyMs` is called, and then at most once per `everyMs` while
 * callers keep coming — so a call can stay unwritten for at most
 * `slackMs` (`everyMs` plus one heartbeat). Records outlive their nodes: a
 * node that left still testifies to the callers it saw.
 *
 * A version is **unused for a window** when no record saw a caller of it
 * within the window plus the nodes' `slackMs`, counted back from now: the
 * newest calls may not be written yet, so the records must stay quiet that
 * much longer before the window is known to hold no call.
 * A version never called since evidence began counts from when it began: the
 * earliest `since` of any record.
 *
 * @module
 */
import { ErrorCode, MoltError } from '../errors.ts';

/** One node's evidence about one type's callers (`callers.<type>.<node>`). */
export interface CallerRecord {
  nodeId: string;
  type: string;
  /** When this node id began keeping evidence (its first process that did; kept across restarts). */
  since: number;
  /** Caller version → when (this node's clock, ms since the epoch) it last saw a call of it. */
  lastSeen: Record<string, number>;
  /** The longest a call may wait before this node writes it: its `everyMs` plus a heartbeat. */
  slackMs: number;
  /** The type's `retireWhenUnusedMs` policy, as this node's service definition declares it. */
  retireWhenUnusedMs?: number;
  updatedAt: number;
}

/** What the evidence says about one version of a type. */
export interface VersionUse {
  type: string;
  version: number;
  /** When a caller of it was last seen by any node (absent: never, since evidence began). */
  lastSeenAt?: number;
  /** The node that saw it. */
  lastSeenBy?: string;
  /** When it has been unused since: `lastSeenAt`, or when evidence began. */
  unusedSince: number;
}

/** Per type: every version any record mentions, or `versions` given, with its last caller. */
export function versionUse(records: readonly CallerRecord[], type: string, versions: readonly number[] = []): VersionUse[] {
  const mine = records.filter((r) => r.type === type);
  if (mine.length === 0) return [];
  const since = Math.min(...mine.map((r) => r.since));
  const all = new Set<number>(versions);
  for (const r of mine) for (const v of Object.keys(r.lastSeen)) all.add(Number(v));
  return [...all]
    .filter((v) => Number.isInteger(v) && v > 0)
    .sort((a, b) => a - b)
    .map((version) => {
      let best: { at: number; by: string } | undefined;
      for (const r of mine) {
        const at = r.lastSeen[String(version)];
        if (typeof at === 'number' && (!best || at > best.at)) best = { at, by: r.nodeId };
      }
      return { type, version, ...(best ? { lastSeenAt: best.at, lastSeenBy: best.by } : {}), unusedSince: best?.at ?? since };
    });
}

/** The most any node's newest calls may be unwritten, for a type (0 with no records). */
export function evidenceSlack(records: readonly CallerRecord[], type: string): number {
  return Math.max(0, ...records.filter((r) => r.type === type).map((r) => r.slackMs));
}

/** The type's policy window, as the nodes publish it (the largest, if they disagree). */
export function policyWindow(records: readonly CallerRecord[], type: string): number | undefined {
  const windows = records.filter((r) => r.type === type && typeof r.retireWhenUnusedMs === 'number').map((r) => r.retireWhenUnusedMs!);
  return windows.length > 0 ? Math.max(...windows) : undefined;
}

/** The verdict on retiring one version: ready, or why not (one line). */
export type RetireVerdict = { ready: true; use: VersionUse } | { ready: false; why: string; use?: VersionUse };

/**
 * May `type@version` be retired because it was unused for `windowMs`, judged at `now`?
 * Versions that live nodes run natively are refused elsewhere (retireVersion).
 */
export function judgeUnused(records: readonly CallerRecord[], type: string, version: number, windowMs: number, now: number): RetireVerdict {
  if (records.every((r) => r.type !== type)) {
    return { ready: false, why: `no node has recorded evidence about ${type}'s callers yet (nodes write callers.${type}.<node> once they run)` };
  }
  // A call may be unwritten for up to `slack`: the records must be quiet for window + slack.
  const needed = windowMs + evidenceSlack(records, type);
  const use = versionUse(records, type, [version]).find((u) => u.version === version)!;
  const quiet = now - use.unusedSince;
  if (quiet < needed) {
    const seen = use.lastSeenAt !== undefined ? `a caller of ${type}@${version} was seen by ${use.lastSeenBy} ${duration(quiet)} ago` : `evidence about ${type}'s callers began only ${duration(quiet)} ago`;
    return { ready: false, why: `${seen}; the window is ${duration(windowMs)} (ready in ${duration(needed - quiet)} if no caller comes)`, use };
  }
  return { ready: true, use };
}

/** A duration as `90s`, `15m`, `36h`, `7d` (whole units, rounded down; `ms` below a second). */
export function duration(ms: number): string {
  if (ms < 1000) return `${Math.max(0, Math.round(ms))}ms`;
  const s = Math.floor(ms / 1000);
  if (s < 120) return `${s}s`;
  if (s < 7200) return `${Math.floor(s / 60)}m`;
  if (s < 172_800) return `${Math.floor(s / 3600)}h`;
  return `${Math.floor(s / 86_400)}d`;
}

/**
 * Parses a window: a number of ms, or a number with a unit `ms`, `s`, `m`, `h`, `d` (`30d`, `12h`).
 *
 * @throws MoltError `InvalidDefinition` for anything else.
 */
export function parseWindow(text: string, what = '--when-unused'): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h|d)?$/.exec(text.trim());
  const unit = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 } as const;
  const ms = m ? Number(m[1]) * unit[(m[2] ?? 'ms') as keyof typeof unit] : NaN;
  if (!(ms > 0)) throw new MoltError(ErrorCode.InvalidDefinition, `${what} takes a window such as 30d, 12h, 15m, 90s or a number of ms; got '${text}'`);
  return ms;
}
