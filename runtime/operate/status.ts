/**
 * The status of a service, read from its upgrade database: nodes with their
 * versions and status, one progress bar per rollout, old versions and
 * problems. {@link statusView} is the data (`molt status --json` prints it,
 * the dashboard serves it); {@link renderStatus} the report `molt status`
 * prints.
 *
 * @module
 */
import { ErrorCode, isMoltError } from '../errors.ts';
import { isFinal, isNewest, newestOfEachType, type NodeRecord, type ProgressRecord, type RolloutRecord, type UdbSnapshot } from '../udb/index.ts';
import { formatLabels, labelsOf } from '../node/labels.ts';
import { oldVersionLine, oldVersions, type OldVersionView } from './retire.ts';

/**
 * The format tag of `molt status --json` documents (every line of `--watch
 * --json` is one): scripts check it, and a later Molt that changes a field's
 * meaning changes the tag. Fields may be added without a new tag.
 */
export const STATUS_FORMAT = 'molt.status/v1';

/** A node as `molt status` shows it. */
export interface NodeStatusView {
  id: string;
  /** Its record changed within the lease (`--lease`), by this reader's clock, and it has not left. */
  live: boolean;
  status: NodeRecord['status'];
  versions: Record<string, number>;
  /** Versions known per type (loaded upgrades included). */
  known?: Record<string, number[]>;
  heartbeatAgoMs: number;
  host: string;
  pid: number;
  lastError?: string;
  /** Fingerprints of the publisher keys its upgrade manager trusts (absent: the node does not say). */
  trusts?: string[];
  /** The node's labels (`--label zone=a`); absent when it has none. */
  labels?: Record<string, string>;
}

/** One node's place in a rollout. */
export interface RolloutNodeView {
  nodeId: string;
  step: string;
  note?: string;
  error?: string;
}

/** A live node that does not run a finished rollout's version, and why. */
export interface BehindNodeView {
  nodeId: string;
  version: number;
  why: string;
}

/** A rollout as `molt status` shows it. */
export interface RolloutStatusView extends RolloutRecord {
  /**
   * Live nodes per native version of the type, counted from the node records
   * this view was read with (the same as `upgraded` and `total`). The record's
   * own `counts`, as the managers last wrote them, is `recordedCounts`.
   */
  counts: Record<string, number>;
  recordedCounts: Record<string, number>;
  /** Live nodes running `to` or later, out of live nodes hosting the type. */
  upgraded: number;
  total: number;
  /** Per node: its step in this rollout and what it waits for. */
  nodes: RolloutNodeView[];
  /**
   * For a `done` rollout (the newest of its type): live nodes hosting the type
   * below `to` — started since at an older version, refusing the upgrade, or
   * catching up — each with why. Empty otherwise.
   */
  behind: BehindNodeView[];
}

/** A problem a node reported (`reports.<node>.<type>.<to>`). */
export interface ProblemView {
  nodeId: string;
  key: string;
  code: string;
  reason?: string;
  message: string;
  at: number;
}

/** Everything `molt status` prints (`--json` prints exactly this). */
export interface StatusView {
  format: typeof STATUS_FORMAT;
  service: string;
  at: number;
  nodes: NodeStatusView[];
  rollouts: RolloutStatusView[];
  retired: Array<{ type: string; version: number }>;
  /**
   * Versions below the lowest one a live node runs, not retired, with when a
   * caller of each was last seen and whether the type's policy would retire it
   * (`molt retire <type> --when-unused`); see docs/operations.md.
   */
  oldVersions: OldVersionView[];
  problems: ProblemView[];
}

/**
 * What `--json` prints instead of a view when the UDB could not be read
 * completely (a nats-server down, the connection lost): never an empty world.
 */
export interface StatusErrorView {
  format: typeof STATUS_FORMAT;
  service: string;
  at: number;
  error: { code: string; message: string };
}

function countLive(nodes: readonly NodeStatusView[], type: string): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const n of nodes) {
    const v = n.versions[type];
    if (n.live && typeof v === 'number') counts[String(v)] = (counts[String(v)] ?? 0) + 1;
  }
  return counts;
}

/** Why a live node is not at a finished rollout's version: its progress, its report, or what it runs. */
function behindReason(snap: UdbSnapshot, r: RolloutRecord, node: NodeStatusView, progressOfRollout: readonly ProgressRecord[]): string {
  const report = snap.reports.find((p) => p.nodeId === node.id && p.key === `upgrade.${r.type}.${r.to}`);
  if (report) return `${report.code}${report.reason ? ` (${report.reason})` : ''}: ${report.message}`;
  const progress = progressOfRollout.find((p) => p.nodeId === node.id);
  if (progress) return `${progress.step}${progress.error ? `: ${progress.error}` : progress.note ? `: ${progress.note}` : ''}`;
  const knows = node.known?.[r.type]?.includes(r.to);
  return knows ? `loaded ${r.type}@${r.to} and is catching up` : `has not loaded ${r.type}@${r.to}: its upgrade manager has not reported on it (started without one, or still verifying)`;
}

/** Builds the view from a UDB snapshot. */
export function statusView(service: string, snap: UdbSnapshot, now: number, leaseMs: number): StatusView {
  const nodes: NodeStatusView[] = snap.nodes
    .map((n) => ({
      id: n.id,
      live: n.status !== 'stopped' && now - n.heartbeatAt <= leaseMs,
      status: n.status,
      versions: n.versions,
      ...(n.known ? { known: n.known } : {}),
      heartbeatAgoMs: Math.max(0, now - n.heartbeatAt),
      host: n.host,
      pid: n.pid,
      ...(n.lastError ? { lastError: n.lastError } : {}),
      ...(n.trusts ? { trusts: [...n.trusts] } : {}),
      ...(labelsOf(n.labels) ? { labels: { ...labelsOf(n.labels) } } : {}),
    }))
    .sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  // Grouped once: a service keeps every rollout and each node's progress in it, so a
  // search per rollout would cost rollouts × records on every render of `--watch`.
  const newest = newestOfEachType(snap.rollouts);
  const progressOf = new Map<string, ProgressRecord[]>();
  for (const p of snap.progress) {
    const list = progressOf.get(p.rolloutId);
    if (list) list.push(p);
    else progressOf.set(p.rolloutId, [p]);
  }
  const rollouts: RolloutStatusView[] = snap.rollouts
    .map((r) => {
      const hosting = nodes.filter((n) => n.live && typeof n.versions[r.type] === 'number');
      const recorded = progressOf.get(r.rolloutId) ?? [];
      const progress = recorded
        .map((p) => ({ nodeId: p.nodeId, step: p.step, ...(p.note ? { note: p.note } : {}), ...(p.error ? { error: p.error } : {}) }))
        .sort((a, b) => (a.nodeId < b.nodeId ? -1 : 1));
      const behind = r.state === 'done' && isNewest(newest, r)
        ? hosting.filter((n) => n.versions[r.type]! < r.to).map((n) => ({ nodeId: n.id, version: n.versions[r.type]!, why: behindReason(snap, r, n, recorded) }))
        : [];
      return {
        ...r,
        counts: countLive(nodes, r.type),
        recordedCounts: r.counts,
        upgraded: hosting.filter((n) => n.versions[r.type]! >= r.to).length,
        total: hosting.length,
        nodes: progress,
        behind,
      };
    })
    .sort((a, b) => a.startedAt - b.startedAt);
  return {
    format: STATUS_FORMAT,
    service,
    at: now,
    nodes,
    rollouts,
    retired: snap.retired.map((r) => ({ type: r.type, version: r.version })),
    oldVersions: oldVersions(snap, now, leaseMs),
    problems: [
      ...snap.reports.map((r) => ({ nodeId: r.nodeId, key: r.key, code: r.code, ...(r.reason ? { reason: r.reason } : {}), message: r.message, at: r.at })),
      // Actor records a live node cannot read (it keeps serving every other actor).
      ...snap.nodes
        .filter((n) => n.status !== 'stopped' && now - n.heartbeatAt <= leaseMs)
        .flatMap((n) => (n.unreadable ?? []).map((u) => ({ nodeId: n.id, key: `state.${u.type}.${u.key}`, code: 'StateUnreadable', message: u.message, at: n.heartbeatAt }))),
    ].sort((a, b) => a.at - b.at),
  };
}

/** The error record `--json` prints for a read that failed. */
export function statusErrorView(service: string, error: unknown, now: number): StatusErrorView {
  const code = isMoltError(error) ? error.code : ErrorCode.Unavailable;
  return { format: STATUS_FORMAT, service, at: now, error: { code, message: error instanceof Error ? error.message : String(error) } };
}

function bar(done: number, total: number, width: number, unicode: boolean): string {
  const filled = total === 0 ? 0 : Math.round((done / total) * width);
  return unicode ? `${'█'.repeat(filled)}${'░'.repeat(width - filled)}` : `${'#'.repeat(filled)}${'-'.repeat(width - filled)}`;
}

/** The progress bar of a rollout: nodes upgraded, or, once it is rolling back, nodes back at `from`. */
function progressCell(r: RolloutStatusView, width: number, unicode: boolean): string {
  if (r.state === 'rolling-back' || r.state === 'rolled-back') {
    const back = r.total - r.upgraded;
    return `[${bar(back, r.total, width, unicode)}] ${back}/${r.total} back at ${r.from}`;
  }
  return `[${bar(r.upgraded, r.total, width, unicode)}] ${r.upgraded}/${r.total}`;
}

function ago(ms: number): string {
  return ms < 1000 ? `${ms}ms` : ms < 120_000 ? `${(ms / 1000).toFixed(1)}s` : `${Math.round(ms / 60_000)}m`;
}

function table(rows: string[][]): string[] {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)));
  return rows.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!))).join('  ').trimEnd());
}

/** The STATE cell: the state, and who set it when it is not running (the why goes on a line of its own). */
function stateCell(r: RolloutStatusView): string {
  if (r.state === 'done') return r.behind.length > 0 ? `done, ${r.behind.length} behind` : 'done';
  if (r.state === 'running') return 'running';
  return r.by ? `${r.state} by ${r.by}` : r.state;
}

/** The line under the table that says why a rollout is where it is (paused, aborted, rolled back). */
function reasonLine(r: RolloutStatusView): string | undefined {
  if (r.state === 'running' || r.state === 'done' || !r.reason) return undefined;
  return `  ${r.rolloutId} ${r.state}${r.by ? ` by ${r.by}` : ''}: ${r.reason}`;
}

/** A node gone (stopped, or silent past its lease) this long is left out of `molt status` unless `--all`. */
export const GONE_SHOWN_MS = 3_600_000;


/**
 * What `molt status` lists unless `--all`: live nodes and those gone within
 * {@link GONE_SHOWN_MS}; rollouts not over, and the newest rollout of each
 * type. A service keeps every node record and rollout it has had, so the
 * rest is counted, not listed (`--all` and `--json` have them all).
 */
export function currentPart(view: StatusView): { nodes: NodeStatusView[]; rollouts: RolloutStatusView[]; hiddenNodes: number; hiddenRollouts: number } {
  const nodes = view.nodes.filter((n) => n.live || n.heartbeatAgoMs <= GONE_SHOWN_MS);
  const newest = newestOfEachType(view.rollouts);
  const rollouts = view.rollouts.filter((r) => !isFinal(r) || isNewest(newest, r));
  return { nodes, rollouts, hiddenNodes: view.nodes.length - nodes.length, hiddenRollouts: view.rollouts.length - rollouts.length };
}

/**
 * The report, as lines: with `all`, every node and rollout on record; without,
 * the live nodes, those gone within the hour, the rollouts not over and the
 * newest of each type, and a count of the rest.
 */
export function renderStatus(view: StatusView, options: { unicode: boolean; all?: boolean }): string[] {
  const lines: string[] = [];
  const live = view.nodes.filter((n) => n.live).length;
  lines.push(`service ${view.service}: ${live} live node${live === 1 ? '' : 's'}${view.nodes.length > live ? `, ${view.nodes.length - live} gone` : ''}`);
  const shown = options.all ? { nodes: view.nodes, rollouts: view.rollouts, hiddenNodes: 0, hiddenRollouts: 0 } : currentPart(view);
  if (shown.nodes.length > 0) {
    lines.push('');
    // The LABELS column only when some node has labels: most services have none.
    const withLabels = shown.nodes.some((n) => n.labels);
    const rows = [['NODE', 'STATUS', 'VERSIONS', ...(withLabels ? ['LABELS'] : []), 'HEARTBEAT', 'LAST ERROR']];
    for (const n of shown.nodes) {
      const versions = Object.entries(n.versions).map(([t, v]) => `${t}@${v}`).join(' ');
      const labels = withLabels ? [formatLabels(n.labels) || '-'] : [];
      rows.push([n.id, n.live ? n.status : n.status === 'stopped' ? 'stopped' : 'dead', versions, ...labels, `${ago(n.heartbeatAgoMs)} ago`, n.lastError ? n.lastError.slice(0, 100) : '']);
    }
    lines.push(...table(rows));
  }
  if (shown.hiddenNodes > 0) lines.push(`(${shown.hiddenNodes} node${shown.hiddenNodes === 1 ? '' : 's'} gone for more than an hour not listed: molt status --all)`);
  if (shown.rollouts.length > 0) {
    lines.push('');
    const rows = [['ROLLOUT', 'UPGRADE', 'SCHEDULE', 'STATE', 'PROGRESS']];
    for (const r of shown.rollouts) {
      const params = Object.keys(r.schedule.params).length ? ` ${JSON.stringify(r.schedule.params)}` : '';
      rows.push([r.rolloutId, `${r.type} ${r.from}→${r.to}`, `${r.schedule.name}${params}`, stateCell(r), progressCell(r, 20, options.unicode)]);
    }
    lines.push(...table(rows));
    for (const r of shown.rollouts) {
      const why = reasonLine(r);
      if (why) lines.push(why);
      if (r.unverified) lines.push(`  ${r.rolloutId} UNVERIFIED: published with --no-verify; its simulation objects and transform were not checked (molt verify)`);
      for (const b of r.behind) lines.push(`  ${r.rolloutId} ${b.nodeId} behind at ${r.type}@${b.version}: ${b.why}`);
      if (r.state === 'done' || r.state === 'rolled-back') continue;
      for (const p of r.nodes) {
        if (p.step === 'upgraded' || p.step === 'rolled-back') continue;
        lines.push(`  ${r.rolloutId} ${p.nodeId}: ${p.step}${p.note ? ` — ${p.note}` : ''}${p.error ? ` — ${p.error}` : ''}`);
      }
    }
  }
  if (shown.hiddenRollouts > 0) lines.push(`(${shown.hiddenRollouts} earlier rollout${shown.hiddenRollouts === 1 ? '' : 's'}, over, not listed: molt status --all)`);
  if (view.retired.length > 0) {
    lines.push('', `retired: ${view.retired.map((r) => `${r.type}@${r.version}`).join(', ')}`);
  }
  if (view.oldVersions.length > 0) {
    const ready = view.oldVersions.filter((v) => v.readyToRetire).length;
    lines.push('', `OLD VERSIONS${ready > 0 ? ` (${ready} ready to retire: molt retire <type> --when-unused)` : ''}`, ...view.oldVersions.map(oldVersionLine));
  }
  if (view.problems.length > 0) {
    lines.push('', 'PROBLEMS');
    for (const p of view.problems) lines.push(`  ${new Date(p.at).toISOString()} ${p.nodeId} ${p.key}: ${p.code}${p.reason ? ` (${p.reason})` : ''}: ${p.message}`);
  }
  return lines;
}

/**
 * What `--watch --json` compares to tell a change: the view without the read
 * time and the ages that grow with every read (heartbeats, how long an old
 * version has been unused).
 */
export function watchKey(view: StatusView): string {
  const { at: _at, ...rest } = view;
  return JSON.stringify({ ...rest, nodes: rest.nodes.map(({ heartbeatAgoMs: _h, ...n }) => n), oldVersions: rest.oldVersions.map(({ unusedForMs: _u, ...v }) => v) });
}

/** One line per rollout and node, without times: what a non-terminal `--watch` prints when it changes. */
export function changeLines(view: StatusView, options: { all?: boolean } = {}): string[] {
  const shown = options.all ? view : currentPart(view);
  return [
    ...shown.nodes.map((n) => `node ${n.id} ${n.live ? n.status : 'dead'} ${Object.entries(n.versions).map(([t, v]) => `${t}@${v}`).join(' ')}${n.lastError ? ` error: ${n.lastError}` : ''}`),
    ...shown.rollouts.map((r) => {
      const back = r.state === 'rolling-back' || r.state === 'rolled-back';
      const done = back ? r.total - r.upgraded : r.upgraded;
      return `rollout ${r.rolloutId} ${r.type} ${r.from}→${r.to} ${r.state} ${done}/${r.total}${back ? ` back at ${r.from}` : ''} [${bar(done, r.total, 10, false)}]${r.by && r.state !== 'running' && r.state !== 'done' ? ` by ${r.by}` : ''}`;
    }),
    ...shown.rollouts.flatMap((r) => r.behind.map((b) => `rollout ${r.rolloutId} ${b.nodeId} behind at ${r.type}@${b.version}: ${b.why}`)),
    ...view.problems.map((p) => `problem ${p.nodeId} ${p.key} ${p.code}${p.reason ? ` (${p.reason})` : ''}`),
  ];
}

/** Every rollout is over: done, aborted or rolled back (`molt status --watch --until-done` exits). */
export function allOver(view: StatusView): boolean {
  return view.rollouts.length > 0 && view.rollouts.every(isFinal);
}
