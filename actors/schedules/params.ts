/**
 * Parameter validation for the built-in schedules.
 *
 * Each built-in reads its `params` (from the descriptor's `schedule.params`)
 * through a {@link ParamReader}, which collects every problem instead of
 * stopping at the first, so one publish attempt reports all of them. Unknown
 * parameter names are problems too: a typo (`bacth`) must not silently fall
 * back to a default.
 *
 * @module
 */

/** Thresholds of the health gate (`params.health`), with defaults filled in. */
export interface HealthParams {
  /** Transform failures tolerated, summed over all nodes since the SF started. Default 0. */
  maxTransformFailures: number;
  /** Nodes tolerated in status `failed` (their upgrade failed). Default 0. */
  maxFailedNodes: number;
  /** Highest tolerated share of failed calls on upgraded nodes, 0..1. Default: not checked. */
  maxFailedRate: number | undefined;
  /** Highest tolerated share of disallowed calls on upgraded nodes, 0..1. Default: not checked. */
  maxDisallowedRate: number | undefined;
  /** Calls on upgraded nodes needed before a rate is judged. Default 20. */
  minCalls: number;
  /** What a failed check does: `halt` (resumable) or `abort` (final). Default `halt`. */
  onFailure: 'halt' | 'abort';
}

/** The default thresholds, used by `health: true` or `health: {}`. */
export const defaultHealth: HealthParams = {
  maxTransformFailures: 0,
  maxFailedNodes: 0,
  maxFailedRate: undefined,
  maxDisallowedRate: undefined,
  minCalls: 20,
  onFailure: 'halt',
};

/** A number of nodes, or a share of them (`2` or `"25%"`), as Kubernetes' `maxUnavailable` takes it. */
export type NodeCount = { nodes: number } | { percent: number };

/** The nodes a {@link NodeCount} allows out of `total`: a share rounds down, and never below 1 (a rollout must be able to move). */
export function resolveNodeCount(count: NodeCount, total: number): number {
  return 'nodes' in count ? count.nodes : Math.max(1, Math.floor((count.percent * total) / 100));
}

/** Collects the problems found in one schedule's params. */
export class ParamReader {
  readonly problems: string[] = [];
  private readonly seen = new Set<string>();
  readonly raw: Record<string, unknown>;

  constructor(readonly schedule: string, params: unknown) {
    if (params === undefined || params === null) this.raw = {};
    else if (typeof params === 'object' && !Array.isArray(params)) this.raw = params as Record<string, unknown>;
    else {
      this.raw = {};
      this.problems.push(`params must be an object such as { "batch": 1 }, got ${describe(params)}`);
    }
  }

  /** An integer in [min, max]; `undefined` if absent and no default. */
  int(name: string, opts: { min: number; max?: number; default?: number; unit?: string }): number | undefined {
    const v = this.take(name);
    if (v === undefined) return opts.default;
    if (typeof v !== 'number' || !Number.isInteger(v) || v < opts.min || (opts.max !== undefined && v > opts.max)) {
      const range = opts.max === undefined ? `≥ ${opts.min}` : `from ${opts.min} to ${opts.max}`;
      this.problems.push(`parameter "${name}" must be an integer ${range}${opts.unit ? ` (${opts.unit})` : ''}, got ${describe(v)}`);
      return opts.default;
    }
    return v;
  }

  /** A finite number in [min, max] (max exclusive when `maxExclusive`). */
  num(name: string, opts: { min: number; max?: number; default?: number; unit?: string; minExclusive?: boolean }): number | undefined {
    const v = this.take(name);
    if (v === undefined) return opts.default;
    const low = opts.minExclusive ? (x: number) => x > opts.min : (x: number) => x >= opts.min;
    if (typeof v !== 'number' || !Number.isFinite(v) || !low(v) || (opts.max !== undefined && v > opts.max)) {
      const lowText = `${opts.minExclusive ? '>' : '≥'} ${opts.min}`;
      const range = opts.max === undefined ? lowText : `${lowText} and ≤ ${opts.max}`;
      this.problems.push(`parameter "${name}" must be a number ${range}${opts.unit ? ` (${opts.unit})` : ''}, got ${describe(v)}`);
      return opts.default;
    }
    return v;
  }

  /** A number of nodes (an integer ≥ 1) or a share of them (a string `"25%"`, more than 0 and at most 100). */
  nodeCount(name: string, opts: { unit: string }): NodeCount | undefined {
    const v = this.take(name);
    if (v === undefined) return undefined;
    if (typeof v === 'number' && Number.isInteger(v) && v >= 1) return { nodes: v };
    const m = typeof v === 'string' ? /^(\d+(?:\.\d+)?)%$/.exec(v.trim()) : null;
    const percent = m ? Number(m[1]) : NaN;
    if (percent > 0 && percent <= 100) return { percent };
    this.problems.push(`parameter "${name}" must be a number of nodes (an integer ≥ 1) or a share of them ("25%"), ${opts.unit}; got ${describe(v)}`);
    return undefined;
  }

  /** A string accepted by `check` (which returns a problem or undefined). */
  str(name: string, opts: { required?: boolean; expected: string; check?: (s: string) => string | undefined }): string | undefined {
    const v = this.take(name);
    if (v === undefined) {
      if (opts.required) this.problems.push(`parameter "${name}" is required: ${opts.expected}`);
      return undefined;
    }
    if (typeof v !== 'string' || v.length === 0) {
      this.problems.push(`parameter "${name}" must be ${opts.expected}, got ${describe(v)}`);
      return undefined;
    }
    const problem = opts.check?.(v);
    if (problem) {
      this.problems.push(`parameter "${name}" ${problem}`);
      return undefined;
    }
    return v;
  }

  /** A list of distinct non-empty strings (`["b", "a"]`), or undefined when absent. */
  list(name: string, opts: { expected: string }): string[] | undefined {
    const v = this.take(name);
    if (v === undefined) return undefined;
    if (!Array.isArray(v) || v.length === 0 || v.some((x) => typeof x !== 'string' || x.length === 0) || new Set(v).size !== v.length) {
      this.problems.push(`parameter "${name}" must be ${opts.expected}, got ${describe(v)}`);
      return undefined;
    }
    return v as string[];
  }

  /** `params.health`: absent → undefined (no gate); `true` or an object → thresholds. */
  health(): HealthParams | undefined {
    const v = this.take('health');
    if (v === undefined || v === false) return undefined;
    if (v === true) return { ...defaultHealth };
    const sub = new ParamReader('"health"', v);
    if (sub.problems.length > 0) {
      this.problems.push(`parameter "health" must be true or an object such as { "maxTransformFailures": 0, "maxFailedRate": 0.05 }, got ${describe(v)}`);
      return undefined;
    }
    const h: HealthParams = {
      maxTransformFailures: sub.int('maxTransformFailures', { min: 0, default: defaultHealth.maxTransformFailures })!,
      maxFailedNodes: sub.int('maxFailedNodes', { min: 0, default: defaultHealth.maxFailedNodes })!,
      maxFailedRate: sub.num('maxFailedRate', { min: 0, max: 1, unit: 'a fraction, 0.05 = 5%' }),
      maxDisallowedRate: sub.num('maxDisallowedRate', { min: 0, max: 1, unit: 'a fraction, 0.05 = 5%' }),
      minCalls: sub.int('minCalls', { min: 1, default: defaultHealth.minCalls })!,
      onFailure: (sub.str('onFailure', {
        expected: '"halt" or "abort"',
        check: (s) => (s === 'halt' || s === 'abort' ? undefined : `must be "halt" or "abort", got "${s}"`),
      }) ?? 'halt') as 'halt' | 'abort',
    };
    sub.rejectUnknown();
    for (const p of sub.problems) this.problems.push(p.replace(/^(unknown )?parameter "/, '$1parameter "health.'));
    return h;
  }

  /** Records a problem for every parameter that no reader asked for. */
  rejectUnknown(): void {
    const known = [...this.seen];
    for (const name of Object.keys(this.raw)) {
      if (this.seen.has(name)) continue;
      const guess = closest(name, known);
      this.problems.push(
        `unknown parameter "${name}"${guess ? ` (did you mean "${guess}"?)` : ''}; ${this.schedule} takes ${known.map((k) => `"${k}"`).join(', ') || 'no parameters'}`,
      );
    }
  }

  /** A problem that involves several parameters. */
  problem(text: string): void {
    this.problems.push(text);
  }

  has(name: string): boolean {
    return this.raw[name] !== undefined;
  }

  private take(name: string): unknown {
    this.seen.add(name);
    return this.raw[name];
  }
}

/** The outcome of parsing one schedule's params. */
export type ParseResult<TParams> = { ok: true; params: TParams } | { ok: false; problems: string[] };

/** Runs a reader function and turns its problems into a {@link ParseResult}. */
export function parseWith<TParams>(schedule: string, params: unknown, read: (r: ParamReader) => TParams): ParseResult<TParams> {
  const reader = new ParamReader(schedule, params);
  const parsed = read(reader);
  reader.rejectUnknown();
  return reader.problems.length === 0 ? { ok: true, params: parsed } : { ok: false, problems: reader.problems };
}

/** Parses "HH:MM" (24-hour) into minutes after midnight, or undefined. */
export function parseClockTime(s: string): number | undefined {
  const m = /^([01]\d|2[0-3]):([0-5]\d)$/.exec(s);
  return m ? Number(m[1]) * 60 + Number(m[2]) : undefined;
}

function describe(v: unknown): string {
  if (typeof v === 'string') return JSON.stringify(v);
  if (Array.isArray(v)) return 'an array';
  try {
    return JSON.stringify(v) ?? String(v);
  } catch {
    return String(v);
  }
}

/** The known name within edit distance 2 of `name`, for "did you mean". */
function closest(name: string, known: string[]): string | undefined {
  let best: string | undefined;
  let bestD = 3;
  for (const k of known) {
    const d = editDistance(name.toLowerCase(), k.toLowerCase());
    if (d < bestD) {
      best = k;
      bestD = d;
    }
  }
  return best;
}

function editDistance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    let prev = row[0]!;
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const tmp = row[j]!;
      row[j] = Math.min(row[j]! + 1, row[j - 1]! + 1, prev + (a[i - 1] === b[j - 1] ? 0 : 1));
      prev = tmp;
    }
  }
  return row[b.length]!;
}
