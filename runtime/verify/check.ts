/**
 * The correctness rules of Ajmani, Liskov and Shrira for simulation objects
 * and transform functions, checked for every upgrade of every actor type from
 * the version declarations alone: random call histories (from arbitraries
 * derived from the message schemas) run in-process through the same upgrade
 * layer a node uses, on two simulated nodes side by side — one at the older
 * version, one at the newer — and every reply compared.
 *
 * @module
 */
import fc, { type Arbitrary } from 'fast-check';
import { isDeepStrictEqual } from 'node:util';
import { isMoltError, ErrorCode, MoltError } from '../errors.ts';
import { isDisallow, type AnyActorVersion } from '../define/version.ts';
import type { ActorType, ServiceDefinition } from '../define/service.ts';
import { admit, initialActorState, persist, restore, routeFor, runTurn, type ActorState, type PersistedActor, type Route, type TypeVersions } from '../upgrade/layer.ts';
import { messageArbitraries, type GeneratorOverrides } from './arbitrary.ts';

/** One call of a counterexample, through the interface of `version`. */
export interface VerifyCall {
  version: number;
  message: string;
  request: Record<string, unknown>;
}

/** The rules, in the order they are checked for each upgrade. */
export const VERIFY_RULES = ['transform-total', 'simulates-future', 'simulates-past', 'sequence', 'identity', 'down-total', 'down-inverse', 'disallow-honest'] as const;

/** One of the rules. */
export type VerifyRule = (typeof VERIFY_RULES)[number];

/** What each rule asks, in plain words (printed with a counterexample). */
export const RULE_TEXT: Readonly<Record<VerifyRule, string>> = {
  'transform-total': 'the transform function must accept every state callers can reach: it threw, or its result is not a state of the new version',
  'down-total': "the `down` transform must accept every state callers of the new version can reach: it threw, or its result is not a state of the old version",
  'down-inverse': 'down(TF(s)) must be s as callers of the old version see it: after the upgrade and back, they got different answers',
  'simulates-future': 'the future SO must behave as the version it simulates: callers of the new version on a node at the old version got answers a native object of the new version, started from the state the transform function makes, would not give (the SO or the TF is wrong)',
  'simulates-past': 'the past SO must behave as the version it simulates: callers of the old version on a node at the new version (after the transform function) got answers a native object of the old version would not give (the SO or the TF is wrong)',
  sequence: 'every call, through either interface, must reflect all earlier calls through the other: interleaved calls answered differently on a node at the old version and on one at the new version',
  identity: 'the upgrade must look like the identity to callers of both versions: after calls through both interfaces, the actor answered differently once its node upgraded',
  'disallow-honest': 'a call a simulation object disallows must change nothing: the actor state differs after the refusal (an SO changed its state in place before refusing)',
};

/** A broken rule, with the shrunk calls that show it. */
export interface VerifyFailure {
  type: string;
  from: number;
  to: number;
  rule: VerifyRule;
  /** Calls made on a node at `from` before the upgrade (or before the comparison starts). */
  history: VerifyCall[];
  /** Calls made after it, on both sides, up to and including the one that answered differently. */
  probe: VerifyCall[];
  /** What went wrong, in a sentence. */
  detail: string;
  seed: number;
  /** fast-check's replay path (pass with the seed to replay exactly this run). */
  path: string;
  /** The search that found it: every short sequence of small calls, or random histories. */
  foundBy: 'small-scope' | 'random';
}

/** One rule checked for one upgrade. */
export interface VerifyRuleResult {
  type: string;
  from: number;
  to: number;
  rule: VerifyRule;
  runs: number;
  ok: boolean;
  /** Why it was not checked, if it was not (e.g. no future SO). */
  skipped?: string;
}

/** A message an SO disallowed in every run that called it: the rules hold, but say little about it. */
export interface AlwaysDisallowed {
  type: string;
  /** The node's version. */
  node: number;
  /** The caller's version and message. */
  version: number;
  message: string;
  calls: number;
}

/** The outcome of {@link verifyService} or {@link verifyType}. */
export interface VerifyReport {
  ok: boolean;
  results: VerifyRuleResult[];
  failures: VerifyFailure[];
  alwaysDisallowed: AlwaysDisallowed[];
  seed: number;
  ms: number;
}

/** Options of the verifier. */
export interface VerifyOptions {
  /** fast-check seed (default: random; printed with every failure). */
  seed?: number;
  /** Runs per rule and upgrade (default 100; five times as many for the totality rules). */
  runs?: number;
  /** Longest call history generated before an upgrade (default 12). */
  maxHistory?: number;
  /** Longest run of calls compared after it (default 8). */
  maxProbe?: number;
  /** Only the upgrades into this version (e.g. the one being published). */
  to?: number;
  /** Only this actor type. */
  type?: string;
  /** Generators for schema forms the verifier cannot derive (`P.when`). */
  generators?: GeneratorOverrides;
  /**
   * Sequences the small-scope search tries per rule and upgrade before the
   * random runs (default 1000, in each of two passes): every sequence of a few small calls, shortest
   * first, as long as they fit.
   */
  smallScope?: number;
  /** Stop at the first failure of a type (default true: later rules usually fail for the same reason). */
  stopAtFirstFailure?: boolean;
}

type Outcome =
  | { kind: 'reply'; reply: unknown; state: ActorState }
  | { kind: 'disallowed'; reason: string }
  | { kind: 'error'; code: string; message: string };

/** A rule broken inside a property run: thrown, caught by fast-check, re-raised with the shrunk input. */
class Broken extends Error {
  constructor(
    readonly rule: VerifyRule,
    readonly detail: string,
    /** How many probe calls were made when it broke (the rest are cut from the report). */
    readonly probeUsed: number,
    /** The read that answered differently, if a read did. */
    readonly read?: VerifyCall,
  ) {
    super(detail);
  }
}

/** The views made, per version list: the layer caches its routes per view object, so one view serves every actor. */
const views = new WeakMap<readonly AnyActorVersion[], Map<string, TypeVersions>>();

function typesAt(versions: readonly AnyActorVersion[], current: number, top: number, rolledBackFrom?: number): TypeVersions {
  let byList = views.get(versions);
  if (!byList) views.set(versions, (byList = new Map()));
  const id = `${current} ${top} ${rolledBackFrom ?? ''}`;
  let view = byList.get(id);
  if (!view) byList.set(id, (view = makeTypesAt(versions, current, top, rolledBackFrom)));
  return view;
}

function makeTypesAt(versions: readonly AnyActorVersion[], current: number, top: number, rolledBackFrom?: number): TypeVersions {
  const known = versions.filter((v) => v.version <= top);
  return {
    name: versions[0]!.type,
    byVersion: new Map(known.map((v) => [v.version, v])),
    current,
    retired: new Set(),
    ...(rolledBackFrom === undefined ? {} : { rolledBackFrom }),
  };
}

/**
 * A canonical string of an actor's SO states, to see whether a refusal
 * changed them: an SO reaches the object only through calls (undone with a
 * refused turn), but its own state it could change in place.
 */
function fingerprint(state: ActorState): string {
  if (isEmpty(state.past) && isEmpty(state.future)) return '';
  const replacer = (_k: string, v: unknown) => (v instanceof Map ? [...v] : v instanceof Set ? [...v] : v);
  return `${JSON.stringify(state.past, replacer)} ${JSON.stringify(state.future, replacer)}`;
}

function isEmpty(record: Readonly<Record<number, unknown>>): boolean {
  for (const _ in record) return false;
  return true;
}

/** A call the layer refuses before it reaches the actor, as an outcome. */
type Refused = Extract<Outcome, { kind: 'error' }>;

/** The route of `call`, or its refusal. */
function admitCall(types: TypeVersions, call: VerifyCall): Route | Refused {
  try {
    return admit(types, call.version, call.message, call.request);
  } catch (e) {
    if (isMoltError(e)) return { kind: 'error', code: e.code, message: e.message };
    throw e;
  }
}

/** The outcome of a call that threw (other than a disallow). */
function thrownOutcome(e: unknown): Refused {
  if (isMoltError(e)) return { kind: 'error', code: e.code, message: e.message };
  return { kind: 'error', code: 'Thrown', message: e instanceof Error ? e.message : String(e) };
}

/** One simulated actor on one simulated node. */
class Sim {
  constructor(
    readonly types: TypeVersions,
    public state: ActorState,
    private readonly onDisallow: (version: number, message: string, disallowed: boolean) => void,
    /** Check that a refusal changed no SO state (off where nothing is committed anyway). */
    private readonly honesty = true,
  ) {}

  /** The outcome of `call`, without committing it; throws Broken if a refusal changed the state. */
  attempt(call: VerifyCall): Outcome {
    const before = this.state;
    const route = admitCall(this.types, call);
    if (route.kind === 'error') return route;
    // Only a call through an SO can be disallowed: only then is the state worth a fingerprint.
    const print = route.kind === 'native' || !this.honesty ? '' : fingerprint(before);
    try {
      const result = runTurn(this.types, before, route, call.version, call.message, call.request);
      if (route.kind !== 'native') this.onDisallow(call.version, call.message, false);
      return { kind: 'reply', reply: result.reply, state: result.state };
    } catch (e) {
      if (isMoltError(e, ErrorCode.Disallowed)) {
        this.onDisallow(call.version, call.message, true);
        if (this.honesty && fingerprint(before) !== print) {
          throw new Broken('disallow-honest', `${describeCall(call)} was disallowed on a node at ${this.types.name}@${this.types.current}, yet the SO states changed (past, future): ${print} before, ${fingerprint(before)} after`, 0);
        }
        return { kind: 'disallowed', reason: String(e.data.reason ?? e.message) };
      }
      return thrownOutcome(e);
    }
  }

  /** Makes `call` and keeps its effect if it succeeded. */
  apply(call: VerifyCall): Outcome {
    const out = this.attempt(call);
    if (out.kind === 'reply') this.state = out.state;
    return out;
  }

  clone(): Sim {
    return new Sim(this.types, this.state, this.onDisallow, this.honesty);
  }
}

function show(value: unknown): string {
  if (value === undefined) return 'nothing';
  return JSON.stringify(value, (_k, v: unknown) => (typeof v === 'bigint' ? `${v}n` : v instanceof Map ? Object.fromEntries(v) : v instanceof Set ? [...v] : v === undefined ? null : v)) ?? String(value);
}

function describeCall(call: VerifyCall): string {
  return `v${call.version} ${call.message}(${Object.keys(call.request).length === 0 ? '' : show(call.request)})`;
}

function describeOutcome(out: Outcome): string {
  switch (out.kind) {
    case 'reply':
      return `answered ${show(out.reply)}`;
    case 'disallowed':
      return `was disallowed`;
    case 'error':
      return `failed with ${out.code} (${out.message})`;
  }
}

/** How a node at `types.current` serves `version`, in words. */
function via(types: TypeVersions, version: number): string {
  const route = routeFor(types, version);
  if (!route || route.kind === 'native') return 'natively';
  if (route.kind === 'compatible') return 'through the compatible newer version';
  return route.kind === 'past' ? (route.steps > 1 ? 'through the chain of past SOs' : 'through the past SO') : route.steps > 1 ? 'through the chain of future SOs' : 'through the future SO';
}

/** Whether two answers to one call differ: a disallow compares nothing, two refusals compare by code, replies deeply. */
function outcomesDiffer(l: Outcome, r: Outcome): boolean {
  if (l.kind === 'disallowed' || r.kind === 'disallowed') return false;
  if (l.kind === 'error' && r.kind === 'error') return l.code !== r.code;
  return !(l.kind === 'reply' && r.kind === 'reply' && isDeepStrictEqual(l.reply, r.reply));
}

/** `call` answered `l` on the node of `left` but `r` on the node of `right`, in words. */
function differenceSentence(call: VerifyCall, left: TypeVersions, l: Outcome, leftName: string, right: TypeVersions, r: Outcome, rightName: string): string {
  return `${describeCall(call)} ${describeOutcome(l)} ${leftName} (${via(left, call.version)}) but ${describeOutcome(r)} ${rightName} (${via(right, call.version)})`;
}

/**
 * Runs `probe` on `left` and `right` side by side. A call either side
 * disallows, or both refuse with the same error, is applied on neither; any
 * other difference breaks `rule`.
 */
function lockstep(rule: VerifyRule, left: Sim, right: Sim, probe: readonly VerifyCall[], reads: Reads, leftName: string, rightName: string): void {
  const differ = (_call: VerifyCall, l: Outcome, r: Outcome): boolean => outcomesDiffer(l, r);
  const sentence = (call: VerifyCall, l: Outcome, r: Outcome) => differenceSentence(call, left.types, l, leftName, right.types, r, rightName);
  // Every read (each ask, made on a copy and thrown away) must answer the same on both sides after every step.
  const compareReads = (done: number) => {
    for (const read of reads) {
      const l = left.attempt(read);
      const r = right.attempt(read);
      if (differ(read, l, r)) throw new Broken(rule, `${done === 0 ? 'at once' : `after the ${done === 1 ? 'call' : `${done} calls`} above`}, the read ${sentence(read, l, r)}`, done, read);
    }
  };
  if (reads.eachStep || probe.length === 0) compareReads(0);
  probe.forEach((call, i) => {
    const l = left.attempt(call);
    const r = right.attempt(call);
    if (differ(call, l, r)) throw new Broken(rule, sentence(call, l, r), i + 1);
    if (l.kind === 'reply' && r.kind === 'reply') {
      left.state = l.state;
      right.state = r.state;
      if (reads.eachStep) compareReads(i + 1);
    }
  });
  if (!reads.eachStep && probe.length > 0) compareReads(probe.length);
}

/**
 * Reads compared by {@link lockstep}: after every call (random histories),
 * or only after the last (the small-scope search, which has compared them
 * after every shorter prefix already).
 */
type Reads = readonly VerifyCall[] & { eachStep?: boolean };

/** A history applied to a fresh actor on `sim`: refused calls are the service's answer and are skipped. */
function replay(sim: Sim, history: readonly VerifyCall[]): Sim {
  for (const call of history) sim.apply(call);
  return sim;
}

/** Carries an actor to the node of `types` through its persisted form, as a node upgrade (or rollback) does. */
function carry(rule: VerifyRule, from: Sim, types: TypeVersions, what: string): ActorState {
  try {
    return restore(types, persist(from.state), 'generated');
  } catch (e) {
    throw new Broken(rule, isMoltError(e, ErrorCode.TransformFailed) ? e.message : `${what} failed: ${e instanceof Error ? e.message : String(e)}`, 0);
  }
}

interface Pair {
  type: string;
  versions: readonly AnyActorVersion[];
  from: number;
  to: number;
}

/** The calls through the interfaces `versions` (each a version and its message arbitraries): one arbitrary per message. */
function callsOf(
  interfaces: ReadonlyArray<readonly [AnyActorVersion, Map<string, Arbitrary<Record<string, unknown>>>]>,
): (Arbitrary<VerifyCall>[] & { asks: Arbitrary<VerifyCall>[] }) | undefined {
  const options: Arbitrary<VerifyCall>[] = [];
  const asks: Arbitrary<VerifyCall>[] = [];
  for (const [def, messages] of interfaces) {
    const version = def.version;
    for (const [message, request] of messages) {
      const call = request.map((r) => ({ version, message, request: r }));
      options.push(call);
      if ((def.messages as Record<string, { kind: string }>)[message]?.kind === 'ask') asks.push(call);
    }
  }
  return options.length === 0 ? undefined : Object.assign(options, { asks });
}

/** One read per ask of the interfaces, compared after every step of a probe. */
function readsOf(asks: Arbitrary<VerifyCall>[]): Arbitrary<VerifyCall[]> {
  return asks.length === 0 ? fc.constant([]) : fc.tuple(...asks);
}

/**
 * Call sequences over the messages `options`: half the runs draw from all of
 * them, half from a random few ("swarm testing"), which makes the sequences
 * that break an SO — a handful of particular calls in order — far likelier.
 */
function sequences(options: Arbitrary<VerifyCall>[], minLength: number, maxLength: number): Arbitrary<VerifyCall[]> {
  const all = fc.array(fc.oneof(...options), { minLength, maxLength });
  if (options.length <= 2) return all;
  const few = fc.subarray(options, { minLength: 1, maxLength: Math.min(4, options.length) }).chain((some) => fc.array(fc.oneof(...some), { minLength, maxLength }));
  return fc.oneof(all, few);
}

/**
 * A few small calls per message, for the small-scope search: the simplest
 * payloads the message's arbitrary yields (shortest first), so that calls of
 * different messages name the same few elements.
 */
function smallCalls(options: readonly Arbitrary<VerifyCall>[], perMessage: number): VerifyCall[] {
  const out: VerifyCall[] = [];
  for (const option of options) {
    const seen = new Map<string, VerifyCall>();
    for (const call of fc.sample(option, { numRuns: 60, seed: 1 })) {
      const key = show(call.request);
      if (!seen.has(key)) seen.set(key, call);
    }
    const simplest = [...seen.entries()].sort(([a], [b]) => a.length - b.length || (a < b ? -1 : a > b ? 1 : 0));
    for (const [, call] of simplest.slice(0, perMessage)) out.push(call);
  }
  return out;
}

/**
 * Every sequence over `domain`, shortest first, up to the longest length
 * whose sequences (with all shorter ones) fit in `budget` (at least length
 * 1). Calls `visit` with each; stops when it throws.
 */
function scopeDepth(size: number, budget: number): number {
  let depth = 0;
  let total = 0;
  for (let count = size; depth < 6 && total + count <= budget; count *= size) {
    total += count;
    depth++;
  }
  return Math.max(depth, 1);
}

function everySequence(domain: readonly VerifyCall[], depth: number, withEmpty: boolean, visit: (sequence: VerifyCall[]) => void): void {
  if (withEmpty) visit([]);
  const sequence: VerifyCall[] = [];
  const walk = (length: number): void => {
    if (sequence.length === length) return visit([...sequence]);
    for (const call of domain) {
      sequence.push(call);
      walk(length);
      sequence.pop();
    }
  };
  for (let length = 1; length <= depth; length++) walk(length);
}

/** Checks every rule for one upgrade `from → to` (one or two versions apart). */
function verifyPair(pair: Pair, options: Required<Pick<VerifyOptions, 'runs' | 'maxHistory' | 'maxProbe' | 'seed' | 'smallScope'>> & VerifyOptions, report: VerifyReport, disallowStats: Map<string, AlwaysDisallowed & { answered: number }>): boolean {
  const { type, versions, from, to } = pair;
  const older = typesAt(versions, from, to);
  const newer = typesAt(versions, to, to);
  const byVersion = new Map(versions.map((v) => [v.version, v]));
  const arbitraries = new Map<number, Map<string, Arbitrary<Record<string, unknown>>>>();
  const arbOf = (v: number) => {
    let out = arbitraries.get(v);
    if (!out) arbitraries.set(v, (out = messageArbitraries(byVersion.get(v)!, { overrides: options.generators ?? {} })));
    return out;
  };
  const servedBoth: number[] = [];
  for (let v = from; v <= to; v++) if (routeFor(older, v) && routeFor(newer, v)) servedBoth.push(v);
  const futureServed = routeFor(older, to) !== undefined;
  const pastServed = routeFor(newer, from) !== undefined;
  const oldCalls = callsOf([[byVersion.get(from)!, arbOf(from)]]);
  const newCalls = callsOf([[byVersion.get(to)!, arbOf(to)]]);
  const mixed = callsOf(servedBoth.map((v) => [byVersion.get(v)!, arbOf(v)] as const));

  const track = (types: TypeVersions) => (version: number, message: string, disallowed: boolean) => {
    const key = `${types.current} ${version} ${message}`;
    let stat = disallowStats.get(key);
    if (!stat) disallowStats.set(key, (stat = { type, node: types.current, version, message, calls: 0, answered: 0 }));
    if (disallowed) stat.calls++;
    else stat.answered++;
  };
  const atOlder = () => new Sim(older, initialActorState(older), track(older));
  const upgraded = (rule: VerifyRule, sim: Sim) => new Sim(newer, carry(rule, sim, newer, `the transform ${type} ${from}→${to}`), track(newer));
  const down = to === from + 1 ? byVersion.get(to)?.upgrade?.down : undefined;

  const names = { left: `on a node at ${type}@${from}`, right: `on a node at ${type}@${to}` };
  type Check = { rule: VerifyRule; skip?: string; history?: Arbitrary<VerifyCall>[]; probe?: Arbitrary<VerifyCall>[] & { asks: Arbitrary<VerifyCall>[] }; run: (history: VerifyCall[], probe: VerifyCall[], reads: Reads) => void };
  const checks: Check[] = [
    {
      rule: 'transform-total',
      history: mixed,
      run: (history) => {
        upgraded('transform-total', replay(atOlder(), history));
      },
    },
    {
      rule: 'simulates-future',
      skip: futureServed ? undefined : `a node at ${type}@${from} does not serve callers of ${to} (no future SO)`,
      history: oldCalls,
      probe: newCalls,
      run: (history, probe, reads) => {
        const left = replay(atOlder(), history);
        lockstep('simulates-future', left, upgraded('transform-total', left), probe, reads, names.left, names.right);
      },
    },
    {
      rule: 'simulates-past',
      skip: pastServed ? undefined : `a node at ${type}@${to} does not serve callers of ${from} (no past SO)`,
      history: oldCalls,
      probe: oldCalls,
      run: (history, probe, reads) => {
        const left = replay(atOlder(), history);
        lockstep('simulates-past', left, upgraded('transform-total', left), probe, reads, names.left, names.right);
      },
    },
    {
      rule: 'sequence',
      skip: servedBoth.length > 1 ? undefined : `no node serves callers of both ${from} and ${to}`,
      history: oldCalls,
      probe: mixed,
      run: (history, probe, reads) => {
        const left = replay(atOlder(), history);
        lockstep('sequence', left, upgraded('transform-total', left), probe, reads, names.left, names.right);
      },
    },
    {
      rule: 'identity',
      history: mixed,
      probe: mixed,
      run: (history, probe, reads) => {
        const left = replay(atOlder(), history);
        lockstep('identity', left, upgraded('transform-total', left), probe, reads, 'before the upgrade', 'after it');
      },
    },
    {
      rule: 'down-total',
      skip: down ? undefined : `${type}@${to} declares no down transform`,
      history: mixed,
      probe: newCalls,
      run: (history, probe, reads) => {
        const after = replay(upgraded('transform-total', replay(atOlder(), history)), probe);
        carry('down-total', after, typesAt(versions, from, to, to), `the down transform ${type} ${to}→${from}`);
      },
    },
    {
      rule: 'down-inverse',
      skip: down ? undefined : `${type}@${to} declares no down transform`,
      history: mixed,
      probe: oldCalls,
      run: (history, probe, reads) => {
        const before = replay(atOlder(), history);
        const back = typesAt(versions, from, to, to);
        const roundTrip = new Sim(back, carry('down-total', upgraded('transform-total', before), back, `the down transform ${type} ${to}→${from}`), track(back));
        const plain = new Sim(back, carry('down-total', before, back, 'loading'), track(back));
        lockstep('down-inverse', plain, roundTrip, probe, reads, 'before the upgrade', 'after the upgrade and `down`');
      },
    },
  ];

  let ok = true;
  for (const check of checks) {
    const base = { type, from, to, rule: check.rule };
    if (check.skip || !check.history) {
      report.results.push({ ...base, runs: 0, ok: true, skipped: check.skip ?? `${type}@${from} has no messages` });
      continue;
    }
    // First every short sequence over a few small calls: it finds the shortest counterexample when there is one.
    const overHistory = check.rule === 'transform-total' || check.rule === 'identity' || check.rule === 'down-total' || check.rule === 'down-inverse';
    let small: { sequence: VerifyCall[]; error: unknown; depth: number } | undefined;
    // One small payload per message first (every call names the same element, so the search goes deeper), then two.
    for (const perMessage of [1, 2]) {
      // Reads with the smallest payloads first: a counterexample then ends with a plain read where one shows it.
      const smallReads = check.probe ? smallCalls(check.probe.asks, perMessage).sort((a, b) => show(a.request).length - show(b.request).length) : [];
      const domain = smallCalls(overHistory ? check.history : check.probe ?? check.history, perMessage);
      const depth = scopeDepth(domain.length, options.smallScope);
      try {
        everySequence(domain, depth, true, (sequence) => {
          try {
            if (overHistory) check.run(sequence, [], smallReads);
            else check.run([], sequence, smallReads);
          } catch (error) {
            small = { sequence, error, depth };
            throw error;
          }
        });
      } catch (e) {
        if (!small) throw e;
        break;
      }
    }
    if (small) {
      ok = false;
      report.results.push({ ...base, runs: 0, ok: false });
      const { sequence, error, depth } = small;
      const h = overHistory ? sequence : [];
      const p = overHistory ? [] : sequence;
      if (error instanceof Broken) {
        const probeShown = error.read ? [...p.slice(0, error.probeUsed), error.read] : p.slice(0, error.probeUsed || p.length);
        report.failures.push({ type, from, to, rule: error.rule, history: h, probe: probeShown, detail: error.detail, seed: options.seed, path: `small-scope:${depth}`, foundBy: 'small-scope' });
      } else {
        report.failures.push({ type, from, to, rule: check.rule, history: h, probe: p, detail: `the check itself threw: ${error instanceof Error ? error.message : String(error)}`, seed: options.seed, path: `small-scope:${depth}`, foundBy: 'small-scope' });
      }
      if (options.stopAtFirstFailure !== false) break;
      continue;
    }
    const history = sequences(check.history, 0, options.maxHistory);
    const probe = check.probe ? sequences(check.probe, 1, options.maxProbe) : fc.constant<VerifyCall[]>([]);
    const reads = check.probe ? readsOf(check.probe.asks) : fc.constant<VerifyCall[]>([]);
    const property = fc.property(history, probe, reads, (h, p, r) => {
      check.run(h, p, Object.assign([...r], { eachStep: true }));
    });
    // The totality rules cost one transform a run, and a state a TF cannot take may need a precise history: give them more runs.
    const numRuns = check.rule === 'transform-total' || check.rule === 'down-total' ? options.runs * 5 : options.runs;
    const details = fc.check(property, { seed: options.seed, numRuns });
    if (!details.failed) {
      report.results.push({ ...base, runs: details.numRuns, ok: true });
      continue;
    }
    ok = false;
    report.results.push({ ...base, runs: details.numRuns, ok: false });
    const [h, p] = details.counterexample ?? [[], [], []];
    const error = details.errorInstance;
    if (error instanceof Broken) {
      const probeShown = error.read ? [...p.slice(0, error.probeUsed), error.read] : p.slice(0, error.probeUsed || p.length);
      report.failures.push({ type, from, to, rule: error.rule, history: h, probe: probeShown, detail: error.detail, seed: details.seed, path: details.counterexamplePath ?? '', foundBy: 'random' });
    } else {
      const message = error instanceof Error ? error.message : String(error);
      report.failures.push({ type, from, to, rule: check.rule, history: h, probe: p, detail: `the check itself threw: ${message}`, seed: details.seed, path: details.counterexamplePath ?? '', foundBy: 'random' });
    }
    if (options.stopAtFirstFailure !== false) break;
  }
  // Disallow honesty is checked inside every run above; say so for the record.
  report.results.push({ type, from, to, rule: 'disallow-honest', runs: 0, ok: !report.failures.some((f) => f.type === type && f.from === from && f.to === to && f.rule === 'disallow-honest') });
  return ok;
}

/** The upgrades of a type the verifier checks: each step i→i+1, and each two-step i→i+2 a node serves through chained SOs. */
function pairsOf(type: ActorType, onlyTo: number | undefined): Pair[] {
  const versions = type.versions;
  const out: Pair[] = [];
  for (const v of versions) {
    if (v.version === 1) continue;
    if (onlyTo === undefined || v.version === onlyTo) out.push({ type: type.name, versions, from: v.version - 1, to: v.version });
  }
  for (const v of versions) {
    if (v.version < 3 || (onlyTo !== undefined && v.version !== onlyTo)) continue;
    const older = typesAt(versions, v.version - 2, v.version);
    const newer = typesAt(versions, v.version, v.version);
    if (routeFor(older, v.version) || routeFor(newer, v.version - 2)) out.push({ type: type.name, versions, from: v.version - 2, to: v.version });
  }
  return out;
}

/** Checks every upgrade of one actor type. */
export function verifyType(type: ActorType, options: VerifyOptions = {}): VerifyReport {
  return verifyTypes([type], options);
}

/** Checks every upgrade of every actor type of a service. */
export function verifyService(service: ServiceDefinition, options: VerifyOptions = {}): VerifyReport {
  const types = options.type === undefined ? service.types : service.types.filter((t) => t.name === options.type);
  if (types.length === 0) {
    throw new MoltError(ErrorCode.InvalidDefinition, `service '${service.name}' has no actor type '${options.type}'; it has: ${service.types.map((t) => t.name).join(', ')}`);
  }
  return verifyTypes(types, options);
}

function verifyTypes(types: readonly ActorType[], options: VerifyOptions): VerifyReport {
  // Refusals are answers here, made by the thousand: their errors need no stack traces.
  const stackTraceLimit = Error.stackTraceLimit;
  Error.stackTraceLimit = 0;
  try {
    return verifyTypesTraceless(types, options);
  } finally {
    Error.stackTraceLimit = stackTraceLimit;
  }
}

function verifyTypesTraceless(types: readonly ActorType[], options: VerifyOptions): VerifyReport {
  const started = performance.now();
  const seed = options.seed ?? (Date.now() ^ (Math.random() * 0x100000000)) | 0;
  const settings = { ...options, seed, runs: options.runs ?? 100, smallScope: options.smallScope ?? 1000, maxHistory: options.maxHistory ?? 12, maxProbe: options.maxProbe ?? 8 };
  const report: VerifyReport = { ok: true, results: [], failures: [], alwaysDisallowed: [], seed, ms: 0 };
  const stats = new Map<string, AlwaysDisallowed & { answered: number }>();
  for (const type of types) {
    for (const version of type.versions) messageArbitraries(version, { overrides: options.generators ?? {} });
    for (const pair of pairsOf(type, options.to)) {
      if (!verifyPair(pair, settings, report, stats) && options.stopAtFirstFailure !== false) break;
    }
  }
  for (const { answered, ...stat } of stats.values()) if (answered === 0 && stat.calls > 0) report.alwaysDisallowed.push(stat);
  report.ok = report.failures.length === 0;
  report.ms = performance.now() - started;
  return report;
}

/** What {@link rehearseActor} found wrong with one stored actor, if anything. */
export type RehearsalProblem =
  | { problem: 'transform-failed'; detail: string }
  | { problem: 'identity'; detail: string; read: VerifyCall }
  | { problem: 'down-failed'; detail: string };

/**
 * The reads `molt rehearse` makes of an actor stored at version `from`
 * before and after carrying it to `to`: the smallest payload of every ask of
 * the versions a node serves both before and after, and `random` more (default 4).
 */
export function rehearsalReads(versions: readonly AnyActorVersion[], from: number, to: number, options: { random?: number; seed?: number; generators?: GeneratorOverrides } = {}): VerifyCall[] {
  const older = typesAt(versions, from, to);
  const newer = typesAt(versions, to, to);
  const asks: Arbitrary<VerifyCall>[] = [];
  for (const def of versions) {
    if (def.version < from || def.version > to || !routeFor(older, def.version) || !routeFor(newer, def.version)) continue;
    const calls = callsOf([[def, messageArbitraries(def, { overrides: options.generators ?? {} })]]);
    if (calls) asks.push(...calls.asks);
  }
  if (asks.length === 0) return [];
  const random = options.random ?? 4;
  const reads = [...smallCalls(asks, 1), ...(random > 0 ? fc.sample(fc.oneof(...asks), { numRuns: random, seed: options.seed ?? 1 }) : [])];
  // A read an SO refuses by a standing `disallow` is refused for every actor: it compares nothing. Nor does a read made twice.
  const seen = new Set<string>();
  return reads.filter((read) => {
    const id = `${read.version} ${read.message} ${show(read.request)}`;
    if (seen.has(id) || standingRefusal(older, read) || standingRefusal(newer, read)) return false;
    seen.add(id);
    return true;
  });
}

/** True if the node of `types` serves `call` by an SO whose handler for it is a standing `disallow(…)`. */
function standingRefusal(types: TypeVersions, call: VerifyCall): boolean {
  const route = routeFor(types, call.version);
  if (!route || (route.kind !== 'past' && route.kind !== 'future')) return false;
  return isDisallow((route.so.handlers as Record<string, unknown>)[call.message]);
}

/**
 * How the node of one view serves a rehearsal's reads, worked out once per
 * view and read list (the same for every actor: neither depends on the
 * actor's state).
 */
interface ReadPlan {
  /** Each read's route, or the refusal the layer answers it with before it reaches the actor. */
  readonly routes: ReadonlyArray<Route | Refused>;
  /**
   * For each read, the index of the first read the node serves with the very
   * same turn (its own index if none does): a read of a version declared
   * `compatible` goes on unchanged to the next version, so, where no
   * interceptor SO watches the calls, `v1 get()` on a node at 2 is `v2 get()`
   * there, reply and error alike. Its answer is taken once per actor.
   */
  readonly same: readonly number[];
}

const readPlans = new WeakMap<TypeVersions, WeakMap<readonly VerifyCall[], ReadPlan>>();

function readPlanOf(types: TypeVersions, reads: readonly VerifyCall[]): ReadPlan {
  let byReads = readPlans.get(types);
  if (!byReads) readPlans.set(types, (byReads = new WeakMap()));
  let plan = byReads.get(reads);
  if (!plan) byReads.set(reads, (plan = makeReadPlan(types, reads)));
  return plan;
}

function makeReadPlan(types: TypeVersions, reads: readonly VerifyCall[]): ReadPlan {
  const routes = reads.map((read) => admitCall(types, read));
  // An interceptor SO is told of calls by the version they were made through: with one in service, no two versions' calls are the same turn.
  const watched = [...types.byVersion.keys()].some((v) => {
    const route = routeFor(types, v);
    return (route?.kind === 'past' || route?.kind === 'future') && route.so.observe !== undefined;
  });
  // Reads answered by their own turn, by the version that serves them and message.
  const served = new Map<string, number[]>();
  const same = reads.map((read, i) => {
    const route = routes[i]!;
    if (watched || route.kind === 'error') return i;
    // The version whose turn serves the read: past every `compatible` step.
    let version = read.version;
    for (let r: Route | undefined = route; r?.kind === 'compatible'; r = routeFor(types, version)) version = r.target;
    const id = `${version} ${read.message}`;
    const earlier = served.get(id)?.find((j) => isDeepStrictEqual(reads[j]!.request, read.request));
    if (earlier !== undefined) return earlier;
    served.set(id, [...(served.get(id) ?? []), i]);
    return i;
  });
  return { routes, same };
}

/** True if every version above `from` up to `to` declares a `down` (else a rollback to `from` is refused, not tried). */
function hasDownChain(versions: readonly AnyActorVersion[], from: number, to: number): boolean {
  for (const def of versions) if (def.version > from && def.version <= to && !def.upgrade?.down) return false;
  return true;
}

/** The answer of the actor `state` on the node of `types` to `read`, admitted as `route`; nothing is kept. */
function readOutcome(types: TypeVersions, state: ActorState, route: Route | Refused, read: VerifyCall): Outcome {
  if (route.kind === 'error') return route;
  try {
    const result = runTurn(types, state, route, read.version, read.message, read.request);
    return { kind: 'reply', reply: result.reply, state: result.state };
  } catch (e) {
    if (isMoltError(e, ErrorCode.Disallowed)) return { kind: 'disallowed', reason: String(e.data.reason ?? e.message) };
    return thrownOutcome(e);
  }
}

/**
 * One stored actor, rehearsed: carried from its stored version to `to`
 * through the TF chain (in memory; nothing is written), and each read
 * answered before (on a node at its version) and after (on a node at `to`);
 * then, where every version up to `to` declares `down`, carried back down as
 * a node rolled back to its version would load it. Undefined when the
 * upgrade would go unnoticed by those reads and the way back works.
 */
export function rehearseActor(versions: readonly AnyActorVersion[], to: number, persisted: PersistedActor, reads: readonly VerifyCall[], key = 'rehearsed'): RehearsalProblem | undefined {
  const stackTraceLimit = Error.stackTraceLimit;
  Error.stackTraceLimit = 0;
  try {
    const older = typesAt(versions, persisted.v, to);
    const newer = typesAt(versions, to, to);
    let before: ActorState;
    let after: ActorState;
    try {
      before = restore(older, persisted, key);
      after = restore(newer, persisted, key);
    } catch (e) {
      return { problem: 'transform-failed', detail: e instanceof Error ? e.message : String(e) };
    }
    // Each read made on both sides and thrown away, as `lockstep` compares reads (without its per-call set-up: this runs per stored actor).
    let i = 0;
    try {
      const left = readPlanOf(older, reads);
      const right = readPlanOf(newer, reads);
      const leftOutcomes: Outcome[] = [];
      const rightOutcomes: Outcome[] = [];
      for (; i < reads.length; i++) {
        const read = reads[i]!;
        const l = (leftOutcomes[i] = left.same[i] === i ? readOutcome(older, before, left.routes[i]!, read) : leftOutcomes[left.same[i]!]!);
        const r = (rightOutcomes[i] = right.same[i] === i ? readOutcome(newer, after, right.routes[i]!, read) : rightOutcomes[right.same[i]!]!);
        if (outcomesDiffer(l, r)) {
          return { problem: 'identity', detail: `at once, the read ${differenceSentence(read, older, l, `before the upgrade (at ${persisted.v})`, newer, r, `after it (at ${to})`)}`, read };
        }
      }
    } catch (e) {
      return { problem: 'identity', detail: e instanceof Error ? e.message : String(e), read: reads[Math.min(i, reads.length - 1)]! };
    }
    // The way back: what a node rolled back from `to` to the stored version (`molt rollback`) would load, once the actor had been carried up.
    if (hasDownChain(versions, persisted.v, to)) {
      try {
        restore(typesAt(versions, persisted.v, to, to), persist(after), key);
      } catch (e) {
        return { problem: 'down-failed', detail: e instanceof Error ? e.message : String(e) };
      }
    }
    return undefined;
  } finally {
    Error.stackTraceLimit = stackTraceLimit;
  }
}

/** A call as a line a user can paste into a test (`SimulatedCall` of molt/testing). */
export function formatCall(call: VerifyCall): string {
  return `{ version: ${call.version}, message: '${call.message}', request: ${show(call.request)} },`;
}

/** A failure as the text `molt verify` prints. */
export function formatFailure(f: VerifyFailure): string {
  const lines = [
    `✗ ${f.type} ${f.from}→${f.to}: rule '${f.rule}' broken`,
    `  ${RULE_TEXT[f.rule]}.`,
    `  ${f.detail}`,
  ];
  const beforeWhat = f.rule === 'down-total' ? 'on a node at the old version, then the upgrade' : `on a new actor on a node at ${f.type}@${f.from}`;
  lines.push(f.history.length === 0 ? `  history: none (a new actor)` : `  history, ${beforeWhat}:`);
  for (const call of f.history) lines.push(`    ${formatCall(call)}`);
  if (f.probe.length > 0) {
    const probeWhat =
      f.rule === 'down-total' ? `then on a node at ${f.type}@${f.to}, before \`down\`` : f.rule === 'down-inverse' ? 'then, on the actor as it was and on the same actor carried up and down again' : f.rule === 'identity' ? `then, before the upgrade and after it` : `then, on a node at ${f.type}@${f.from} and on the same actor carried to ${f.to}`;
    lines.push(`  ${probeWhat}:`);
    for (const call of f.probe) lines.push(`    ${formatCall(call)}`);
  }
  lines.push(f.foundBy === 'small-scope' ? `  found by trying every sequence of up to ${f.path.split(':')[1]} small calls, shortest first` : `  found by random histories; replay: --seed ${f.seed}`);
  return lines.join('\n');
}

/** A whole report as text: one line per upgrade checked, then each failure. */
export function formatReport(report: VerifyReport): string {
  const lines: string[] = [];
  const byPair = new Map<string, VerifyRuleResult[]>();
  for (const r of report.results) {
    const key = `${r.type} ${r.from}→${r.to}`;
    byPair.set(key, [...(byPair.get(key) ?? []), r]);
  }
  for (const [key, results] of byPair) {
    const broken = results.filter((r) => !r.ok).map((r) => r.rule);
    const checked = results.filter((r) => !r.skipped && r.runs > 0).length;
    lines.push(`${broken.length === 0 ? '✓' : '✗'} ${key}: ${broken.length === 0 ? `${checked} rules hold` : `broken: ${broken.join(', ')}`} (${results.filter((r) => r.skipped).map((r) => `${r.rule} not checked: ${r.skipped}`).join('; ') || 'every rule checked'})`);
  }
  if (lines.length === 0) lines.push('no upgrades to check (every type has one version)');
  for (const d of report.alwaysDisallowed) {
    lines.push(`note: ${d.type}@${d.version} ${d.message} is disallowed on a node at ${d.node} in all ${d.calls} calls; the rules hold, but callers of ${d.version} cannot use it there`);
  }
  for (const f of report.failures) lines.push('', formatFailure(f));
  lines.push('', `${report.ok ? 'verified' : 'FAILED'} in ${Math.round(report.ms)} ms (seed ${report.seed})`);
  return lines.join('\n') + '\n';
}
