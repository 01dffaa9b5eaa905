/**
 * `molt prune`: keeps a service's history in the UDB bounded.
 *
 * Every node writes its record, its progress in every rollout and its
 * reports, and nothing removes them: a node that left keeps its key (a
 * tombstone, and the bucket's history behind it), and every rollout keeps
 * one progress record per node that took part. A service that deploys with
 * new node ids (a pod's name) and publishes often grows its UDB — and every
 * full read of it, by `molt status`, the dashboard and each upgrade
 * manager — for good. Pruning removes what no reader needs any more:
 *
 * - a **gone node** (its record's last write, or its tombstone, older than
 *   the window; a live node writes it every heartbeat): its record, its
 *   progress in every rollout and its reports;
 * - a **finished rollout** (`done`, `aborted` or `rolled-back`, ended before
 *   the window, and superseded by a newer rollout of its type): its nodes'
 *   progress records and halts.
 *
 * Kept: every rollout record and the operator's command on it (a node
 * catching up reads them), retirements, caller evidence (a node that left
 * still testifies to the callers it saw: without it, `molt retire
 * --when-unused` could judge a version unused that was called), the live
 * nodes' progress in the newest rollout of each type (`molt status` explains
 * who is behind from it), and the halts of a rollout not over — a halt by a
 * gone node may be what holds its rollout paused.
 *
 * Removal is a purge of the bucket's stream per key filter: a record's
 * value, its history and its tombstone all go. Times are the server's (the
 * message's), so nodes' clocks do not matter; the window is at least an hour.
 *
 * @module
 */
import type { KvEntry } from '@nats-io/kv';
import { ErrorCode, MoltError } from '../errors.ts';
import { isFinal, isNewest, newestOfEachType, parseRecord, udbShapes, UdbPrefix, type RolloutRecord, type Udb } from '../udb/index.ts';
import { duration } from '../udb/evidence.ts';

/** The shortest window `molt prune` accepts: a node silent for less may be one a partition hides. */
export const PRUNE_MIN_WINDOW_MS = 3_600_000;
/** `molt prune`'s window when none is given. */
export const PRUNE_DEFAULT_WINDOW_MS = 7 * 86_400_000;

/** A key's last message, as the plan needs it. */
export interface KeyMessage {
  key: string;
  /** When the server stored it, ms since the epoch. */
  at: number;
  /** The value, for a rollout record. */
  value?: Uint8Array;
}

/** A node gone for longer than the window, and the keys that go with it. */
export interface GoneNodeView {
  id: string;
  /** The last write of its record (or its tombstone; without a record, of its newest key). */
  lastSeenAt: number;
  keys: string[];
}

/** A finished, superseded rollout whose per-node detail goes. */
export interface FinishedRolloutView {
  rolloutId: string;
  state: RolloutRecord['state'];
  endedAt: number;
  keys: string[];
}

/** What `molt prune` removes (`--dry-run` shows it without removing). */
export interface PrunePlan {
  /** Records last written before this (ms since the epoch) are old enough to go. */
  cutoff: number;
  windowMs: number;
  nodes: GoneNodeView[];
  rollouts: FinishedRolloutView[];
  /** The purges that remove them: one key filter each. */
  filters: string[];
  /** Keys removed, in all. */
  keys: number;
}

/** What {@link pruneHistory} did. */
export interface PruneResult extends PrunePlan {
  dryRun: boolean;
  /** Messages removed (values, history and tombstones); 0 in a dry run. */
  purged: number;
}

/**
 * The node a per-node key belongs to: `progress.<rollout>.<node>`,
 * `reports.<node>.<type>.<to>`, `nodes.<node>`; undefined for other keys.
 */
function nodeOf(tokens: readonly string[]): string | undefined {
  if (tokens[0] === 'nodes' && tokens.length === 2) return tokens[1];
  if (tokens[0] === 'progress' && tokens.length === 3) return tokens[2];
  if (tokens[0] === 'reports' && tokens.length === 4) return tokens[1];
  return undefined;
}

/**
 * Decides what goes, from every key's last message (pure; {@link pruneHistory}
 * reads the messages and purges).
 */
export function planPrune(messages: Iterable<KeyMessage>, now: number, windowMs: number): PrunePlan {
  const cutoff = now - windowMs;
  const byNode = new Map<string, { record?: KeyMessage; keys: KeyMessage[] }>();
  const detailOf = new Map<string, string[]>(); // rollout → its progress and halt keys
  const rollouts: RolloutRecord[] = [];
  for (const m of messages) {
    const tokens = m.key.split('.');
    const node = nodeOf(tokens);
    if (node !== undefined) {
      const of = byNode.get(node) ?? { keys: [] };
      of.keys.push(m);
      if (tokens[0] === 'nodes') of.record = m;
      byNode.set(node, of);
    }
    if ((tokens[0] === 'progress' || tokens[0] === 'control') && tokens.length === 3) {
      const list = detailOf.get(tokens[1]!);
      if (list) list.push(m.key);
      else detailOf.set(tokens[1]!, [m.key]);
    }
    if (tokens[0] === 'rollouts' && tokens.length === 2 && m.value) {
      const r = parseRecord(m.value, udbShapes.rollout);
      if (r) rollouts.push(r);
    }
  }

  const plan: PrunePlan = { cutoff, windowMs, nodes: [], rollouts: [], filters: [], keys: 0 };
  const going = new Set<string>();
  for (const [id, of] of byNode) {
    // A node's own record says when it was last seen; a node whose record is gone already (pruned, then a
    // late write of another of its keys) by its newest key.
    const lastSeenAt = of.record?.at ?? Math.max(...of.keys.map((k) => k.at));
    if (lastSeenAt >= cutoff) continue;
    const keys = of.keys.map((k) => k.key).sort();
    plan.nodes.push({ id, lastSeenAt, keys });
    for (const k of keys) going.add(k);
    if (of.record) plan.filters.push(`${UdbPrefix.nodes}${id}`);
    if (keys.some((k) => k.startsWith(UdbPrefix.progress))) plan.filters.push(`${UdbPrefix.progress}*.${id}`);
    if (keys.some((k) => k.startsWith(UdbPrefix.reports))) plan.filters.push(`${UdbPrefix.reports}${id}.>`);
  }

  const newest = newestOfEachType(rollouts);
  for (const r of rollouts) {
    if (!isFinal(r) || r.endedAt === undefined || r.endedAt >= cutoff || isNewest(newest, r)) continue;
    const detail = detailOf.get(r.rolloutId) ?? [];
    // Only what the gone nodes' purges leave: each key is counted, and purged, once.
    const keys = detail.filter((k) => !going.has(k)).sort();
    if (keys.length === 0) continue;
    plan.rollouts.push({ rolloutId: r.rolloutId, state: r.state, endedAt: r.endedAt, keys });
    for (const k of keys) going.add(k);
    if (keys.some((k) => k.startsWith(UdbPrefix.progress))) plan.filters.push(`${UdbPrefix.progress}${r.rolloutId}.*`);
    if (keys.some((k) => k.startsWith(UdbPrefix.control))) plan.filters.push(`${UdbPrefix.control}${r.rolloutId}.*`);
  }
  plan.nodes.sort((a, b) => a.lastSeenAt - b.lastSeenAt || a.id.localeCompare(b.id));
  plan.rollouts.sort((a, b) => a.endedAt - b.endedAt || a.rolloutId.localeCompare(b.rolloutId));
  plan.keys = going.size;
  return plan;
}

/**
 * Removes the records of nodes gone for the window and the per-node detail of
 * superseded rollouts that ended before it (nothing with `dryRun`): reads
 * every key's last message, decides what goes, and purges it. Needs the operator's credentials: the purge is
 * a JetStream API request on the UDB's stream (docs/permissions.md).
 *
 * @throws MoltError `InvalidDefinition` for a window under an hour; `Unavailable` if the UDB cannot be read completely.
 */
export async function pruneHistory(udb: Udb, options: { windowMs?: number; now: number; dryRun?: boolean }): Promise<PruneResult> {
  const windowMs = options.windowMs ?? PRUNE_DEFAULT_WINDOW_MS;
  if (!(windowMs >= PRUNE_MIN_WINDOW_MS)) {
    throw new MoltError(ErrorCode.InvalidDefinition, `the window to prune is ${duration(windowMs)}; it must be at least an hour, so that no node a partition hides for a while is taken for gone (molt prune --older-than 7d)`);
  }
  const messages: KeyMessage[] = [];
  for (const e of (await udb.lastMessages()).values()) messages.push(keyMessage(e));
  const plan = planPrune(messages, options.now, windowMs);
  const dryRun = options.dryRun === true;
  const purged = dryRun || plan.filters.length === 0 ? 0 : await udb.purgeKeys(plan.filters);
  return { ...plan, dryRun, purged };
}

function keyMessage(e: KvEntry): KeyMessage {
  return e.operation === 'PUT' && e.key.startsWith(UdbPrefix.rollouts) ? { key: e.key, at: e.created.getTime(), value: e.value } : { key: e.key, at: e.created.getTime() };
}

/** `molt prune`'s report: one line for the nodes, one for the rollouts, one for what stays. */
export function renderPrune(result: PruneResult): string {
  const verb = result.dryRun ? 'would remove' : 'removed';
  const window = duration(result.windowMs);
  const lines: string[] = [];
  const list = (ids: string[]) => (ids.length <= 8 ? ids.join(', ') : `${ids.slice(0, 8).join(', ')}, … ${ids.length - 8} more`);
  if (result.nodes.length > 0) {
    const keys = result.nodes.reduce((n, g) => n + g.keys.length, 0);
    lines.push(`${verb} ${result.nodes.length} node${result.nodes.length === 1 ? '' : 's'} gone for over ${window} (${list(result.nodes.map((n) => n.id))}): ${keys} key${keys === 1 ? '' : 's'}`);
  }
  if (result.rollouts.length > 0) {
    const keys = result.rollouts.reduce((n, r) => n + r.keys.length, 0);
    lines.push(`${verb} the per-node detail of ${result.rollouts.length} rollout${result.rollouts.length === 1 ? '' : 's'} that ended over ${window} ago (${list(result.rollouts.map((r) => r.rolloutId))}): ${keys} key${keys === 1 ? '' : 's'}`);
  }
  if (lines.length === 0) lines.push(`nothing to remove: no node gone and no superseded rollout ended over ${window} ago`);
  else if (!result.dryRun) lines.push(`${result.purged} message${result.purged === 1 ? '' : 's'} purged (values, history and tombstones)`);
  lines.push('kept: every rollout and the operator\'s command on it, retirements, caller evidence, the newest rollout of each type');
  return lines.join('\n');
}
