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
 * Two rules keep two nodes from serving one shard at once (on a NATS cluster
 * this matters beyond reads: nats-server before 2.9.21 can accept two
 * concurrent compare-and-set writes of one key, nats-server#4320):
 *
 * - **Death needs proof.** An observer declares a node dead only once its own
 *   heartbeats have come back through the watch for longer than a lease
 *   after that node's last record. A watch that stalls (a nats-server failing
 *   over) therefore makes nobody look dead — everyone renews together after.
 *   While no watch runs, the records are read from the stream in its order
 *   instead, which proves the same (see readPastWatch).
 * - **Handover by claims.** Each record lists the shards its node may still be
 *   serving (owned plus those it is releasing). A node takes a shard only when
 *   no other live node claims it; a node giving a shard up stops taking calls
 *   for it, lets the calls it accepted finish, and only then drops the claim.
 *
 * @module
 */
import { Bucket, type KV, type KvEntry, type KvWatchEntry } from '@nats-io/kv';
import type { JetStreamManager, MsgRequest } from '@nats-io/jetstream';
import type { Clock, Logger, TimerHandle } from '../env.ts';
import { fnv1a } from '../wire/protocol.ts';
import { parseSharedJson, type NodeRecord } from '../udb/records.ts';
import { isWrongLastSequence } from './store.ts';
import { listSubjectKeys } from '../nats/kv-reads.ts';
import { stopWatch } from '../nats/internals.ts';


export interface PlacementOptions {
  kv: KV;
  nodeId: string;
  /** This process's incarnation (see NodeRecord.incarnation). */
  incarnation: string;
  /** Revision of this node id's record when the process started (0: none): heartbeats are compare-and-set from it. */
  recordRevision: number;
  shards: number;
  heartbeatMs: number;
  leaseMs: number;
  clock: Clock;
  logger: Logger;
  /** Builds this node's record for the next heartbeat. */
  record: () => NodeRecord;
  /**
   * Called with the shards this node owns whenever that set changes. May
   * return a promise that settles once no call on a released shard is still
   * running: only then is the release announced to other nodes.
   */
  onOwnedChange: (owned: ReadonlySet<number>) => void | Promise<void>;
  /**
   * Called once if another process took over this node id (its record was
   * written by another incarnation): this node has stopped serving for good.
   */
  onReplaced?: (by: NodeRecord) => void;
  /**
   * Whether the connection calls arrive on still works. Placement renews the
   * lease only while it does: a node whose calls cannot reach it must let
   * its shards go, even if its heartbeats (on another connection) still succeed.
   */
  callPathAlive?: () => boolean;
  /**
   * The longest a state write may wait for its acknowledgement (the store's
   * write timeout). A shard given up is announced as released only once its
   * accepted calls are done, or after this plus a lease at most: a write
   * still waiting could otherwise be stored after the next owner loaded the
   * actor, which would then answer reads from a state older than a change
   * already acknowledged. Default 0, for a placement whose node writes no
   * state: the limit is then two leases.
   */
  writeTimeoutMs?: number;
  /**
   * Reads the node records from their stream while no watch runs (see
   * {@link Placement.readPastWatch}): a manager on the connection of `kv`
   * whose requests time out within about a heartbeat, so that one lost in an
   * election holds the reading back no longer. Default: the bucket's own.
   */
  recordReader?: JetStreamManager;
}

export const NODE_PREFIX = 'nodes.';

/**
 * The share of a lease a node's last successful heartbeat stays good for. The
 * rest is margin: the node stops serving before any observer (whose own
 * clock starts later, when the record reaches it) may take its shards.
 */
const LEASE_VALID_SHARE = 0.8;

/** Node records read per {@link Placement.readPastWatch} call, beyond four per known node. */
const READ_PAST_WATCH_MAX = 64;

/** The NATS client's own wait for a JetStream acknowledgement; a heartbeat never waits longer. */
const JETSTREAM_ACK_WAIT_MS = 5000;

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

/**
 * A node's scores for shards 0…shards−1, hashed once per node id: every node
 * recomputes placement on every record it sees (N heartbeats a second), and
 * hashing N × shards strings each time made that O(N² × shards) per second.
 */
const scoreCache = new Map<string, Uint32Array>();

function scoresOf(nodeId: string, shards: number): Uint32Array {
  let scores = scoreCache.get(nodeId);
  if (!scores || scores.length < shards) {
    // Node ids of restarted processes accumulate; a bound keeps the memo small.
    if (scoreCache.size >= 4096) scoreCache.clear();
    scores = new Uint32Array(shards);
    for (let s = 0; s < shards; s++) scores[s] = score(nodeId, s);
    scoreCache.set(nodeId, scores);
  }
  return scores;
}

/** The owner of each shard among `live` nodes (sorted, so ties break the same everywhere). */
export function assignShards(live: readonly string[], shards: number): string[] {
  const nodes = [...live].sort();
  const table = nodes.map((n) => scoresOf(n, shards));
  const owners: string[] = [];
  for (let s = 0; s < shards; s++) {
    let best = '';
    let bestScore = -1;
    for (let i = 0; i < nodes.length; i++) {
      const n = nodes[i]!;
      const sc = table[i]![s]!;
      if (sc > bestScore) {
        bestScore = sc;
        best = n;
      }
    }
    owners.push(best);
  }
  return owners;
}

function sameShards(a: readonly number[] | undefined, b: readonly number[] | undefined): boolean {
  if (a === b) return true;
  if (!a || !b || a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** Tracks membership and this node's shards. */
export class Placement {
  /** When each node's latest record was seen, on this node's monotonic clock. */
  private readonly lastSeen = new Map<string, number>();
  /** The revision of each other node's record last seen, by id: a record seen again (a restarted watch's replay) is no sign of life. */
  private readonly seenRevision = new Map<string, number>();
  readonly records = new Map<string, NodeRecord>();
  private owned: Set<number> = new Set();
  /** Monotonic start time of the latest heartbeat JetStream acknowledged. */
  private lastHeartbeatOk = Number.NEGATIVE_INFINITY;
  private timer: TimerHandle | undefined;
  private stopped = false;
  private watchStop: (() => void) | undefined;
  /** Others of this node that follow the node records too (the upgrade manager): handed every entry this watch delivers. */
  private readonly recordListeners = new Set<(entry: KvEntry) => void>();
  /** Set once the first watch started: later ones are restarts (see watch()). */
  private watchedBefore = false;
  /**
   * The stream sequence the node records have been followed up to, in stream
   * order (by a watch, or by {@link readPastWatch}): every record stored up to
   * it has been observed, or a later one of its node. Reads out of order
   * (start()'s) leave it.
   */
  private followedUpTo = 0;
  /** Set while {@link readPastWatch} runs. */
  private reading = false;
  private fenced = false;
  /** Set by a fence until this node owns a shard again (logged: the renewal alone serves nothing). */
  private regaining = false;
  /** Set for good once another process took over this node id. */
  private replaced = false;
  /** Shards given up whose accepted calls may still be running: still claimed. */
  private readonly releasing = new Set<number>();
  /**
   * Shards given up voluntarily (not by a fence) whose calls are still being
   * drained: calls the server routed here before the release are answered.
   */
  private readonly draining = new Set<number>();
  /**
   * Monotonic start time of this node's latest heartbeat seen back through the
   * watch: the watch has shown everything written before that moment. Others
   * are judged against it, never against `now`, so a stalled watch kills nobody.
   */
  private watchedUpTo = Number.NEGATIVE_INFINITY;
  /** False until start() has read every node record: no shard is taken before. */
  private membershipKnown = false;
  /**
   * New shards are taken only once the watch is current past this time: at
   * start, once our first record came back (so we have seen every claim);
   * after a fence, one heartbeat past the renewal (so a node that took our
   * shards just before we came back has published its claim).
   */
  private gainAfter: number;
  /**
   * Start time of the oldest heartbeat JetStream acknowledged that has not
   * come back through the watch yet (undefined: none outstanding); see {@link checkWatch}.
   */
  private unechoedSince: number | undefined;
  /** The shard owners last computed, and the live set they were computed from. */
  private ownersOf: { liveKey: string; owners: readonly string[] } | undefined;
  /** Heartbeats written by this process, numbered; and when each started (monotonic). */
  private beat = 0;
  private readonly beatStarted = new Map<number, number>();
  /** Revision of this node's record as this process last wrote it (compare-and-set base). */
  private revision: number;

  constructor(private readonly o: PlacementOptions) {
    this.gainAfter = o.clock.monotonic();
    this.revision = o.recordRevision;
  }

  async start(): Promise<void> {
    await this.heartbeat();
    if (this.replaced) throw new Error(`node id '${this.o.nodeId}' was taken over by another process while this one started`);
    await this.watch();
    // Read the current set too: the watch's initial values may arrive after we compute.
    for (const key of await listSubjectKeys(this.o.kv, `${NODE_PREFIX}>`)) {
      const entry = await this.o.kv.get(key);
      // A deleted record's key is listed too: nothing to observe.
      if (entry?.operation === 'PUT') this.observe(entry, true);
    }
    // Only now is every node's record (and claim) known: computed earlier, from
    // the first records the watch happened to deliver, this node could take
    // shards that nodes not seen yet are serving.
    this.membershipKnown = true;
    this.recompute();
    this.tick();
  }

  /**
   * Watches every node record. If the watch ever ends while this node runs,
   * it is started again: without it no other node could be judged dead.
   */
  private async watch(): Promise<void> {
    const watcher = await this.o.kv.watch({ key: `${NODE_PREFIX}>` });
    this.o.logger.debug('membership watch started', { node: this.o.nodeId });
    if (this.stopped) {
      stopWatch(watcher);
      return;
    }
    const stop = () => stopWatch(watcher);
    this.watchStop = stop;
    // A restarted watch first delivers the newest record of every node, in
    // stream order: our own may come before newer records of nodes we last saw
    // before the old watch stalled, and must not prove them dead. Only our
    // records written after the restart (updates) count (see observe()).
    const restarted = this.watchedBefore;
    this.watchedBefore = true;
    void (async () => {
      for await (const entry of watcher) {
        // A watch delivers in stream order (a restarted one first the newest record of each key).
        if (entry.revision > this.followedUpTo) this.followedUpTo = entry.revision;
        this.observe(entry, restarted && !(entry as KvWatchEntry).isUpdate);
      }
    })()
      .catch((e) => this.o.logger.warn('membership watch ended', { error: String(e) }))
      .finally(() => {
        if (this.watchStop === stop) this.watchStop = undefined;
        if (this.stopped) return;
        void this.readPastWatch();
        const again = () => {
          if (this.stopped) return;
          this.watch().catch((e) => {
            this.o.logger.debug('membership watch did not start', { node: this.o.nodeId, error: String(e) });
            this.o.clock.setTimeout(again, this.o.heartbeatMs);
          });
        };
        this.o.clock.setTimeout(again, this.o.heartbeatMs);
      });
  }

  /**
   * Node ids considered live now: this node, and every node whose latest
   * record was seen less than a lease before this node's latest heartbeat
   * that came back through the watch.
   */
  live(): string[] {
    const out: string[] = [];
    for (const [id, seen] of this.lastSeen) {
      const rec = this.records.get(id);
      if (rec && rec.status !== 'stopped' && (id === this.o.nodeId || this.watchedUpTo - seen <= this.o.leaseMs)) out.push(id);
    }
    return out;
  }

  ownedShards(): ReadonlySet<number> {
    return this.owned;
  }

  /**
   * True while this node may serve: its last heartbeat is recent enough that
   * no other node can yet consider it dead. Measured on the monotonic clock,
   * so a wall clock stepped back cannot stretch a lease.
   */
  leaseValid(): boolean {
    return !this.fenced && !this.replaced && this.o.clock.monotonic() - this.lastHeartbeatOk < this.o.leaseMs * LEASE_VALID_SHARE;
  }

  /**
   * True if this node may answer a call for `shard` now: its lease is valid,
   * and it owns the shard or is draining the calls routed to it before it let
   * the shard go. After a fence a node serves nothing until placement gives
   * it shards again: calls that reach it then may also have reached the
   * shard's new owner.
   */
  serves(shard: number): boolean {
    if (!this.leaseValid()) {
      this.checkFence();
      return false;
    }
    return this.owned.has(shard) || this.draining.has(shard);
  }

  /**
   * True if this node owns `shard` now, with a valid lease: what a call sent
   * to this node alone (a batch) needs. Unlike {@link serves}, not while
   * draining: a draining shard's release waits only for the calls already
   * running on it, so one taken up now could still be committing when the
   * next owner loads the actor. Refused, such a call was run by nobody, and
   * its caller sends it to the shard's subject.
   */
  owns(shard: number): boolean {
    return this.serves(shard) && this.owned.has(shard);
  }

  /**
   * Hands `listener` every node record this placement observes (its watch's
   * deliveries, restarts included, and its start-up read), so that another
   * part of the node need not watch `nodes.>` again: with N nodes in a
   * process, a second watch doubles the N² deliveries of their records. The
   * listener must not throw into the watch (a throw is logged and ignored).
   * Returns a function that stops the handing over.
   */
  onRecord(listener: (entry: KvEntry) => void): () => void {
    this.recordListeners.add(listener);
    return () => this.recordListeners.delete(listener);
  }

  /** @param initial a record of a restarted watch's initial values, or read at start: it shows the watch current up to nothing. */
  private observe(entry: KvEntry, initial = false): void {
    for (const listener of this.recordListeners) {
      try {
        listener(entry);
      } catch (e) {
        this.o.logger.warn('node record listener failed', { key: entry.key, error: String(e) });
      }
    }
    const id = entry.key.slice(NODE_PREFIX.length);
    if (entry.operation !== 'PUT') {
      this.lastSeen.delete(id);
      this.seenRevision.delete(id);
      this.records.delete(id);
      this.recompute();
      return;
    }
    let rec: NodeRecord;
    try {
      // Parsed once per process for every observer (frozen: read only).
      rec = parseSharedJson(entry.value) as NodeRecord;
    } catch {
      this.o.logger.warn('ignoring malformed node record', { key: entry.key });
      return;
    }
    if (id === this.o.nodeId) {
      this.observeOwn(rec, entry.revision, initial);
      return;
    }
    // A record already seen says nothing new: a restarted watch replays the
    // newest record of every node, and taking that replay for a heartbeat
    // would keep a dead node live for another lease after every restart —
    // with the watch restarting more often than that (its server cut off
    // from the stream's new leader), for good.
    if (entry.revision <= (this.seenRevision.get(id) ?? 0)) return;
    this.seenRevision.set(id, entry.revision);
    const before = this.records.get(id);
    const seen = this.lastSeen.get(id);
    this.records.set(id, rec);
    this.lastSeen.set(id, this.o.clock.monotonic());
    // A record of a live node that neither stops nor starts and keeps its
    // claims changes no input of recompute() (liveness reads only whether a
    // node is stopped): skipping it saves O(N) per record — N heartbeats a
    // period, and two status changes per node and upgrade during a rollout.
    if (before && seen !== undefined && this.watchedUpTo - seen <= this.o.leaseMs && (before.status === 'stopped') === (rec.status === 'stopped') && sameShards(before.claims, rec.claims)) return;
    // Membership or claims may have changed (a node joined, left, came back
    // or released shards): cheap to recompute, and handovers wait on it.
    this.recompute();
  }

  /** Our own record came back through the watch (or was read). */
  private observeOwn(rec: NodeRecord, revision: number, initial: boolean): void {
    if (rec.incarnation !== this.o.incarnation) {
      // Records of an earlier process with this id (written before we started)
      // are history; one written after our first heartbeat means another
      // process has taken this id over.
      if (revision > this.revision) this.takenOver(rec);
      return;
    }
    if (initial || typeof rec.beat !== 'number') return;
    // The watch is current up to when we wrote this heartbeat.
    const started = this.beatStarted.get(rec.beat);
    if (started === undefined || started <= this.watchedUpTo) return;
    this.watchedUpTo = started;
    for (const n of this.beatStarted.keys()) if (n <= rec.beat) this.beatStarted.delete(n);
    if (this.unechoedSince !== undefined && started >= this.unechoedSince) this.unechoedSince = undefined;
    // Others may have died by it, or this node may now take shards.
    this.recompute();
  }

  /** Heartbeats in flight: they run one after the other (see heartbeat()). */
  private heartbeats: Promise<void> = Promise.resolve();

  /**
   * Writes this node's record (each write builds it afresh). Writes are
   * compare-and-set on the revision of the one before, so they run one at a
   * time: a periodic heartbeat and a publish() sent together would otherwise
   * conflict with each other, and the loser's newer content would wait for the
   * next heartbeat.
   */
  private heartbeat(): Promise<void> {
    const run = this.heartbeats.then(() => this.writeRecord());
    this.heartbeats = run.catch(() => undefined);
    return run;
  }

  private async writeRecord(retried = false): Promise<void> {
    if (this.replaced) return;
    if (this.o.callPathAlive && !this.o.callPathAlive()) {
      // Calls cannot reach this node: renewing the lease would keep its shards
      // from the nodes that can serve them. Let it run out.
      this.o.logger.warn('the connection calls arrive on is not answering: not renewing the lease', { node: this.o.nodeId });
      return;
    }
    const started = this.o.clock.monotonic();
    let rec: NodeRecord;
    try {
      rec = {
        ...this.o.record(),
        claims: [...new Set([...this.owned, ...this.releasing])].sort((a, b) => a - b),
        incarnation: this.o.incarnation,
        beat: this.beat + 1,
      };
    } catch (e) {
      // A heartbeat like one JetStream refused: the lease runs on from the last good one.
      this.o.logger.warn('heartbeat failed', { node: this.o.nodeId, error: `the node's record could not be built: ${String(e)}` });
      return;
    }
    const beat = ++this.beat;
    this.beatStarted.set(beat, started);
    try {
      // Compare-and-set on the revision this process last wrote: a write that
      // fails because the record moved means another process wrote this id.
      // Waited for no longer than the beat could keep the lease: an answer
      // lost with a connection (a nats-server restart) would otherwise hold
      // the next beat back for the client's whole request timeout (5 s),
      // during which a node with a shorter lease serves nothing. A write that
      // lands after its wait ended is adopted by the next beat (recordMoved).
      this.revision = await this.o.kv.put(`${NODE_PREFIX}${this.o.nodeId}`, JSON.stringify(rec), {
        previousSeq: this.revision,
        timeout: Math.min(this.o.leaseMs * LEASE_VALID_SHARE, JETSTREAM_ACK_WAIT_MS),
      });
    } catch (e) {
      this.beatStarted.delete(beat);
      if (!isWrongLastSequence(e)) {
        this.o.logger.warn('heartbeat failed', { node: this.o.nodeId, error: String(e) });
        return;
      }
      // Our record moved: by our own write whose acknowledgement was lost (write
      // again, once, from its revision), or by another process (we stop).
      if ((await this.recordMoved()) && !retried) await this.writeRecord(true);
      return;
    }
    this.lastHeartbeatOk = started;
    if (this.unechoedSince === undefined) this.unechoedSince = started;
    this.records.set(this.o.nodeId, rec);
    this.lastSeen.set(this.o.nodeId, started);
    if (this.fenced) {
      this.fenced = false;
      this.gainAfter = started + this.o.heartbeatMs;
      this.o.logger.info('lease renewed; serving again', { node: this.o.nodeId });
      this.recompute();
    }
  }

  /**
   * A heartbeat's compare-and-set failed: the record is not at the revision
   * this process last wrote. Either our previous write was stored but its
   * acknowledgement lost (the record is ours: adopt its revision), or another
   * process wrote it.
   */
  /** @returns true if the record is still this process's to write. */
  private async recordMoved(): Promise<boolean> {
    let entry: KvEntry | null;
    try {
      entry = await this.o.kv.get(`${NODE_PREFIX}${this.o.nodeId}`);
    } catch (e) {
      this.o.logger.warn('heartbeat failed', { node: this.o.nodeId, error: String(e) });
      return false;
    }
    let rec: NodeRecord | undefined;
    try {
      rec = entry && entry.operation === 'PUT' ? (entry.json<NodeRecord>() as NodeRecord) : undefined;
    } catch {
      rec = undefined;
    }
    if (entry && (rec === undefined || rec.incarnation === this.o.incarnation)) {
      // Our own write whose acknowledgement was lost, or a deletion (an
      // earlier process leaving): nobody else runs under this id. Write on
      // from this revision.
      this.revision = entry.revision;
      return true;
    }
    if (!entry) {
      this.revision = 0;
      return true;
    }
    this.takenOver(rec!);
    return false;
  }

  /** Another process writes this node id's record: stop serving for good. */
  private takenOver(by: NodeRecord): void {
    if (this.replaced) return;
    this.replaced = true;
    this.o.logger.error('another process took over this node id: no longer serving', { node: this.o.nodeId, byPid: by.pid, byHost: by.host });
    this.releaseAll();
    this.stopTimers();
    try {
      this.o.onReplaced?.(by);
    } catch (e) {
      this.o.logger.error('onReplaced failed', { error: String(e) });
    }
  }

  private tick(): void {
    if (this.stopped || this.replaced) return;
    this.timer = this.o.clock.setTimeout(() => {
      // First: a process that was paused (SIGSTOP, a long GC, a frozen VM)
      // must notice that its lease ran out before it renews it, or it would
      // keep answering from memory for shards another node has taken since.
      // Every step is guarded, and the next tick armed whatever happens: an
      // error escaping here would end the heartbeats for good.
      const failed = (e: unknown) => this.o.logger.error('placement tick failed', { node: this.o.nodeId, error: String(e) });
      void Promise.resolve()
        .then(() => this.checkFence())
        .then(() => this.heartbeat())
        .catch(failed)
        .then(() => {
          this.checkFence();
          this.checkWatch();
          void this.readPastWatch();
          this.recompute();
        })
        .catch(failed)
        .finally(() => this.tick());
    }, this.o.heartbeatMs);
  }

  /**
   * Restarts the membership watch if it stopped delivering while writes still
   * succeed: a heartbeat JetStream acknowledged has not come back through it
   * within half a lease (at least two heartbeats). A KV watch is an ordered
   * consumer with one replica, on one nats-server; when that server dies the
   * NATS client notices only after two missed idle heartbeats of 30 s each.
   * Until then this node judges nobody and, after a fence, takes back no
   * shard (it waits to see its renewal through the watch): on a 3-server
   * cluster both nodes once served nothing for a minute after a server died.
   */
  private checkWatch(): void {
    if (this.stopped || this.unechoedSince === undefined || this.watchStop === undefined) return;
    const waited = this.o.clock.monotonic() - this.unechoedSince;
    if (waited < Math.max(2 * this.o.heartbeatMs, this.o.leaseMs / 2)) return;
    this.o.logger.warn('membership watch stalled: restarting it', { node: this.o.nodeId, waitedMs: Math.round(waited) });
    this.unechoedSince = undefined;
    const stop = this.watchStop;
    this.watchStop = undefined;
    // Ending the iteration makes watch() start a new one, on a new consumer.
    stop();
  }

  /**
   * While no watch runs (it stalled and is being started again), follows the
   * node records by reading them from the stream, in its order, from where the
   * last watch left off: one message get per record, answered by the stream's
   * leader. A watch is a consumer, and creating one needs the cluster's meta
   * leader as well: with the server that led both cut off, a heartbeat is
   * stored again once the stream has a new leader, but no watch starts until
   * the meta leader is elected too, seconds later — and until its renewal
   * comes back through a watch, a node takes no shard. Read this way, the
   * records prove deaths and renewals as the watch's would: in stream order,
   * so a heartbeat of ours read back shows every record stored before it.
   */
  private async readPastWatch(): Promise<void> {
    const kv = this.o.kv;
    if (!(kv instanceof Bucket) || this.reading || this.watchStop !== undefined || this.stopped || this.replaced || !this.membershipKnown) return;
    this.reading = true;
    try {
      const subject = kv.fullKeyName(`${NODE_PREFIX}>`);
      // Bounded per call (one tick's worth of records, a few times over): the next tick reads on.
      for (let n = 0; n < READ_PAST_WATCH_MAX + 4 * this.records.size && this.watchStop === undefined && !this.stopped; n++) {
        // The first record stored after followedUpTo. nats-server's message get takes
        // `next_by_subj` (a wildcard allowed); nats.js types it for direct gets only.
        const next = { seq: this.followedUpTo + 1, next_by_subj: subject } as unknown as MsgRequest;
        const message = await (this.o.recordReader ?? kv.jsm).streams.getMessage(kv.stream, next);
        if (!message || this.watchStop !== undefined) return;
        if (message.seq > this.followedUpTo) this.followedUpTo = message.seq;
        this.observe(kv.smToEntry(message));
      }
    } catch (e) {
      this.o.logger.debug('reading the node records while the membership watch is down failed', { node: this.o.nodeId, error: String(e) });
    } finally {
      this.reading = false;
    }
  }

  /** Stops serving everything if the lease ran out; see {@link leaseValid}. */
  checkFence(): void {
    if (!this.fenced && !this.replaced && !this.leaseValid()) {
      this.fenced = true;
      this.regaining = true;
      this.o.logger.warn('lease expired: no longer serving any shard until the heartbeat is renewed', { node: this.o.nodeId });
      this.releaseAll();
    }
  }

  /** Gives up every shard at once (fence, take-over): nothing is drained, nothing more is answered. */
  private releaseAll(): void {
    this.draining.clear();
    this.setOwned(new Set(), { drain: false });
  }

  recompute(): void {
    if (this.stopped || this.fenced || this.replaced || !this.membershipKnown) return;
    const live = this.live();
    // Runs on every record seen; the owners change only when the live set does.
    const liveKey = live.join('\n');
    if (liveKey !== this.ownersOf?.liveKey) this.ownersOf = { liveKey, owners: assignShards(live, this.o.shards) };
    const owners = this.ownersOf.owners;
    // Shards other live nodes may still be serving: wait until they let go.
    const claimed = new Set<number>();
    for (const id of live) {
      if (id === this.o.nodeId) continue;
      for (const s of this.records.get(id)?.claims ?? []) claimed.add(s);
    }
    const mayGain = this.watchedUpTo >= this.gainAfter;
    const mine = new Set<number>();
    owners.forEach((owner, shard) => owner === this.o.nodeId && (this.owned.has(shard) || (mayGain && !claimed.has(shard))) && mine.add(shard));
    this.setOwned(mine, { drain: true });
  }

  /**
   * @param drain whether shards given up still answer the calls already
   *   routed to them (a voluntary handover) or answer nothing more (a fence).
   */
  private setOwned(next: Set<number>, { drain }: { drain: boolean }): void {
    if (next.size === this.owned.size && [...next].every((s) => this.owned.has(s))) return;
    const released = [...this.owned].filter((s) => !next.has(s));
    for (const s of released) {
      this.releasing.add(s);
      if (drain) this.draining.add(s);
    }
    for (const s of next) {
      this.releasing.delete(s);
      this.draining.delete(s);
    }
    this.owned = next;
    if (this.regaining && next.size > 0) {
      // Renewing the lease is not enough to serve: shards are taken once the records show who is live.
      this.regaining = false;
      this.o.logger.info('shards taken after the fence; serving', { node: this.o.nodeId, shards: next.size });
    }
    let quiet: void | Promise<void> = undefined;
    try {
      quiet = this.o.onOwnedChange(next);
    } catch (e) {
      this.o.logger.error('applying shard ownership failed', { error: String(e) });
    }
    // Announce the new claims once the released shards are quiet, or once no
    // call on them can still be committing (see releaseWaitMs).
    void Promise.race([Promise.resolve(quiet), new Promise<void>((r) => this.o.clock.setTimeout(r, this.releaseWaitMs()))])
      .catch(() => undefined)
      .then(() => {
        for (const s of released) {
          if (this.owned.has(s)) continue;
          this.releasing.delete(s);
          this.draining.delete(s);
        }
        if (!this.stopped) return this.heartbeat();
      })
      .catch((e) => this.o.logger.error('announcing released shards failed', { node: this.o.nodeId, error: String(e) }));
  }

  /**
   * How long a release waits for the calls it gave up to finish before it is
   * announced anyway: past the store's write timeout, plus a lease, no write
   * of theirs is still waiting; a call still running then is stuck, not
   * committing. Two leases at least.
   */
  private releaseWaitMs(): number {
    return Math.max(2 * this.o.leaseMs, (this.o.writeTimeoutMs ?? 0) + this.o.leaseMs);
  }

  /** Publishes the record now (e.g. after an upgrade), outside the heartbeat rhythm. */
  async publish(): Promise<void> {
    await this.heartbeat();
  }

  private stopTimers(): void {
    if (this.timer !== undefined) this.o.clock.clearTimeout(this.timer);
    this.timer = undefined;
    this.watchStop?.();
  }

  /** Leaves: releases every shard, then removes this node's record so its shards move at once. */
  async stop(options: { leave: boolean }): Promise<void> {
    this.stopped = true;
    this.stopTimers();
    if (!options.leave || this.replaced) return; // a replaced node's record belongs to its successor
    if (this.owned.size > 0) {
      // Calls already accepted finish before others may take the shards.
      this.owned = new Set();
      try {
        await Promise.race([Promise.resolve(this.o.onOwnedChange(this.owned)), new Promise<void>((r) => this.o.clock.setTimeout(r, this.releaseWaitMs()))]);
      } catch {
        // Nothing more to wait for.
      }
    }
    try {
      // Only the record this process wrote: a successor's is not ours to delete.
      await this.o.kv.delete(`${NODE_PREFIX}${this.o.nodeId}`, { previousSeq: this.revision });
    } catch {
      // Already gone, taken over, or NATS closed: others will see the lease run out.
    }
  }
}
