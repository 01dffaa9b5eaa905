/**
 * Placement: which node serves which shard. Every node writes a heartbeat
 * record to the upgrade database (KV key `nodes.<id>`) and watches everyone
 * else's. A node is live while its record keeps changing within `leaseMs`, as
 * measured by the observer's own clock — so clocks need not agree, and no
 * per-key TTL is needed. Shard s belongs to the live node with the highest
 * rendezvous score hash(node, s): when a node dies or leaves, only its shards
 * move, and every observer computes the same answer from the same live set.
 *
 * A node that cannot renew its heartbeat for most of a lease (network cut,
 * process paused) fences itself: it stops serving before anyone else may
 * take its shards.
 *
 * @module
 */
import type { KV, KvEntry } from '@nats-io/kv';
import type { Clock, Logger, TimerHandle } from '../env.ts';
import { fnv1a } from '../wire/protocol.ts';

/** A node's record in the upgrade database. */
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
  startedAt: number;
  heartbeatAt: number;
  lastError?: string;
  /** Counters for health gating: calls, failed, disallowed, transform failures. */
  stats?: Record<string, number>;
  /** The same counters per actor type (health gates judge the type being upgraded). */
  typeStats?: Record<string, Record<string, number>>;
}

export interface PlacementOptions {
  kv: KV;
  nodeId: string;
  shards: number;
  heartbeatMs: number;
  leaseMs: number;
  clock: Clock;
  logger: Logger;
  /** Builds this node's record for the next heartbeat. */
  record: () => NodeRecord;
  /** Called with the shards this node owns whenever that set changes. */
  onOwnedChange: (owned: ReadonlySet<number>) => void;
}

export const NODE_PREFIX = 'nodes.';

/** Rendezvous score of a node for a shard. */
function score(nodeId: string, shard: number): number {
  // FNV-1a alone barely mixes its input: ids differing in one character rank
  // the same way on most shards (node-1/node-2 split 64 shards 4/60; of a,b,c,d
  // one got none). murmur3's 32-bit finalizer spreads every input bit.
  let h = fnv1a(`${nodeId}#${shard}`);
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
  return (h ^ (h >>> 16)) >>> 0;
}

/** The owner of each shard among `live` nodes (sorted, so ties break the same everywhere). */
export function assignShards(live: readonly string[], shards: number): string[] {
  const nodes = [...live].sort();
  const owners: string[] = [];
  for (let s = 0; s < shards; s++) {
    let best = '';
    let bestScore = -1;
    for (const n of nodes) {
      const sc = score(n, s);
      if (sc > bestScore) {
        bestScore = sc;
        best = n;
      }
    }
    owners.push(best);
  }
  return owners;
}

/** Tracks membership and this node's shards. */
export class Placement {
  private readonly lastSeen = new Map<string, number>();
  readonly records = new Map<string, NodeRecord>();
  private owned: Set<number> = new Set();
  private lastHeartbeatOk = 0;
  private timer: TimerHandle | undefined;
  private stopped = false;
  private watchStop: (() => void) | undefined;
  private fenced = false;

  constructor(private readonly o: PlacementOptions) {}

  async start(): Promise<void> {
    await this.heartbeat();
    const watcher = await this.o.kv.watch({ key: `${NODE_PREFIX}>` });
    this.watchStop = () => watcher.stop();
    void (async () => {
      for await (const entry of watcher) this.observe(entry);
    })().catch((e) => this.o.logger.warn('membership watch ended', { error: String(e) }));
    // Read the current set too: the watch's initial values may arrive after we compute.
    for await (const key of await this.o.kv.keys(`${NODE_PREFIX}>`)) {
      const entry = await this.o.kv.get(key);
      if (entry) this.observe(entry);
    }
    this.recompute();
    this.tick();
  }

  /** Node ids considered live now. */
  live(): string[] {
    const now = this.o.clock.now();
    const out: string[] = [];
    for (const [id, seen] of this.lastSeen) {
      const rec = this.records.get(id);
      if (rec && rec.status !== 'stopped' && (id === this.o.nodeId || now - seen <= this.o.leaseMs)) out.push(id);
    }
    return out;
  }

  ownedShards(): ReadonlySet<number> {
    return this.owned;
  }

  /**
   * True while this node may serve: its last heartbeat is recent enough that
   * no other node can yet consider it dead.
   */
  leaseValid(): boolean {
    return !this.fenced && this.o.clock.now() - this.lastHeartbeatOk < this.o.leaseMs * 0.8;
  }

  private observe(entry: KvEntry): void {
    const id = entry.key.slice(NODE_PREFIX.length);
    if (entry.operation !== 'PUT') {
      this.lastSeen.delete(id);
      this.records.delete(id);
      this.recompute();
      return;
    }
    try {
      const rec = entry.json<NodeRecord>();
      const known = this.records.has(id);
      this.records.set(id, rec);
      this.lastSeen.set(id, this.o.clock.now());
      if (!known || rec.status === 'stopped') this.recompute();
    } catch {
      this.o.logger.warn('ignoring malformed node record', { key: entry.key });
    }
  }

  private async heartbeat(): Promise<void> {
    const started = this.o.clock.now();
    const rec = { ...this.o.record(), heartbeatAt: started };
    try {
      await this.o.kv.put(`${NODE_PREFIX}${this.o.nodeId}`, JSON.stringify(rec));
      this.lastHeartbeatOk = started;
      this.records.set(this.o.nodeId, rec);
      this.lastSeen.set(this.o.nodeId, started);
      if (this.fenced) {
        this.fenced = false;
        this.o.logger.info('lease renewed; serving again', { node: this.o.nodeId });
        this.recompute();
      }
    } catch (e) {
      this.o.logger.warn('heartbeat failed', { node: this.o.nodeId, error: String(e) });
    }
  }

  private tick(): void {
    if (this.stopped) return;
    this.timer = this.o.clock.setTimeout(() => {
      void this.heartbeat().finally(() => {
        this.checkFence();
        this.recompute();
        this.tick();
      });
    }, this.o.heartbeatMs);
  }

  /** Stops serving everything if the lease ran out; see {@link leaseValid}. */
  checkFence(): void {
    if (!this.fenced && !this.leaseValid()) {
      this.fenced = true;
      this.o.logger.warn('lease expired: no longer serving any shard until the heartbeat is renewed', { node: this.o.nodeId });
      this.setOwned(new Set());
    }
  }

  recompute(): void {
    if (this.stopped || this.fenced) return;
    const owners = assignShards(this.live(), this.o.shards);
    const mine = new Set<number>();
    owners.forEach((owner, shard) => owner === this.o.nodeId && mine.add(shard));
    this.setOwned(mine);
  }

  private setOwned(next: Set<number>): void {
    if (next.size === this.owned.size && [...next].every((s) => this.owned.has(s))) return;
    this.owned = next;
    this.o.onOwnedChange(next);
  }

  /** Publishes the record now (e.g. after an upgrade), outside the heartbeat rhythm. */
  async publish(): Promise<void> {
    await this.heartbeat();
  }

  /** Leaves: removes this node's record so its shards move at once. */
  async stop(options: { leave: boolean }): Promise<void> {
    this.stopped = true;
    if (this.timer !== undefined) this.o.clock.clearTimeout(this.timer);
    this.watchStop?.();
    if (options.leave) {
      try {
        await this.o.kv.delete(`${NODE_PREFIX}${this.o.nodeId}`);
      } catch {
        // Already gone or NATS closed: others will see the lease run out.
      }
    }
  }
}
