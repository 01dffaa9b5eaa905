/**
 * A node's evidence about its callers: for each type, when it last saw a
 * caller of each interface version, written to the UDB at a low rate
 * (`callers.<type>.<node>`, see runtime/udb/evidence.ts for the record and
 * for how `molt retire --when-unused` judges it).
 *
 * The counts are the actor hosts' own (`counts.versionTotals()`, the health gate's
 * call counter split by caller version); this module samples them once a
 * heartbeat and turns a rise into "seen now". It writes a type's record when
 * a version's newest sighting is `everyMs` newer than what it last wrote —
 * so a version called again after a quiet spell is written within a
 * heartbeat, and a version called all the time costs one write per `everyMs`.
 *
 * @module
 */
import type { KV } from '@nats-io/kv';
import type { Clock, Logger, TimerHandle } from '../env.ts';
import type { ActorHost } from '../host/actor-host.ts';
import type { CallerRecord } from '../udb/evidence.ts';
import { udbKey } from '../udb/records.ts';

/** Default `everyMs`: a busy version costs each node one write a minute per type. */
export const DEFAULT_EVIDENCE_EVERY_MS = 60_000;

export interface CallerEvidenceOptions {
  kv: KV;
  nodeId: string;
  hosts: ReadonlyMap<string, ActorHost>;
  /** Per type, its `retireWhenUnusedMs` policy. */
  policies: Readonly<Record<string, number | undefined>>;
  clock: Clock;
  logger: Logger;
  everyMs: number;
  heartbeatMs: number;
}

interface TypeEvidence {
  record: CallerRecord;
  /** Calls per version at the last sample. */
  counts: Map<number, number>;
  /** Per version, the `lastSeen` value last written. */
  written: Map<string, number>;
  dirty: boolean;
}

export class CallerEvidence {
  private readonly types = new Map<string, TypeEvidence>();
  private timer: TimerHandle | undefined;
  private writes: Promise<unknown> = Promise.resolve();
  private stopped = false;

  constructor(private readonly o: CallerEvidenceOptions) {}

  /** Reads what this node id recorded before (a restart keeps its evidence), writes the records, starts sampling. */
  async start(): Promise<void> {
    const now = this.o.clock.now();
    for (const type of this.o.hosts.keys()) {
      let previous: Partial<CallerRecord> | undefined;
      try {
        const entry = await this.o.kv.get(udbKey.callers(type, this.o.nodeId));
        previous = entry && entry.operation === 'PUT' ? (entry.json<CallerRecord>() as Partial<CallerRecord>) : undefined;
      } catch {
        previous = undefined;
      }
      const lastSeen: Record<string, number> = {};
      for (const [v, at] of Object.entries(previous?.lastSeen ?? {})) if (typeof at === 'number') lastSeen[v] = at;
      const policy = this.o.policies[type];
      const record: CallerRecord = {
        nodeId: this.o.nodeId,
        type,
        since: typeof previous?.since === 'number' ? Math.min(previous.since, now) : now,
        lastSeen,
        slackMs: this.o.everyMs + this.o.heartbeatMs,
        ...(policy !== undefined ? { retireWhenUnusedMs: policy } : {}),
        updatedAt: now,
      };
      this.types.set(type, { record, counts: new Map(), written: new Map(Object.entries(lastSeen)), dirty: true });
    }
    this.sample();
    await this.flush();
    this.schedule();
  }

  /** Writes what is not written yet and stops sampling. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    if (this.timer !== undefined) this.o.clock.clearTimeout(this.timer);
    this.sample(true);
    await this.flush();
  }

  /** Per type and caller version, when this node last saw a call (what its records say, and newer sightings not yet written). */
  lastSeen(): Record<string, Record<string, number>> {
    return Object.fromEntries([...this.types].map(([t, e]) => [t, { ...e.record.lastSeen }]));
  }

  private schedule(): void {
    if (this.stopped) return;
    this.timer = this.o.clock.setTimeout(() => {
      this.sample();
      void this.flush().finally(() => this.schedule());
    }, this.o.heartbeatMs);
  }

  /** Turns count rises into sightings; marks a type to write when a sighting is `everyMs` newer than written (`all`: any newer). */
  private sample(all = false): void {
    const now = this.o.clock.now();
    for (const [type, e] of this.types) {
      const host = this.o.hosts.get(type);
      if (!host) continue;
      for (const [version, count] of host.counts.versionTotals()) {
        if (count === (e.counts.get(version) ?? 0)) continue;
        e.counts.set(version, count);
        const v = String(version);
        e.record.lastSeen[v] = Math.max(e.record.lastSeen[v] ?? 0, now);
        const written = e.written.get(v);
        if (written === undefined || e.record.lastSeen[v]! - written >= this.o.everyMs || (all && e.record.lastSeen[v]! > written)) e.dirty = true;
      }
    }
  }

  /** Writes the records marked dirty, one write at a time. */
  private flush(): Promise<void> {
    const run = this.writes.then(async () => {
      for (const e of this.types.values()) {
        if (!e.dirty) continue;
        e.dirty = false;
        const record = { ...e.record, lastSeen: { ...e.record.lastSeen }, updatedAt: this.o.clock.now() };
        try {
          await this.o.kv.put(udbKey.callers(record.type, record.nodeId), JSON.stringify(record));
          for (const [v, at] of Object.entries(record.lastSeen)) e.written.set(v, at);
        } catch (err) {
          e.dirty = true;
          this.o.logger.warn('cannot record caller evidence (retiring by evidence waits for it)', { type: record.type, error: String(err) });
        }
      }
    });
    this.writes = run.catch(() => undefined);
    return run;
  }
}
