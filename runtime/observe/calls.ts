/**
 * The call counters of one actor type on one node: every call's outcome, by
 * the caller's version and the route the upgrade layer chose. They are the
 * one record of what a node served — the totals in its UDB record (which a
 * rollout's health gate reads), `node.status()` and the Prometheus metrics
 * (./metrics.ts) are all read from here, so they cannot disagree.
 *
 * Counting is a map lookup by version and an array increment: it runs on
 * every call, whether metrics are served or not.
 *
 * @module
 */
import type { Route } from '../upgrade/layer.ts';

/**
 * How a call was served, as metrics and traces name it: `native`; `past`
 * (through past SOs or `compatible` steps, however many); `future` (the future
 * SO of the node's version + 1); `future2` (the chained future SOs of + 2);
 * `none` (not served: refused before the upgrade layer chose a route, such as
 * a version the node does not serve, or a node too busy to admit the call).
 */
export type RouteLabel = 'native' | 'past' | 'future' | 'future2' | 'none';

/** The labels, in the order of the per-route arrays below. */
export const ROUTE_LABELS: readonly RouteLabel[] = ['native', 'past', 'future', 'future2', 'none'];

const NONE = 4;

/**
 * Most caller versions counted apart. A caller may send any version number,
 * and a version the node does not serve is still counted (`none`,
 * `VersionUnsupported`): past this many, calls of further versions are
 * counted together under {@link OTHER_VERSIONS}, so no caller can grow a
 * node's memory or its metrics without bound.
 */
export const MAX_VERSIONS_COUNTED = 64;

/** The version under which calls of versions beyond {@link MAX_VERSIONS_COUNTED} are counted (label `other`). */
export const OTHER_VERSIONS = 0;

/** The index of a route's label in {@link ROUTE_LABELS}. */
export function routeIndex(route: Route | undefined): number {
  if (route === undefined) return NONE;
  switch (route.kind) {
    case 'native':
      return 0;
    case 'compatible':
    case 'past':
      return 1;
    case 'future':
      return route.steps === 1 ? 2 : 3;
    default:
      return NONE;
  }
}

/** The label of a route (see {@link RouteLabel}). */
export function routeLabel(route: Route | undefined): RouteLabel {
  return ROUTE_LABELS[routeIndex(route)]!;
}

/** Counts of one caller version: ok per route, and errors per route and code. */
interface VersionCounts {
  readonly ok: number[];
  readonly errors: Array<Map<string, number> | undefined>;
  /** Every call of the version, whatever its route and outcome. */
  total: number;
}

/** One counted series: what `molt_calls_total` exposes. */
export interface CallCount {
  /** The caller's version; {@link OTHER_VERSIONS} (0) for the versions past {@link MAX_VERSIONS_COUNTED}. */
  version: number;
  route: RouteLabel;
  /** `ok`, `disallowed`, or the error code. */
  outcome: string;
  count: number;
}

/** One caller version's calls on a node (see {@link CallCounts.traffic}). */
export interface VersionTraffic {
  calls: number;
  /** Served through simulation objects (routes past, future, future2). */
  simulated: number;
  /** Refused by a simulation object. */
  disallowed: number;
}

/** A type's transform failures from one version to another. */
export interface TransformFailureCount {
  from: number;
  to: number;
  count: number;
}

/** The call counters of one actor type on one node. */
export class CallCounts {
  /** Calls answered or refused. */
  calls = 0;
  /** Calls that ended with an error other than `Disallowed` (node-level shedding excepted, see {@link shed}). */
  failed = 0;
  /** Calls a simulation object refused (`Disallowed`). */
  disallowed = 0;
  /** Calls refused unrun because the node or the actor had too many waiting. */
  overloaded = 0;
  /** Actors whose transform failed (each counted once until it is carried). */
  transformFailures = 0;
  private readonly byVersion = new Map<number, VersionCounts>();
  private readonly tfByStep = new Map<string, TransformFailureCount>();

  private of(version: number): VersionCounts {
    let v = this.byVersion.get(version);
    if (v === undefined && this.byVersion.size >= MAX_VERSIONS_COUNTED) {
      version = OTHER_VERSIONS;
      v = this.byVersion.get(version);
    }
    if (v === undefined) {
      v = { ok: [0, 0, 0, 0, 0], errors: [undefined, undefined, undefined, undefined, undefined], total: 0 };
      this.byVersion.set(version, v);
    }
    return v;
  }

  /** A call of `version` answered with a reply. */
  ok(version: number, route: Route | undefined): void {
    this.calls++;
    const v = this.of(version);
    v.ok[routeIndex(route)]!++;
    v.total++;
  }

  /** A call of `version` answered with an error of `code`. */
  error(version: number, route: Route | undefined, code: string): void {
    this.calls++;
    if (code === 'Disallowed') this.disallowed++;
    else this.failed++;
    if (code === 'Overloaded') this.overloaded++;
    this.countError(version, routeIndex(route), code);
  }

  /**
   * A call refused at the node's door because the node has too many calls
   * admitted: it never reached the actor, so it counts as a call and as
   * overloaded, not as a failure of the type (a rollout's health gate must
   * not read a flood as a bad version).
   */
  shed(version: number): void {
    this.calls++;
    this.overloaded++;
    this.countError(version, NONE, 'Overloaded');
  }

  private countError(version: number, index: number, code: string): void {
    const v = this.of(version);
    v.total++;
    const byCode = (v.errors[index] ??= new Map());
    byCode.set(code, (byCode.get(code) ?? 0) + 1);
  }

  /** An actor's transform from `from` to `to` failed (the host counts each actor once). */
  transformFailed(from: number, to: number): void {
    this.transformFailures++;
    const key = `${from}>${to}`;
    const step = this.tfByStep.get(key);
    if (step) step.count++;
    else this.tfByStep.set(key, { from, to, count: 1 });
  }

  /**
   * Calls so far per caller version, whatever their route and outcome: the
   * evidence that a version still has callers (runtime/node/callers.ts).
   */
  *versionTotals(): IterableIterator<[version: number, calls: number]> {
    for (const [version, v] of this.byVersion) yield [version, v.total];
  }

  /** Every non-zero series, for the metrics. */
  *series(): IterableIterator<CallCount> {
    for (const [version, v] of this.byVersion) {
      for (let i = 0; i < ROUTE_LABELS.length; i++) {
        const route = ROUTE_LABELS[i]!;
        if (v.ok[i]! > 0) yield { version, route, outcome: 'ok', count: v.ok[i]! };
        for (const [code, count] of v.errors[i] ?? []) yield { version, route, outcome: code === 'Disallowed' ? 'disallowed' : code, count };
      }
    }
  }

  /**
   * Per caller version: calls answered, how many of them simulation objects
   * served (past, future, future2; refused ones included) and how many they
   * refused. What a node publishes as `traffic` in its record.
   */
  traffic(): Record<string, VersionTraffic> {
    const out: Record<string, VersionTraffic> = {};
    for (const [version, v] of this.byVersion) {
      const t: VersionTraffic = { calls: 0, simulated: 0, disallowed: 0 };
      for (let i = 0; i < ROUTE_LABELS.length; i++) {
        let n = v.ok[i]!;
        for (const [code, count] of v.errors[i] ?? []) {
          n += count;
          if (code === 'Disallowed') t.disallowed += count;
        }
        t.calls += n;
        if (i >= 1 && i <= 3) t.simulated += n;
      }
      out[String(version)] = t;
    }
    return out;
  }

  /** Transform failures by step. */
  transformSteps(): TransformFailureCount[] {
    return [...this.tfByStep.values()].map((s) => ({ ...s }));
  }
}
