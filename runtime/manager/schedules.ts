/**
 * Driving the scheduling functions (SFs): each lifecycle in `scheduling` runs
 * its SF as a child actor, and this module provides that actor — creating the
 * SF machine with its input, relaying what it emits (notes, watches, health
 * halts) and its decision — and feeds every running SF its events: the nodes
 * of the UDB (`udb.nodes`, at each change and each tick), the versions of
 * what it follows (`udb.versions`, also in other services), the clock
 * (`tick`) and this node's load (`load`).
 *
 * Why apart: an SF is user code (a custom SF ships in the bundle). It only
 * sees events and only answers with a decision; everything it may observe of
 * the world is assembled here, and a crash or a thrown `send` ends as a
 * `schedule.failed`, never as a crash of the manager.
 *
 * @module
 */
import { createActor } from 'xstate';
import { Kvm } from '@nats-io/kv';
import type { TimerHandle } from '../env.ts';
import { Udb } from '../udb/index.ts';
import type { ScheduleRunnerInput } from '../../actors/upgrade-manager.ts';
import { scheduleStatusOf } from '../../actors/schedules/index.ts';
import type { ScheduleDecision, ScheduleEvent, ScheduleInput, ScheduleNodeView } from '../../actors/schedules/contract.ts';
import { nodeViews, type ManagerContext } from './context.ts';
import type { Recorder } from './recording.ts';
import { errorText, type Verified } from './model.ts';

/** What the SF runner sends back to its lifecycle. */
export type ScheduleRunnerEvent =
  | { type: 'schedule.note'; note: string }
  | { type: 'schedule.decided'; decision: ScheduleDecision }
  | { type: 'schedule.failed'; error: string };

export interface ScheduleDriver {
  /** The lifecycle's `runSchedule` actor: starts the SF; returns what stops it. */
  runSchedule(input: ScheduleRunnerInput, sendBack: (e: ScheduleRunnerEvent) => void, receive: (fn: (e: ScheduleEvent) => void) => void): () => void;
  /** Feeds running SFs the node list soon (changes are batched for 10 ms). */
  scheduleNodesFlush(): void;
  /** Feeds running SFs `tick` and `load`; returns how many SFs are running. */
  feedClock(): number;
  /** Feeds running SFs the node list and the versions they follow (re-reading other services). */
  feedViews(): void;
  stop(): void;
}

export function createScheduleDriver(ctx: ManagerContext, recorder: Recorder): ScheduleDriver {
  const { node, udb, clock } = ctx;
  /** (service, type) pairs SFs asked to follow with `schedule.watch`. */
  const versionWatches = new Set<string>();
  const otherServices = new Map<string, ScheduleNodeView[]>();
  let nodesFlush: TimerHandle | undefined;
  let lastCalls = new Map<string, { calls: number; at: number; changedAt: number }>();

  function versionsEvent(service: string, type: string, views: ScheduleNodeView[]): ScheduleEvent {
    const live = views.filter((n) => n.live);
    return { type: 'udb.versions', service, type_: type, minVersion: live.length ? Math.min(...live.map((n) => n.version)) : 0, liveNodes: live.length };
  }

  async function readOtherService(service: string): Promise<void> {
    try {
      const kv = await new Kvm(node.connection).open(`molt_${service}_udb`);
      const other = new Udb(kv, service);
      const now = clock.now();
      otherServices.set(
        service,
        (await other.nodes()).flatMap((r) =>
          Object.entries(r.versions).map(([type, version]) => ({ id: `${r.id}#${type}`, version, status: r.status, live: r.status !== 'stopped' && now - r.heartbeatAt <= ctx.config.leaseMs })),
        ),
      );
    } catch {
      otherServices.set(service, []);
    }
  }

  function runSchedule(input: ScheduleRunnerInput, sendBack: (e: ScheduleRunnerEvent) => void, receive: (fn: (e: ScheduleEvent) => void) => void): () => void {
    const verified = input.verified as Verified;
    const d = verified.descriptor;
    const sfInput: ScheduleInput = {
      nodeId: node.id,
      service: node.service,
      type: d.type,
      from: d.from,
      to: d.to,
      params: d.schedule.params,
      now: clock.now(),
      rolloutId: d.rolloutId,
      paused: input.paused,
      ...(input.pausedBy ? { pausedBy: input.pausedBy } : {}),
      ...(input.pauseReason ? { pauseReason: input.pauseReason } : {}),
      nodes: nodeViews(ctx, d.type),
    };
    let settled = false;
    const sf = createActor(verified.schedule, { input: sfInput });
    sf.on('schedule.watch', (e: { service: string; type_: string }) => {
      versionWatches.add(`${e.service}/${e.type_}`);
    });
    sf.on('schedule.halted', (e: { reason: string }) => {
      sendBack({ type: 'schedule.note', note: `halted: ${e.reason}` });
      recorder.status(`rollout ${d.rolloutId} halted by its health gate: ${e.reason}`, `rollout:${d.rolloutId}`);
      recorder.write(`rollout:${d.rolloutId}`, async () => {
        await udb.updateRollout(d.rolloutId, (r) => (r.state === 'running' ? { ...r, state: 'paused', reason: e.reason, by: `health gate on ${node.id}`, updatedAt: clock.now() } : undefined));
      });
    });
    sf.on('schedule.status', (e: { note: string }) => sendBack({ type: 'schedule.note', note: e.note }));
    const settle = () => {
      if (settled) return;
      const snap = sf.getSnapshot();
      if (snap.status === 'error') {
        settled = true;
        sendBack({ type: 'schedule.failed', error: errorText(snap.error) });
      } else if (snap.status === 'done') {
        settled = true;
        const status = scheduleStatusOf(snap);
        if (status.state === 'decided' && status.decision === 'upgrade') sendBack({ type: 'schedule.decided', decision: { decision: 'upgrade' } });
        else if (status.state === 'decided' && status.decision === 'abort') sendBack({ type: 'schedule.decided', decision: { decision: 'abort', reason: status.reason } });
      }
    };
    sf.subscribe({ next: settle, error: (e) => {
      if (settled) return;
      settled = true;
      sendBack({ type: 'schedule.failed', error: errorText(e) });
    } });
    try {
      sf.start();
    } catch (e) {
      settled = true;
      sendBack({ type: 'schedule.failed', error: errorText(e) });
      return () => undefined;
    }
    settle();
    receive((event) => {
      if (settled) return;
      try {
        sf.send(event);
      } catch (e) {
        settled = true;
        sendBack({ type: 'schedule.failed', error: errorText(e) });
      }
    });
    // Versions of what the SF follows, right away.
    queueMicrotask(() => feedVersions(d.type));
    return () => sf.stop();
  }

  function feedNodes(): void {
    const byType = new Map<string, ScheduleNodeView[]>();
    for (const m of ctx.managed.values()) {
      if (m.state !== 'scheduling') continue;
      let views = byType.get(m.type);
      if (!views) byType.set(m.type, (views = nodeViews(ctx, m.type)));
      m.actor.send({ type: 'schedule.feed', event: { type: 'udb.nodes', nodes: views } });
    }
  }

  function feedVersions(onlyType?: string): void {
    for (const m of ctx.managed.values()) {
      if (m.state !== 'scheduling' || (onlyType && m.type !== onlyType)) continue;
      for (const watch of versionWatches) {
        const [service, type] = watch.split('/') as [string, string];
        const views = service === node.service ? nodeViews(ctx, type) : otherServices.get(service);
        if (!views) continue;
        m.actor.send({ type: 'schedule.feed', event: versionsEvent(service, type, views) });
      }
    }
  }

  return {
    runSchedule,
    scheduleNodesFlush() {
      if (nodesFlush !== undefined || ctx.stopped) return;
      nodesFlush = clock.setTimeout(() => {
        nodesFlush = undefined;
        feedNodes();
      }, 10);
    },
    feedClock() {
      const now = clock.now();
      const status = ctx.types();
      const nextCalls = new Map<string, { calls: number; at: number; changedAt: number }>();
      for (const [type, s] of Object.entries(status)) {
        const prev = lastCalls.get(type);
        const changedAt = !prev || prev.calls !== s.stats.calls ? now : prev.changedAt;
        nextCalls.set(type, { calls: s.stats.calls, at: now, changedAt });
      }
      const scheduling = [...ctx.managed.values()].filter((m) => m.state === 'scheduling');
      for (const m of scheduling) {
        const cur = nextCalls.get(m.type);
        const prev = lastCalls.get(m.type);
        const elapsed = prev ? Math.max(1, now - prev.at) : ctx.config.tickMs;
        const cps = prev && cur ? (Math.max(0, cur.calls - prev.calls) * 1000) / elapsed : 0;
        m.actor.send({ type: 'schedule.feed', event: { type: 'tick', now } });
        m.actor.send({ type: 'schedule.feed', event: { type: 'load', callsPerSecond: cps, idleForMs: cur ? now - cur.changedAt : 0 } });
      }
      lastCalls = nextCalls;
      return scheduling.length;
    },
    feedViews() {
      feedNodes();
      for (const watch of versionWatches) {
        const service = watch.split('/')[0]!;
        if (service !== node.service) void readOtherService(service);
      }
      feedVersions();
    },
    stop() {
      if (nodesFlush !== undefined) clock.clearTimeout(nodesFlush);
    },
  };
}
