/**
 * Helpers for the SF tests: start an SF on a simulated timeline, record what it
 * emits, and a small cluster simulator (one SF actor per node over a shared,
 * in-memory UDB) for rolling and canary rollouts. No real timers anywhere:
 * time moves only through `tick` events.
 */
import { createActor, type Actor } from 'xstate';
import type { ScheduleEmitted, ScheduleInput, ScheduleMachine, ScheduleNodeView } from '../../../actors/schedules/index.ts';

export const T0 = Date.UTC(2026, 0, 15, 12, 0, 0);

export function input(params: Record<string, unknown> = {}, over: Partial<ScheduleInput> = {}): ScheduleInput {
  return { nodeId: 'n1', service: 'shop', type: 'cart', from: 1, to: 2, params, now: T0, rolloutId: 'cart-1-2', ...over };
}

export function node(id: string, version = 1, over: Partial<ScheduleNodeView> = {}): ScheduleNodeView {
  return { id, version, status: 'running', live: true, ...over };
}

/** A running SF with its emitted events recorded. */
export class Sf {
  readonly actor: Actor<ScheduleMachine>;
  readonly emitted: ScheduleEmitted[] = [];
  readonly errors: unknown[] = [];
  now: number;

  constructor(machine: ScheduleMachine, inp: ScheduleInput) {
    this.now = inp.now;
    this.actor = createActor(machine, { input: inp });
    for (const t of ['schedule.watch', 'schedule.halted', 'schedule.status'] as const) {
      this.actor.on(t, (e) => this.emitted.push(e as ScheduleEmitted));
    }
    this.actor.subscribe({ error: (e) => this.errors.push(e) });
    this.actor.start();
  }

  get snapshot() {
    return this.actor.getSnapshot();
  }
  /** The decision, or undefined while waiting. */
  get decision() {
    const s = this.snapshot;
    return s.status === 'done' ? s.output : undefined;
  }
  get state(): string {
    return String(this.snapshot.value);
  }
  get note(): string | undefined {
    return (this.snapshot.context as { status?: { note?: string } }).status?.note;
  }
  nodes(...nodes: ScheduleNodeView[]): this {
    this.actor.send({ type: 'udb.nodes', nodes });
    return this;
  }
  /** Moves the timeline forward by `ms` with one tick at the end. */
  advance(ms: number): this {
    this.now += ms;
    this.actor.send({ type: 'tick', now: this.now });
    return this;
  }
  /** Moves forward in ticks of `step` ms, stopping early once decided. */
  advanceBy(ms: number, step = 1000): this {
    const end = this.now + ms;
    while (this.now < end && !this.decision) this.advance(Math.min(step, end - this.now));
    return this;
  }
  load(callsPerSecond: number, idleForMs = 0): this {
    this.actor.send({ type: 'load', callsPerSecond, idleForMs });
    return this;
  }
  control(command: 'pause' | 'resume' | 'abort', reason?: string): this {
    this.actor.send(reason === undefined ? { type: 'control', command } : { type: 'control', command, reason });
    return this;
  }
  versions(service: string, type_: string, minVersion: number, liveNodes?: number): this {
    this.actor.send(liveNodes === undefined ? { type: 'udb.versions', service, type_, minVersion } : { type: 'udb.versions', service, type_, minVersion, liveNodes });
    return this;
  }
}

/**
 * A simulated cluster: the UDB truth (one record per node), one SF per node,
 * and a log of every moment. The "manager" of each node marks it `upgrading`
 * the moment its SF decides, as the real one does first thing.
 */
export class Cluster {
  readonly truth = new Map<string, ScheduleNodeView>();
  readonly sfs = new Map<string, Sf>();
  /** Node ids in the order they started upgrading. */
  readonly started: string[] = [];
  maxUpgrading = 0;
  now = T0;
  /** Called whenever a node starts upgrading (to check invariants at that very moment). */
  onStart: ((id: string) => void) | undefined;

  constructor(readonly machine: ScheduleMachine, ids: readonly string[], readonly params: Record<string, unknown>, readonly to = 2) {
    for (const id of ids) this.truth.set(id, node(id, to - 1));
    for (const id of ids) this.sfs.set(id, new Sf(machine, input(params, { nodeId: id, now: this.now, to, from: to - 1 })));
  }

  view(): ScheduleNodeView[] {
    return [...this.truth.values()].map((n) => ({ ...n, stats: n.stats ? { ...n.stats } : undefined }));
  }
  upgrading(): string[] {
    return [...this.truth.values()].filter((n) => n.live && n.status === 'upgrading').map((n) => n.id);
  }
  /** Sends `view` (default: the current truth) to one node's SF and applies its decision. */
  deliver(id: string, view: ScheduleNodeView[] = this.view()): void {
    const sf = this.sfs.get(id);
    const rec = this.truth.get(id)!;
    if (!sf || !rec.live) return;
    if (!sf.decision) sf.nodes(...view);
    this.apply(id);
  }
  tick(ms: number): void {
    this.now += ms;
    for (const [id, sf] of this.sfs) {
      if (!this.truth.get(id)!.live) continue;
      sf.now = this.now - ms;
      sf.advance(ms);
      this.apply(id);
    }
  }
  /** If the node's SF decided upgrade and it has not started, it starts now. */
  apply(id: string): void {
    const sf = this.sfs.get(id)!;
    const rec = this.truth.get(id)!;
    if (sf.decision?.decision === 'upgrade' && rec.status === 'running' && rec.version < this.to && rec.live) {
      this.truth.set(id, { ...rec, status: 'upgrading' });
      this.started.push(id);
      this.maxUpgrading = Math.max(this.maxUpgrading, this.upgrading().length);
      this.onStart?.(id);
    }
  }
  finish(id: string): void {
    const rec = this.truth.get(id)!;
    if (rec.status === 'upgrading') this.truth.set(id, { ...rec, status: 'running', version: this.to });
  }
  fail(id: string): void {
    const rec = this.truth.get(id)!;
    if (rec.status === 'upgrading') this.truth.set(id, { ...rec, status: 'failed' });
  }
  kill(id: string): void {
    this.truth.set(id, { ...this.truth.get(id)!, live: false });
  }
  /** Rounds of "everyone sees the truth, then every upgrading node finishes" until nothing moves. */
  settle(maxRounds = 100): void {
    for (let i = 0; i < maxRounds; i++) {
      const before = JSON.stringify(this.view());
      for (const id of this.truth.keys()) this.deliver(id);
      for (const id of this.upgrading()) this.finish(id);
      if (JSON.stringify(this.view()) === before) return;
    }
  }
  /** Waves in which nodes started upgrading: all nodes that were upgrading together. */
  versionOf(id: string): number {
    return this.truth.get(id)!.version;
  }
}
