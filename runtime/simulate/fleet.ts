/**
 * `molt simulate`: a rollout played out before it happens. The real
 * scheduling-function machines — a built-in, or a bundle's custom one — run
 * one per node of a simulated fleet (1,000 to 10,000 nodes), on a simulated
 * clock, over a simulated upgrade database; nodes learn of the upgrade,
 * decide, upgrade for a while, die and come back, fail their transforms or
 * run slow, at the rates given. Out come the rollout's predicted duration,
 * the most nodes upgrading at once, the capacity dip, and where a health gate
 * would halt it.
 *
 * The model, event by event (all times simulated):
 * - node i learns of the upgrade at `learnMs × u` (u uniform in [0, 1)) and
 *   starts its SF then (the manager verifies and loads the bundle first);
 * - every change of a node's version, status or liveness reaches every SF as
 *   one node list `viewLagMs` later (the UDB watch and the manager's batching);
 *   SFs whose rule counts time also get a `tick` every `tickMs`, with a
 *   `load` saying the node is idle (simulated nodes carry no calls);
 * - a node whose SF decides `upgrade` is `upgrading` at once, for
 *   `upgradeMs × (1 ± jitter)` (× `slowFactor` on the slow fraction);
 * - a node with a failing transform finishes its upgrade with one transform
 *   failure and halts the rollout (its manager pauses it, as a real node
 *   does); an operator resume follows after `resumeAfterMs`, if given;
 * - deaths come at `deathsPerMinute` over the fleet (or at the times given in
 *   `kills`); a dead node comes back `restartAfterMs` later (never, if not
 *   given) at the version it ran — at the target if it died upgrading — with
 *   a fresh SF, as a restarted process has.
 *
 * What it costs: each round gives one node list to every waiting SF, as the
 * real managers do. Most of those lists change nothing for the SF that gets
 * them (it is in a later batch, and stays there): the schedules say so
 * (`nodeListIsQuiet`: no decision, no policy state, ledger or clock that
 * moves), and such a list is withheld — replaced by the next list, or given
 * just before any other event — so the SF reaches the same decisions at the
 * same simulated times without an xstate step per list. The built-ins also
 * share their per-list work (sorting, positions, who a batch waits for)
 * between nodes. `rolling` by 5 % of 10,000 nodes (1.1 million schedule
 * events) takes about 4–6 s of CPU, `groups` of three about 3 s
 * (bench/benchmarks/simulate.ts); a withheld list costs a few µs, so many
 * waves over a large fleet still add up (`zones` in batches of 50 over
 * 10,000 nodes: 200 waves, an estimated 11 million events, minutes). SFs
 * whose state moves with every list — a health gate's ledger, `canary`,
 * `rolling` with `pauseMs` — and custom SFs not made with
 * `fromSchedulePolicy` take every list: an xstate step of some tens of µs of
 * CPU per waiting node and round.
 *
 * @module
 */
import { createActor, type Actor } from 'xstate';
import type { ScheduleMachine, ScheduleNodeView } from '../../actors/schedules/contract.ts';
import { resolveSchedule } from '../../actors/schedules/index.ts';
import { nodeListIsQuiet } from '../../actors/schedules/machine.ts';

/** Failure injection. */
export interface SimulationFailures {
  /** Node deaths per minute over the whole fleet (Poisson). Default 0. */
  deathsPerMinute?: number;
  /** Deaths at given times instead: `{ at: ms after publishing, node: index }`. */
  kills?: ReadonlyArray<{ at: number; node: number }>;
  /** A dead node restarts this long after it died (default: never). */
  restartAfterMs?: number;
  /** Fraction of nodes whose transform fails (0..1). Default 0. */
  transformFailureFraction?: number;
  /** After a transform-failure halt, an operator resumes this much later (default: never). */
  resumeAfterMs?: number;
  /** Fraction of nodes that upgrade slowly (0..1), and how much slower. Defaults 0 and 5. */
  slowFraction?: number;
  slowFactor?: number;
}

export interface SimulationOptions {
  /** Fleet size. */
  nodes: number;
  schedule: { name: string; params?: Record<string, unknown> };
  /** Custom SFs by name (a bundle's `schedules` export); built-ins need none. */
  customSchedules?: Readonly<Record<string, unknown>>;
  /** Labels of node i (`zone`, `group`, `ring`…), e.g. from `--zones 3 --group-size 3`. */
  labels?: (index: number) => Record<string, string> | undefined;
  type?: string;
  from?: number;
  to?: number;
  /** Mean duration of one node's upgrade (default 2000 ms) and its spread, ± a fraction (default 0.25). */
  upgradeMs?: number;
  jitter?: number;
  /** Nodes learn of the upgrade spread over this long (default 500 ms). */
  learnMs?: number;
  /** How late a node list reaches the SFs after a change (default 100 ms). */
  viewLagMs?: number;
  /** SF clock tick (default 1000 ms, the manager's). */
  tickMs?: number;
  failures?: SimulationFailures;
  /** Seed of the random choices (default 1): the same seed gives the same rollout. */
  seed?: number;
  /** Give up after this much simulated time (default 24 h). */
  maxMs?: number;
}

/** Where a halt happened. */
export interface SimulatedHalt {
  /** Simulated ms after publishing. */
  at: number;
  /** Nodes at the target then. */
  upgraded: number;
  reason: string;
}

export interface SimulationResult {
  nodes: number;
  schedule: string;
  /** Every live node ran the target (and nothing was upgrading) at `durationMs`. */
  finished: boolean;
  /** Simulated ms from publishing to the last live node at the target (or to where it stopped). */
  durationMs: number;
  /** Most nodes `upgrading` at one moment. */
  maxUpgrading: number;
  /** The capacity dip: fewest nodes serving (live, not upgrading, not failed) at one moment, and when. */
  minServing: number;
  minServingAt: number;
  /** The rollout's own halts: a transform-failure halt, or its health gate. */
  halted?: SimulatedHalt;
  /** Where a health gate with the default thresholds (no transform failure) would first halt it. */
  defaultGateHalt?: SimulatedHalt;
  upgraded: number;
  deaths: number;
  restarts: number;
  /** Live nodes not at the target when it stopped (at most 10 ids). */
  behind: string[];
  /**
   * SF events delivered (a withheld node list counts: the model delivers it; see the module
   * comment), and the wall-clock and CPU time the simulation took.
   */
  events: number;
  wallMs: number;
  cpuMs: number;
}

interface SimNode {
  index: number;
  id: string;
  version: number;
  status: ScheduleNodeView['status'];
  live: boolean;
  labels: Record<string, string> | undefined;
  transformFailures: number;
  slow: boolean;
  failsTransform: boolean;
  sf: Actor<ScheduleMachine> | undefined;
  /** The SF's incarnation: events for an older one are ignored. */
  generation: number;
  /** The latest node list its SF was not given yet, because it changed nothing (see {@link nodeListIsQuiet}). */
  withheld: ScheduleNodeView[] | undefined;
}

type SimEvent =
  | { kind: 'learn'; node: number; generation: number }
  | { kind: 'finish'; node: number; generation: number }
  | { kind: 'death'; node: number | undefined }
  | { kind: 'restart'; node: number }
  | { kind: 'round' }
  | { kind: 'tick' }
  | { kind: 'control'; command: 'pause' | 'resume'; by: string; reason?: string };

/** A small, seeded PRNG (mulberry32): the same seed, the same rollout. */
function random(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A binary heap of events by time, then by insertion. */
class Queue {
  private heap: Array<{ at: number; seq: number; e: SimEvent }> = [];
  private seq = 0;
  get size(): number {
    return this.heap.length;
  }
  push(at: number, e: SimEvent): void {
    const h = this.heap;
    h.push({ at, seq: this.seq++, e });
    let i = h.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (this.less(h[p]!, h[i]!)) break;
      [h[p], h[i]] = [h[i]!, h[p]!];
      i = p;
    }
  }
  pop(): { at: number; e: SimEvent } | undefined {
    const h = this.heap;
    if (h.length === 0) return undefined;
    const top = h[0]!;
    const last = h.pop()!;
    if (h.length > 0) {
      h[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < h.length && this.less(h[l]!, h[m]!)) m = l;
        if (r < h.length && this.less(h[r]!, h[m]!)) m = r;
        if (m === i) break;
        [h[m], h[i]] = [h[i]!, h[m]!];
        i = m;
      }
    }
    return top;
  }
  private less(a: { at: number; seq: number }, b: { at: number; seq: number }): boolean {
    return a.at < b.at || (a.at === b.at && a.seq < b.seq);
  }
}

/** Built-ins whose rule counts time (they need ticks); a custom SF is assumed to. */
function countsTime(name: string, params: Record<string, unknown>, custom: boolean): boolean {
  if (custom) return true;
  if (name === 'canary' || name === 'window' || name === 'whenIdle') return true;
  return name === 'rolling' && typeof params.pauseMs === 'number' && params.pauseMs > 0;
}

/** Runs the simulation to its end and returns the prediction. */
export function simulateRollout(options: SimulationOptions): SimulationResult {
  const started = performance.now();
  const cpuStarted = process.cpuUsage();
  const n = options.nodes;
  const params = options.schedule.params ?? {};
  const custom = options.customSchedules !== undefined && Object.hasOwn(options.customSchedules, options.schedule.name);
  const machine = resolveSchedule(options.schedule.name, params, { custom: options.customSchedules });
  const type = options.type ?? 'simulated';
  const from = options.from ?? 1;
  const to = options.to ?? from + 1;
  const upgradeMs = options.upgradeMs ?? 2000;
  const jitter = options.jitter ?? 0.25;
  const learnMs = options.learnMs ?? 500;
  const viewLagMs = options.viewLagMs ?? 100;
  const tickMs = options.tickMs ?? 1000;
  const maxMs = options.maxMs ?? 24 * 3600_000;
  const f = options.failures ?? {};
  const rnd = random(options.seed ?? 1);
  const ticks = countsTime(options.schedule.name, params, custom);
  const width = String(n - 1).length;

  const nodes: SimNode[] = Array.from({ length: n }, (_, i) => ({
    index: i,
    id: `n${String(i).padStart(width, '0')}`,
    version: from,
    status: 'running',
    live: true,
    labels: options.labels?.(i),
    transformFailures: 0,
    slow: rnd() < (f.slowFraction ?? 0),
    failsTransform: rnd() < (f.transformFailureFraction ?? 0),
    sf: undefined,
    generation: 0,
    withheld: undefined,
  }));

  const queue = new Queue();
  let now = 0;
  let events = 0;
  let deaths = 0;
  let restarts = 0;
  let roundPending = false;
  let paused: { by: string; reason?: string } | undefined;
  let halted: SimulatedHalt | undefined;
  let defaultGateHalt: SimulatedHalt | undefined;
  let view: ScheduleNodeView[] | undefined;
  let upgrading = 0;
  let maxUpgrading = 0;
  let serving = n;
  let minServing = n;
  let minServingAt = 0;
  let upgraded = 0;
  /** Live nodes below the target, and SFs running on live nodes: kept as counts (checked after every event). */
  let behindLive = n;
  let running = 0;
  /** The node list the SFs saw last: what a node starting its SF knows. */
  let lastView: ScheduleNodeView[] | undefined;

  const isServing = (x: SimNode) => x.live && x.status === 'running';
  /** Applies a change to one node, keeping the counts, and schedules a round. */
  const change = (x: SimNode, apply: () => void): void => {
    const wasServing = isServing(x);
    const wasUpgrading = x.live && x.status === 'upgrading';
    const wasUpgraded = x.live && x.version >= to;
    const wasBehind = x.live && x.version < to;
    const wasRunning = x.live && x.sf !== undefined;
    apply();
    entries[x.index] = undefined;
    behindLive += (x.live && x.version < to ? 1 : 0) - (wasBehind ? 1 : 0);
    running += (x.live && x.sf !== undefined ? 1 : 0) - (wasRunning ? 1 : 0);
    serving += (isServing(x) ? 1 : 0) - (wasServing ? 1 : 0);
    upgrading += (x.live && x.status === 'upgrading' ? 1 : 0) - (wasUpgrading ? 1 : 0);
    upgraded += (x.live && x.version >= to ? 1 : 0) - (wasUpgraded ? 1 : 0);
    if (upgrading > maxUpgrading) maxUpgrading = upgrading;
    if (serving < minServing) {
      minServing = serving;
      minServingAt = now;
    }
    view = undefined;
    if (!roundPending) {
      roundPending = true;
      queue.push(now + viewLagMs, { kind: 'round' });
    }
  };

  /**
   * Each node's entry in the node lists, kept while the node does not change:
   * every list is a new array (SFs cache per-list work by the array), but its
   * entries are frozen and shared, so a round allocates only what changed.
   */
  const entries: Array<ScheduleNodeView | undefined> = new Array(n);
  const entryOf = (x: SimNode): ScheduleNodeView =>
    (entries[x.index] ??= Object.freeze({
      id: x.id,
      version: x.version,
      status: x.status,
      live: x.live,
      stats: Object.freeze({ calls: 0, failed: 0, disallowed: 0, transformFailures: x.transformFailures }),
      ...(x.labels ? { labels: x.labels } : {}),
    }));
  const currentView = (): ScheduleNodeView[] => {
    view ??= nodes.map(entryOf);
    return view;
  };

  /** Reads an SF's decision after an event. */
  const settle = (x: SimNode): void => {
    const sf = x.sf;
    if (!sf) return;
    const snap = sf.getSnapshot();
    if (snap.status === 'active') return;
    x.sf = undefined;
    x.withheld = undefined;
    running--;
    sf.stop();
    if (snap.status !== 'done' || snap.output?.decision !== 'upgrade' || !x.live || x.version >= to) return;
    change(x, () => (x.status = 'upgrading'));
    const duration = upgradeMs * (1 + jitter * (2 * rnd() - 1)) * (x.slow ? (f.slowFactor ?? 5) : 1);
    queue.push(now + duration, { kind: 'finish', node: x.index, generation: x.generation });
  };

  const send = (x: SimNode, event: Parameters<Actor<ScheduleMachine>['send']>[0]): void => {
    // A withheld node list goes first: the SF sees every event on the view it would have had.
    if (x.withheld && x.sf) {
      const nodes = x.withheld;
      x.withheld = undefined;
      x.sf.send({ type: 'udb.nodes', nodes });
      settle(x);
    }
    if (!x.sf) return;
    events++;
    x.sf.send(event);
    settle(x);
  };

  /**
   * A round's node list to one SF. A list that would change nothing but the
   * SF's copy of the list (it does not decide on it, and its own state stays
   * as it is) is withheld until the SF has something to do with one: the next
   * list that may make it decide replaces it, and any other event is preceded
   * by it. The SF reaches the same decisions at the same simulated times;
   * what it skips are the intermediate copies (and the waiting notes nobody
   * reads here), which in a large fleet are most of the events and most of
   * the cost.
   */
  const sendNodes = (x: SimNode, nodes: ScheduleNodeView[]): void => {
    if (!x.sf) return;
    events++;
    if (nodeListIsQuiet(machine, x.sf.getSnapshot(), nodes)) {
      x.withheld = nodes;
      return;
    }
    x.withheld = undefined;
    x.sf.send({ type: 'udb.nodes', nodes });
    settle(x);
  };

  const startSf = (x: SimNode): void => {
    const sf = createActor(machine, {
      input: {
        nodeId: x.id,
        service: 'simulated',
        type,
        from,
        to,
        params,
        now,
        rolloutId: `${type}-${to}`,
        ...(paused ? { paused: true, pausedBy: paused.by, ...(paused.reason ? { pauseReason: paused.reason } : {}) } : {}),
        nodes: (lastView ??= currentView()),
      },
    });
    sf.on('schedule.halted', (e: { reason: string }) => {
      halted ??= { at: now, upgraded, reason: `${x.id}: ${e.reason}` };
    });
    const watches: Array<{ service: string; type_: string }> = [];
    sf.on('schedule.watch', (e: { service: string; type_: string }) => watches.push({ service: e.service, type_: e.type_ }));
    x.sf = sf;
    x.withheld = undefined;
    running++;
    sf.start();
    settle(x);
    // Dependencies (`after`) lie outside the simulated fleet: they count as reached.
    for (const w of watches) send(x, { type: 'udb.versions', service: w.service, type_: w.type_, minVersion: Number.MAX_SAFE_INTEGER, liveNodes: 1 });
  };

  for (const x of nodes) queue.push(learnMs * rnd(), { kind: 'learn', node: x.index, generation: 0 });
  if (f.kills) for (const k of f.kills) queue.push(k.at, { kind: 'death', node: k.node });
  const deathRate = (f.deathsPerMinute ?? 0) / 60_000;
  if (deathRate > 0) queue.push(-Math.log(1 - rnd()) / deathRate, { kind: 'death', node: undefined });
  if (ticks) queue.push(tickMs, { kind: 'tick' });

  const done = () => upgrading === 0 && behindLive === 0;
  /** Learns, restarts and resumes still to come: work that can move the rollout. */
  let pendingWork = n;
  const waiting = () => running > 0;

  for (;;) {
    const next = queue.pop();
    if (!next || next.at > maxMs) break;
    now = next.at;
    const e = next.e;
    if (e.kind === 'learn' || e.kind === 'restart') pendingWork--;
    switch (e.kind) {
      case 'learn': {
        const x = nodes[e.node]!;
        if (x.live && x.generation === e.generation && x.version < to) startSf(x);
        break;
      }
      case 'finish': {
        const x = nodes[e.node]!;
        if (!x.live || x.generation !== e.generation || x.status !== 'upgrading') break;
        change(x, () => {
          x.status = 'running';
          x.version = to;
          if (x.failsTransform) x.transformFailures = 1;
        });
        if (x.failsTransform) {
          defaultGateHalt ??= { at: now + viewLagMs, upgraded, reason: `transform failure on ${x.id}` };
          // Its manager pauses the rollout; every node sees it after the lag.
          queue.push(now + viewLagMs, { kind: 'control', command: 'pause', by: `node ${x.id}`, reason: `transform failure on ${x.id}` });
          if (f.resumeAfterMs !== undefined) {
            queue.push(now + viewLagMs + f.resumeAfterMs, { kind: 'control', command: 'resume', by: 'the operator' });
            pendingWork++;
          }
        }
        break;
      }
      case 'death': {
        // A random live node (a few draws; a fleet mostly alive finds one at once).
        let x: SimNode | undefined = e.node === undefined ? undefined : nodes[e.node];
        for (let tries = 0; e.node === undefined && tries < 64 && !x?.live; tries++) x = nodes[Math.floor(rnd() * n)];
        if (e.node === undefined && deathRate > 0) queue.push(now - Math.log(1 - rnd()) / deathRate, { kind: 'death', node: undefined });
        if (!x || !x.live) break;
        deaths++;
        // A node killed mid-upgrade comes back at the target (it recorded it before writing any actor there).
        const resumesAt = x.status === 'upgrading' ? to : x.version;
        change(x, () => {
          x.sf?.stop();
          x.sf = undefined;
          x.withheld = undefined;
          x.live = false;
          x.generation++;
        });
        if (f.restartAfterMs !== undefined) {
          pendingWork++;
          queue.push(now + f.restartAfterMs, { kind: 'restart', node: x.index });
          x.version = resumesAt;
          entries[x.index] = undefined;
        }
        break;
      }
      case 'restart': {
        const x = nodes[e.node]!;
        if (x.live) break;
        restarts++;
        change(x, () => {
          x.live = true;
          x.status = 'running';
        });
        if (x.version < to) {
          pendingWork++;
          queue.push(now + learnMs * rnd(), { kind: 'learn', node: x.index, generation: x.generation });
        }
        break;
      }
      case 'round': {
        roundPending = false;
        const v = currentView();
        lastView = v;
        for (const x of nodes) if (x.sf && x.live) sendNodes(x, v);
        break;
      }
      case 'tick': {
        for (const x of nodes) {
          if (!x.sf || !x.live) continue;
          send(x, { type: 'tick', now });
          // The simulated nodes carry no calls: idle since the upgrade was published (for `whenIdle`).
          if (x.sf) send(x, { type: 'load', callsPerSecond: 0, idleForMs: now });
        }
        if (!done()) queue.push(now + tickMs, { kind: 'tick' });
        break;
      }
      case 'control': {
        if (e.command === 'pause') {
          paused = { by: e.by, ...(e.reason ? { reason: e.reason } : {}) };
          halted ??= { at: now, upgraded, reason: `paused by ${e.by}: ${e.reason ?? ''}` };
        } else {
          paused = undefined;
          pendingWork--;
        }
        for (const x of nodes) if (x.sf && x.live) send(x, { type: 'control', command: e.command, by: e.by, ...(e.reason ? { reason: e.reason } : {}) });
        break;
      }
    }
    if (done() && pendingWork === 0) break;
    // Nothing can move any more: no node upgrading or about to learn, no node list on its way, and
    // either no SF waits or the rollout is held (paused with no resume coming, halted by its health
    // gate) or its SFs do not count time.
    const still = pendingWork === 0 && upgrading === 0 && !roundPending;
    if (still && (!waiting() || !ticks || (paused !== undefined && f.resumeAfterMs === undefined) || halted !== undefined)) break;
  }
  for (const x of nodes) x.sf?.stop();
  const behind = nodes.filter((x) => x.live && x.version < to).map((x) => x.id);
  return {
    nodes: n,
    schedule: options.schedule.name,
    finished: done(),
    durationMs: now,
    maxUpgrading,
    minServing,
    minServingAt,
    ...(halted ? { halted } : {}),
    ...(defaultGateHalt ? { defaultGateHalt } : {}),
    upgraded,
    deaths,
    restarts,
    behind: behind.slice(0, 10),
    events,
    wallMs: Math.round(performance.now() - started),
    cpuMs: Math.round((process.cpuUsage(cpuStarted).user + process.cpuUsage(cpuStarted).system) / 1000),
  };
}
