/**
 * The records of the upgrade database (UDB): the KV bucket `molt_<service>_udb`
 * that every node, publisher and operator tool of a service shares.
 * docs/upgrade-database.md describes each key; keep the two in sync.
 *
 * | key | record | written by |
 * |---|---|---|
 * | `nodes.<node>` | {@link NodeRecord} | the node (heartbeat) |
 * | `rollouts.<rollout>` | {@link RolloutRecord} | publisher (creates), managers (counts, done), operator (state) |
 * | `control.<rollout>` | {@link ControlRecord} | operator (`molt pause/resume/abort/rollback`) |
 * | `control.<rollout>.<node>` | {@link ControlRecord} (a `pause`) | that node's manager, halting on transform failures (./halts.ts) |
 * | `retired.<type>.<version>` | {@link RetireRecord} | operator (`molt retire`) |
 * | `progress.<rollout>.<node>` | {@link ProgressRecord} | the node's upgrade manager |
 * | `reports.<node>.<type>.<to>` | {@link ReportRecord} | the node's upgrade manager (refused or failed upgrades) |
 * | `callers.<type>.<node>` | {@link CallerRecord} | the node (caller evidence, ./evidence.ts) |
 *
 * @module
 */
import { isMatching, P } from 'ts-pattern';
import type { CallerRecord } from './evidence.ts';

export type { CallerRecord };

/** A node's record in the upgrade database (`nodes.<node>`, its heartbeat): what placement, schedules and `molt status` read. */
export interface NodeRecord {
  id: string;
  service: string;
  host: string;
  pid: number;
  /** Native version per actor type. */
  versions: Record<string, number>;
  /** Versions known per type (loaded upgrades whose future SO is installed). */
  known?: Record<string, number[]>;
  status: 'running' | 'upgrading' | 'failed' | 'stopped';
  /** Types being upgraded in place right now, with their target version (a restart resumes there). */
  upgrading?: Record<string, number>;
  startedAt: number;
  heartbeatAt: number;
  lastError?: string;
  /** Counters for health gating: calls, failed, disallowed, transform failures. */
  stats?: Record<string, number>;
  /** The same counters per actor type (health gates judge the type being upgraded). */
  typeStats?: Record<string, Record<string, number>>;
  /**
   * Calls per type and caller version since the node started: answered,
   * served through simulation objects, refused by them (the dashboard's
   * traffic; runtime/observe/calls.ts).
   */
  traffic?: Record<string, Record<string, { calls: number; simulated: number; disallowed: number }>>;
  /** Shards this node may be serving (owned, or released but not yet quiet); see the module notes. */
  claims?: number[];
  /**
   * Which process wrote the record: random per process start. A process that
   * finds its id's record written by another incarnation was replaced, and
   * stops serving for good.
   */
  incarnation?: string;
  /** Heartbeats of this incarnation, numbered from 1 (its own watch echo tells it how current it is). */
  beat?: number;
  /** Actors whose stored record this node cannot read (at most 20), per type. */
  unreadable?: Array<{ type: string; key: string; revision: number; message: string }>;
  /** Fingerprints of the publisher keys this node's upgrade manager trusts (`molt publish` checks its key against them). */
  trusts?: string[];
  /** The node's labels (`zone=a`, `group=g1`), fixed for the process's life (runtime/node/labels.ts). */
  labels?: Record<string, string>;
}

/**
 * Lifecycle of a rollout. `aborted`, `done` and `rolled-back` are final;
 * `rolling-back` (after `molt rollback`) ends in `rolled-back` once every live
 * node runs `from` again.
 */
export type RolloutState = 'running' | 'paused' | 'aborted' | 'done' | 'rolling-back' | 'rolled-back';

/**
 * `later` came after `r` on the same type: a later version (one publish of
 * several versions starts their rollouts at the same moment), or the same
 * version published again. The newest rollout of a type is the one nothing
 * supersedes.
 */
export function supersedes(later: RolloutRecord, r: RolloutRecord): boolean {
  return later.type === r.type && later.rolloutId !== r.rolloutId && (later.to > r.to || (later.to === r.to && later.startedAt > r.startedAt));
}

/** `done`, `aborted` and `rolled-back`: the rollout's state will not change again. */
export function isFinal(r: RolloutRecord): boolean {
  return r.state === 'done' || r.state === 'aborted' || r.state === 'rolled-back';
}

/** A newest rollout of each type: the latest `to`, then the latest start (one pass over the rollouts). */
export function newestOfEachType(rollouts: readonly RolloutRecord[]): Map<string, RolloutRecord> {
  const newest = new Map<string, RolloutRecord>();
  for (const r of rollouts) {
    const latest = newest.get(r.type);
    if (!latest || supersedes(r, latest)) newest.set(r.type, r);
  }
  return newest;
}

/** True if no rollout of its type supersedes `r` (two alike in `to` and start supersede neither); `newest` is {@link newestOfEachType}'s. */
export function isNewest(newest: ReadonlyMap<string, RolloutRecord>, r: RolloutRecord): boolean {
  const latest = newest.get(r.type);
  return latest === undefined || !supersedes(latest, r);
}

/** States after which a rollout's upgrade never runs again on any node. */
export const rollbackStates: ReadonlySet<RolloutState> = new Set(['rolling-back', 'rolled-back']);

/** One published upgrade's progress across the service. */
export interface RolloutRecord {
  rolloutId: string;
  service: string;
  type: string;
  from: number;
  to: number;
  schedule: { name: string; params: Record<string, unknown> };
  publisher: string;
  state: RolloutState;
  /** Live nodes per native version of the type (`{"1": 2, "2": 1}`), as last counted by a manager. */
  counts: Record<string, number>;
  startedAt: number;
  /** When it became `done`, `aborted` or `rolled-back`. */
  endedAt?: number;
  updatedAt: number;
  /** Why it is paused, aborted or rolled back (operator's reason or a health halt). */
  reason?: string;
  /**
   * Who set the state it is in, when that is not `running` or `done`: `user@host`
   * for the CLI, `node <id>` for a node's transform-failure halt, `health gate on
   * <id>` for a health halt, `molt publish --paused` for a rollout published paused.
   */
  by?: string;
  /** Published with `--no-verify`: its SOs and TF were not checked (`molt verify`). */
  unverified?: true;
}

/**
 * Operator commands on a rollout. `rollback` (written by `molt rollback` only
 * where the upgrade declares `down`) is final like `abort`, and also carries
 * every node that upgraded back to `from`.
 */
export type ControlCommand = 'pause' | 'resume' | 'abort' | 'rollback';

/** The last operator command on a rollout: managers act on it and feed it to scheduling functions. */
export interface ControlRecord {
  rolloutId: string;
  command: ControlCommand;
  reason?: string;
  /** Who issued it: `user@host` for the CLI, `node <id>` for a health halt. */
  by: string;
  at: number;
}

/** A version an operator retired: no node serves it any more. */
export interface RetireRecord {
  type: string;
  version: number;
  by: string;
  at: number;
}

/**
 * Steps of an upgrade on one node, in order (`upgraded` … `aborted` are final
 * for the upgrade; `rolling-back` and `rolled-back` follow any of them after
 * `molt rollback`).
 */
export type ProgressStep =
  | 'discovered'
  | 'verified'
  | 'loaded'
  | 'waiting'
  | 'scheduling'
  | 'held'
  | 'upgrading'
  | 'upgraded'
  | 'rejected'
  | 'failed'
  | 'aborted'
  | 'rolling-back'
  | 'rolled-back';

/** One node's progress through one rollout. */
export interface ProgressRecord {
  rolloutId: string;
  nodeId: string;
  type: string;
  from: number;
  to: number;
  step: ProgressStep;
  at: number;
  /** What the scheduling function says it waits for, or the outcome of the upgrade. */
  note?: string;
  error?: string;
  /** Every step so far, oldest first. */
  steps: Array<{ step: ProgressStep; at: number }>;
}

/** An upgrade a node refused or failed to apply. */
export interface ReportRecord {
  nodeId: string;
  /** The descriptor key (`upgrade.<type>.<to>`). */
  key: string;
  rolloutId?: string;
  /** Molt error code (`UpgradeRejected`, `TransformFailed`, …). */
  code: string;
  /** For rejections: `unsigned`, `untrusted-key`, `bad-signature`, `digest-mismatch`, … */
  reason?: string;
  message: string;
  at: number;
}

/** UDB key prefixes. */
export const UdbPrefix = {
  nodes: 'nodes.',
  rollouts: 'rollouts.',
  control: 'control.',
  retired: 'retired.',
  progress: 'progress.',
  reports: 'reports.',
  callers: 'callers.',
} as const;

export const udbKey = {
  node: (id: string) => `${UdbPrefix.nodes}${id}`,
  rollout: (id: string) => `${UdbPrefix.rollouts}${id}`,
  control: (id: string) => `${UdbPrefix.control}${id}`,
  /** A node's halt of a rollout (./halts.ts). */
  halt: (rolloutId: string, nodeId: string) => `${UdbPrefix.control}${rolloutId}.${nodeId}`,
  retired: (type: string, version: number) => `${UdbPrefix.retired}${type}.${version}`,
  progress: (rolloutId: string, nodeId: string) => `${UdbPrefix.progress}${rolloutId}.${nodeId}`,
  report: (nodeId: string, type: string, to: number) => `${UdbPrefix.reports}${nodeId}.${type}.${to}`,
  /** A node's evidence about a type's callers (./evidence.ts). */
  callers: (type: string, nodeId: string) => `${UdbPrefix.callers}${type}.${nodeId}`,
};

const counts = P.when((v): v is Record<string, number> => typeof v === 'object' && v !== null && Object.values(v).every((n) => typeof n === 'number'));
const record = P.when((v): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v));

/**
 * A record type's runtime shape: a ts-pattern pattern that accepts every value
 * of `T` (checked at compile time by {@link shapeOf}). Records read from the
 * UDB are parsed only through a shape, so the type a reader gets is the one
 * its shape was checked against: no caller picks a type for bytes.
 *
 * The record types are interfaces, not `P.infer` of their patterns: an
 * inferred type names ts-pattern's internal types, which a published
 * declaration cannot (and would lose the field documentation). Each shape
 * checks only the fields readers rely on; a record with more fields (a newer
 * Molt's) still matches.
 */
export interface RecordShape<T> {
  readonly pattern: P.Pattern<unknown>;
  /** Never set: carries `T` so that a shape of one record type is not taken for another's. */
  readonly record?: T;
}

/** The shape of `T`: `pattern`, refused at compile time unless it accepts every value of `T`. @internal */
export function shapeOf<T>() {
  return <const Pat extends P.Pattern<unknown>>(pattern: Pat & (T extends P.infer<Pat> ? unknown : never)): RecordShape<T> => ({ pattern });
}

/** The runtime shape of each UDB record: records that do not match are ignored. */
export const udbShapes = {
  node: shapeOf<NodeRecord>()({ id: P.string, service: P.string, versions: record, status: P.union('running', 'upgrading', 'failed', 'stopped'), heartbeatAt: P.number }),
  rollout: shapeOf<RolloutRecord>()({
    rolloutId: P.string,
    type: P.string,
    from: P.number,
    to: P.number,
    state: P.union('running', 'paused', 'aborted', 'done', 'rolling-back', 'rolled-back'),
    counts,
    startedAt: P.number,
  }),
  control: shapeOf<ControlRecord>()({ rolloutId: P.string, command: P.union('pause', 'resume', 'abort', 'rollback'), at: P.number }),
  retired: shapeOf<RetireRecord>()({ type: P.string, version: P.number, at: P.number }),
  progress: shapeOf<ProgressRecord>()({ rolloutId: P.string, nodeId: P.string, step: P.string, at: P.number }),
  report: shapeOf<ReportRecord>()({ nodeId: P.string, key: P.string, code: P.string, message: P.string, at: P.number }),
  callers: shapeOf<CallerRecord>()({ nodeId: P.string, type: P.string, since: P.number, lastSeen: counts, slackMs: P.number }),
} as const;

const decoder = new TextDecoder();

/** Parses a record's JSON bytes against its shape; undefined if they are not JSON or do not match. */
export function parseRecord<T>(bytes: Uint8Array, shape: RecordShape<T>): T | undefined {
  try {
    const value: unknown = JSON.parse(decoder.decode(bytes));
    // The one place bytes become a record type: the shape was checked against T.
    return isMatching(shape.pattern, value) ? (value as T) : undefined;
  } catch {
    return undefined;
  }
}

/** One JSON text parsed once, and which patterns its value matched. */
interface SharedParse {
  readonly value: unknown;
  readonly matches: Map<unknown, boolean>;
}

/**
 * Values of record texts parsed lately, by the text itself. Every observer of
 * a record in the process — placement and upgrade manager of every node, each
 * on its own connection and watch — gets the same bytes; with N nodes in one
 * process (tests, benchmarks) each heartbeat was parsed 2N times, N² a
 * heartbeat period. A memo of a pure function of the bytes: keyed by the whole
 * text (never by key or revision, which two servers can share), bounded, and
 * its values are frozen because every caller gets the same object.
 */
const sharedParses = new Map<string, SharedParse>();
const SHARED_PARSES_MAX = 512;

function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const v of Object.values(value)) deepFreeze(v);
  }
  return value;
}

function sharedParse(bytes: Uint8Array): SharedParse {
  const text = decoder.decode(bytes);
  let parsed = sharedParses.get(text);
  if (!parsed) {
    parsed = { value: deepFreeze(JSON.parse(text) as unknown), matches: new Map() };
    // Oldest first: observers read a record within moments of each other.
    if (sharedParses.size >= SHARED_PARSES_MAX) sharedParses.delete(sharedParses.keys().next().value!);
    sharedParses.set(text, parsed);
  }
  return parsed;
}

/**
 * Parses JSON bytes once per process however many observers read them (see
 * {@link sharedParse}); throws like `JSON.parse` if they are not JSON.
 * The value is deeply frozen: it is shared, never mutate it.
 */
export function parseSharedJson(bytes: Uint8Array): unknown {
  return sharedParse(bytes).value;
}

/**
 * {@link parseRecord} for records many observers in one process read (node
 * records): parsed and matched once per text. The record is deeply frozen.
 */
export function parseSharedRecord<T>(bytes: Uint8Array, shape: RecordShape<T>): Readonly<T> | undefined {
  let parsed: SharedParse;
  try {
    parsed = sharedParse(bytes);
  } catch {
    return undefined;
  }
  let matches = parsed.matches.get(shape.pattern);
  if (matches === undefined) {
    matches = isMatching(shape.pattern, parsed.value);
    parsed.matches.set(shape.pattern, matches);
  }
  return matches ? (parsed.value as T) : undefined;
}
