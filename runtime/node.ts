/**
 * A node: one process of a service. It connects to NATS, hosts the service's
 * actor types at its current version of each, takes the shards placement
 * gives it, and answers calls through the upgrade layer.
 *
 * @module
 */
import { hostname } from 'node:os';
import { headers as natsHeaders, type Msg, type MsgHdrs, type NatsConnection, type Subscription } from '@nats-io/transport-node';
import { Kvm, type KV, type KvEntry } from '@nats-io/kv';
import { ErrorCode, MoltError, toMoltError } from './errors.ts';
import type { ServiceDefinition } from './define/service.ts';
import { checkVersionChain } from './define/service.ts';
import type { AnyActorVersion } from './define/version.ts';
import { createSuperjsonCodec, fixedHeaders, type Codec } from './wire/codec.ts';
import { HeaderBlock } from './wire/header-block.ts';
import {
  bucketNames,
  decodeKey,
  encodeKey,
  DEFAULT_MAX_PAYLOAD,
  DEFAULT_SHARDS,
  Header,
  PROTOCOL_VERSION,
  queueGroup,
  shardOf,
  shardSubscription,
} from './wire/protocol.ts';
import { createIdGenerator, createJsonLogger, systemClock, type Clock, type IdGenerator, type Logger } from './env.ts';
import { resolveConnection, type NatsTarget } from './nats/connect.ts';
import { ActorHost, type HostStats, type TransformFailure } from './host/actor-host.ts';
import { createKvStore, createMemoryStore, type StateStore } from './host/store.ts';
import { NODE_PREFIX, Placement, type NodeRecord } from './host/placement.ts';
import { routeFor, servedVersions } from './upgrade/layer.ts';

/** Options of {@link createNode}. Only `service` and `nats` are required; timings default for a LAN. */
export interface NodeOptions {
  /** The service to run. */
  service: ServiceDefinition;
  /** A NATS connection, or where to connect (then the node owns and closes it). */
  nats: NatsTarget;
  /** Stable id of this node (default: host-pid-random). Reuse it across restarts to resume upgrades. */
  nodeId?: string;
  /** Native version per actor type at start (default: the newest version in the service). */
  versions?: Record<string, number>;
  /** Shards of the service (default 64; every node and client must agree). */
  shards?: number;
  /** Drop actors idle this long from memory (default 60 000 ms). */
  passivateAfterMs?: number;
  /** Heartbeat period (default 1000 ms). */
  heartbeatMs?: number;
  /** A node silent this long is dead and its shards move (default 5000 ms). */
  leaseMs?: number;
  /** Largest accepted call body in bytes (default 256 KiB). */
  maxPayload?: number;
  /** Calls held per type while it upgrades (default 10 000). */
  holdLimit?: number;
  /** Replicas of the JetStream buckets (1; use 3 on a 3-server cluster). */
  replicas?: number;
  /** Fingerprints of the publisher keys this node's upgrade manager trusts, published in its record (`keyFingerprint`). */
  trusts?: readonly string[];
  codec?: Codec;
  clock?: Clock;
  logger?: Logger;
  ids?: IdGenerator;
}

/** How an in-place upgrade of one type on one node went. */
export interface UpgradeResult {
  /** Resident actors carried to the new version. */
  transformed: number;
  /** Resident actors whose TF failed (they keep their old state and answer TransformFailed). */
  failed: number;
  /** When the type switched, on this node's clock (absent when there was nothing to do). */
  finishedAt?: number;
}

/** What `status()` reports about one type on this node. */
export interface TypeStatus {
  current: number;
  known: number[];
  served: number[];
  resident: number;
  stats: HostStats;
  transformFailures: TransformFailure[];
  /** Set when the type was rolled back on this node from this version. */
  rolledBackFrom?: number;
}

/** A running node. */
export interface MoltNode {
  readonly id: string;
  readonly service: string;
  readonly connection: NatsConnection;
  /** Makes a newer version of a type known: its future SO serves callers of it at once. */
  loadVersion(def: AnyActorVersion): void;
  /** Upgrades a type in place to `version` (current + 1; loaded first if `def` is given). */
  upgrade(type: string, version: number, def?: AnyActorVersion): Promise<UpgradeResult>;
  /**
   * Rolls a type back in place to `version` (current − 1), through the current
   * version's `down` transform. On a node already at `version`, only marks the
   * type rolled back, so state written by the newer version is carried down when loaded.
   */
  downgrade(type: string, version: number): Promise<{ transformed: number; failed: number }>;
  /** Forgets that a type was rolled back (its newer version was published again). */
  clearRollback(type: string): void;
  /** Stops serving a version of a type (its SOs are dropped). */
  retire(type: string, version: number): void;
  /** @internal Set by the upgrade manager: whether an upgrade of `type` to `version` may still arrive (undefined: assume it may). */
  expectUpgrades(predicate: ((type: string, version: number) => boolean) | undefined): void;
  /** Versions, residents, counters and failures per type. */
  status(): { id: string; service: string; owned: number[]; types: Record<string, TypeStatus> };
  /** The shards this node serves now. */
  ownedShards(): number[];
  /** Node ids currently live, as this node sees them. */
  liveNodes(): string[];
  /** The upgrade database bucket (for the upgrade manager and tools). */
  readonly udb: KV;
  /** Sets the status published in this node's UDB record. */
  setStatus(status: NodeRecord['status'], lastError?: string): Promise<void>;
  /** Leaves the service (its shards move at once), drains in-flight calls, and disconnects if it owns the connection. */
  stop(): Promise<void>;
}

/** A store that refuses writes (retryable `Unavailable`, nothing written) while `mayWrite()` is false. */
function leaseGuarded(store: StateStore, mayWrite: () => boolean): StateStore {
  return {
    ...store,
    load: (key) => store.load(key),
    save(key, bytes, revision) {
      if (!mayWrite()) {
        return Promise.reject(new MoltError(ErrorCode.Unavailable, 'this node lost its placement lease: nothing was written; retry (another node serves this actor now)'));
      }
      return store.save(key, bytes, revision);
    },
  };
}

/**
 * Refuses to start a second process under a node id that a live process is
 * using: both would heartbeat one record, claim the same shards and serve the
 * same actors (compare-and-set keeps writes safe, but reads could be stale).
 * A record recent enough to belong to a live process is watched for a few of
 * its heartbeats; if it moves, its owner is alive. A node restarted right
 * after a crash waits those heartbeats once, then starts.
 */
async function ensureIdFree(udb: KV, nodeId: string, previous: KvEntry | null, timing: { heartbeatMs: number; leaseMs: number; clock: Clock }): Promise<void> {
  if (!previous || previous.operation !== 'PUT') return;
  let record: NodeRecord;
  try {
    record = previous.json<NodeRecord>();
  } catch {
    return; // a malformed record belongs to nobody
  }
  const { heartbeatMs, leaseMs, clock } = timing;
  if (record.status === 'stopped' || clock.now() - record.heartbeatAt > leaseMs) return;
  await new Promise<void>((resolve) => clock.setTimeout(resolve, Math.ceil(heartbeatMs * 2.5)));
  const now = await udb.get(`${NODE_PREFIX}${nodeId}`).catch(() => null);
  if (!now || now.operation !== 'PUT' || now.revision === previous.revision) return;
  let current: NodeRecord | undefined;
  try {
    current = now.json<NodeRecord>();
  } catch {
    return;
  }
  if (current.status === 'stopped') return;
  throw new MoltError(
    ErrorCode.OperationRefused,
    `node id '${nodeId}' is in use: process ${current.pid} on host '${current.host}' is running under it and heartbeating its record. Stop that process, or start this one with another id (--id)`,
    { retryable: false, data: { nodeId, pid: current.pid, host: current.host } },
  );
}

/** Starts a node. Resolves once it is serving. */
export async function createNode(options: NodeOptions): Promise<MoltNode> {
  const clock = options.clock ?? systemClock;
  const codec = options.codec ?? createSuperjsonCodec();
  const ids = options.ids ?? createIdGenerator();
  const nodeId = options.nodeId ?? `${hostname().split('.')[0]}-${process.pid}-${ids.next().slice(0, 6)}`;
  if (!/^[A-Za-z0-9_-]{1,128}$/.test(nodeId)) {
    throw new MoltError(ErrorCode.InvalidDefinition, `node id '${nodeId}' may contain only letters, digits, '_' and '-'`);
  }
  const logger = (options.logger ?? createJsonLogger()).child({ node: nodeId, service: options.service.name });
  const shards = options.shards ?? DEFAULT_SHARDS;
  const maxPayload = options.maxPayload ?? DEFAULT_MAX_PAYLOAD;
  const service = options.service;

  const { nc, owned: ownsConnection } = await resolveConnection(options.nats);
  const kvm = new Kvm(nc);
  const names = bucketNames(service.name);
  const replicas = options.replicas ?? 1;
  // Replicated state is read from the stream leader (allow_direct off): a direct
  // get may be answered by a replica that lags, and an actor loaded from it
  // would answer reads from an older state.
  const stateKv = await kvm.create(names.state, replicas > 1 ? { history: 1, replicas, allow_direct: false } : { history: 1, replicas });
  const udb = await kvm.create(names.udb, { history: 5, replicas });

  // Resume where this node id left off (e.g. killed mid-upgrade): never run a
  // type older than this node last ran it, if we have the code for that version.
  const previous = await udb.get(`${NODE_PREFIX}${nodeId}`).catch(() => null);
  try {
    await ensureIdFree(udb, nodeId, previous, { heartbeatMs: options.heartbeatMs ?? 1000, leaseMs: options.leaseMs ?? 5000, clock });
  } catch (e) {
    if (ownsConnection) await nc.close().catch(() => undefined);
    throw e;
  }
  const resumed: Record<string, number> = {};
  if (previous && previous.operation === 'PUT') {
    try {
      const last = previous.json<NodeRecord>();
      Object.assign(resumed, last.versions ?? {});
      // Killed mid-upgrade: some actors may already be stored at the target
      // version, so this node resumes there (the rest follow lazily).
      for (const [type, target] of Object.entries(last.upgrading ?? {})) resumed[type] = Math.max(resumed[type] ?? 0, target);
    } catch {
      // A malformed record is ignored: the configured versions apply.
    }
  }

  const hosts = new Map<string, ActorHost>();
  // A node whose lease ran out writes nothing more: another node may own these
  // actors already (placement.leaseValid(); `placement` exists before any call).
  const kvStore = createKvStore(stateKv, nc);
  const durableStore = leaseGuarded(kvStore, () => placement.leaseValid());
  for (const type of service.types) {
    checkVersionChain(type.name, type.versions);
    const newest = type.versions[type.versions.length - 1]!.version;
    let current = options.versions?.[type.name] ?? newest;
    const last = resumed[type.name];
    if (last !== undefined && last > current && last <= newest) current = last;
    hosts.set(
      type.name,
      new ActorHost({
        types: type.versions.filter((v) => v.version <= Math.max(current, newest)),
        current,
        volatile: type.options.volatile ?? false,
        passivateAfterMs: type.options.passivateAfterMs ?? options.passivateAfterMs ?? 60_000,
        holdLimit: options.holdLimit ?? 10_000,
        store: type.options.volatile ? createMemoryStore() : durableStore,
        codec,
        clock,
        logger,
      }),
    );
  }

  let status: NodeRecord['status'] = 'running';
  let lastError: string | undefined;
  const startedAt = clock.now();
  /** Types being upgraded now, and their target version (published in the node record). */
  const upgradingTo: Record<string, number> = {};
  const record = (): NodeRecord => {
    const versions: Record<string, number> = {};
    const known: Record<string, number[]> = {};
    const stats: Record<string, number> = { calls: 0, failed: 0, disallowed: 0, transformFailures: 0 };
    // Per type as well: a rollout's health gate must judge the type it upgrades, not the node.
    const typeStats: Record<string, Record<string, number>> = {};
    for (const [name, host] of hosts) {
      versions[name] = host.currentVersion;
      known[name] = host.knownVersions;
      const { calls, failed, disallowed, transformFailures } = host.stats;
      typeStats[name] = { calls, failed, disallowed, transformFailures };
      stats.calls! += calls;
      stats.failed! += failed;
      stats.disallowed! += disallowed;
      stats.transformFailures! += transformFailures;
    }
    const rec: NodeRecord = { id: nodeId, service: service.name, host: hostname(), pid: process.pid, versions, known, status, startedAt, heartbeatAt: clock.now(), stats, typeStats };
    if (lastError !== undefined) rec.lastError = lastError;
    if (Object.keys(upgradingTo).length > 0) rec.upgrading = { ...upgradingTo };
    if (options.trusts) rec.trusts = [...options.trusts];
    return rec;
  };

  // ---- the request path -------------------------------------------------

  const subscriptions = new Map<number, Subscription>();
  // Calls accepted and not yet answered, and who waits for there to be none.
  let inflight = 0;
  let whenQuiet: Array<() => void> = [];
  const quiet = (): Promise<void> => (inflight === 0 ? Promise.resolve() : new Promise((resolve) => whenQuiet.push(resolve)));

  function replyHeaders(ok: boolean, callerVersion: string | undefined, nodeVersion: number | undefined, corr: string | undefined): MsgHdrs {
    const h = natsHeaders();
    h.set(Header.Status, ok ? 'ok' : 'error');
    h.set(Header.Protocol, String(PROTOCOL_VERSION));
    if (callerVersion) h.set(Header.Version, callerVersion);
    if (nodeVersion !== undefined) h.set(Header.NodeVersion, String(nodeVersion));
    if (corr) h.set(Header.Correlation, corr);
    return h;
  }

  // An ok reply without a correlation id carries one of a handful of header
  // blocks (caller version × node version, both validated integers): each is
  // built and encoded once instead of once per reply.
  const okReplyHeaders = new Map<string, MsgHdrs>();
  function okHeaders(callerVersion: string | undefined, nodeVersion: number | undefined): MsgHdrs {
    const cacheKey = `${callerVersion ?? ''} ${nodeVersion ?? ''}`;
    let h = okReplyHeaders.get(cacheKey);
    if (!h) {
      const entries: Array<[string, string]> = [
        [Header.Status, 'ok'],
        [Header.Protocol, String(PROTOCOL_VERSION)],
      ];
      if (callerVersion) entries.push([Header.Version, callerVersion]);
      if (nodeVersion !== undefined) entries.push([Header.NodeVersion, String(nodeVersion)]);
      h = fixedHeaders(entries);
      if (okReplyHeaders.size < 64) okReplyHeaders.set(cacheKey, h);
    }
    return h;
  }

  function respond(msg: Msg, headers: HeaderBlock | undefined, ok: boolean, body: unknown, callerVersion: string | undefined, nodeVersion: number | undefined): void {
    if (!msg.reply) return;
    let bytes: Uint8Array;
    try {
      bytes = codec.encode(body);
    } catch (e) {
      ok = false;
      bytes = codec.encode(new MoltError(ErrorCode.ActorFailed, `the reply could not be encoded: ${(e as Error).message}`).toWire());
    }
    const corr = headers?.get(Header.Correlation) || undefined;
    const h = ok && corr === undefined ? okHeaders(callerVersion, nodeVersion) : replyHeaders(ok, callerVersion, nodeVersion, corr);
    try {
      msg.respond(bytes, { headers: h });
    } catch (e) {
      logger.debug('could not send reply', { error: String(e) });
    }
  }

  function fail(msg: Msg, headers: HeaderBlock | undefined, error: MoltError, callerVersion?: string, nodeVersion?: number): void {
    respond(msg, headers, false, error.toWire(), callerVersion, nodeVersion);
  }

  function onMessage(msg: Msg): void {
    // molt.<service>.<type>.<shard>.<key>
    const tokens = msg.subject.split('.');
    const headers = HeaderBlock.of(msg);
    const versionHeader = headers?.get(Header.Version) || undefined;
    if (!placement.leaseValid()) {
      placement.checkFence();
      return fail(msg, headers, new MoltError(ErrorCode.Unavailable, 'this node lost its placement lease and is handing over its shards; retry', { data: { node: nodeId } }), versionHeader);
    }
    if (tokens.length !== 5) return fail(msg, headers, new MoltError(ErrorCode.InvalidHeader, `subject '${msg.subject}' is not molt.<service>.<type>.<shard>.<key>`));
    const host = hosts.get(tokens[2]!);
    if (!host) {
      return fail(msg, headers, new MoltError(ErrorCode.UnknownType, `service '${service.name}' has no actor type '${tokens[2]}'; it has: ${[...hosts.keys()].join(', ')}`, { data: { type: tokens[2] } }), versionHeader);
    }
    if (versionHeader === undefined || !/^[1-9][0-9]{0,8}$/.test(versionHeader)) {
      return fail(msg, headers, new MoltError(ErrorCode.InvalidVersion, `header ${Header.Version} must be the caller's interface version, a positive integer; got ${versionHeader === undefined ? 'nothing' : JSON.stringify(versionHeader.slice(0, 20))}`), versionHeader, host.currentVersion);
    }
    const version = Number(versionHeader);
    const message = headers?.get(Header.Message);
    if (!message) return fail(msg, headers, new MoltError(ErrorCode.InvalidHeader, `header ${Header.Message} (the message name) is missing`), versionHeader, host.currentVersion);
    if (msg.data.length > maxPayload) {
      return fail(msg, headers, new MoltError(ErrorCode.PayloadTooLarge, `body is ${msg.data.length} bytes; this node accepts at most ${maxPayload}`, { data: { size: msg.data.length, limit: maxPayload } }), versionHeader, host.currentVersion);
    }
    let key: string;
    try {
      key = decodeKey(tokens[4]!);
    } catch (e) {
      return fail(msg, headers, toMoltError(e), versionHeader, host.currentVersion);
    }
    const expected = shardOf(tokens[4]!, shards);
    if (String(expected) !== tokens[3]) {
      return fail(msg, headers, new MoltError(ErrorCode.InvalidHeader, `key '${tokens[4]}' belongs to shard ${expected} of ${shards}, but was sent to shard ${tokens[3]}: does the caller use the service's shard count (${shards})?`, { data: { shards, expected } }), versionHeader, host.currentVersion);
    }
    let request: unknown;
    if (msg.data.length === 0) request = {};
    else {
      try {
        request = codec.decode(msg.data);
      } catch (e) {
        return fail(msg, headers, new MoltError(ErrorCode.MalformedBody, `body is not a superjson document: ${(e as Error).message}`), versionHeader, host.currentVersion);
      }
      if (typeof request !== 'object' || request === null || Array.isArray(request)) {
        return fail(msg, headers, new MoltError(ErrorCode.MalformedBody, 'body must encode an object (the message payload)'), versionHeader, host.currentVersion);
      }
    }
    inflight++;
    host.dispatch(key, version, message, request, (error, reply) => {
      if (error) fail(msg, headers, error, versionHeader, host.currentVersion);
      else respond(msg, headers, true, reply, versionHeader, host.currentVersion);
      if (--inflight === 0 && whenQuiet.length > 0) {
        const waiting = whenQuiet;
        whenQuiet = [];
        for (const wake of waiting) wake();
      }
    });
  }

  /** Answers a call whose headers cannot even be parsed (InvalidHeader), touching nothing else of it. */
  function failUnreadable(msg: Msg, e: unknown): void {
    logger.debug('unreadable call', { subject: msg.subject.slice(0, 200), error: String(e) });
    if (!msg.reply) return;
    try {
      const error = new MoltError(ErrorCode.InvalidHeader, `the call's header block cannot be parsed: ${e instanceof Error ? e.message : String(e)}`);
      msg.respond(codec.encode(error.toWire()), { headers: replyHeaders(false, undefined, undefined, undefined) });
    } catch {
      // Nothing more can be done for it.
    }
  }

  /** Resolves once the shards given up are quiet: no call accepted for them is still running. */
  function applyOwnership(owned: ReadonlySet<number>): Promise<void> {
    const draining: Array<Promise<unknown>> = [];
    for (const [shard, sub] of subscriptions) {
      if (!owned.has(shard)) {
        // Drain, not unsubscribe: calls the server already routed here are
        // still answered instead of being dropped (their callers would time out).
        draining.push(sub.drain().catch(() => undefined));
        subscriptions.delete(shard);
        for (const host of hosts.values()) host.evict((key) => shardOf(encodeKey(key), shards) === shard);
      }
    }
    // Actors of shards this node gains may have changed on another node since
    // this one last held them in memory: reload them before answering.
    const gained = new Set([...owned].filter((shard) => !subscriptions.has(shard)));
    if (gained.size > 0) {
      for (const host of hosts.values()) host.invalidate((key) => gained.has(shardOf(encodeKey(key), shards)));
    }
    for (const shard of owned) {
      if (!subscriptions.has(shard)) {
        subscriptions.set(
          shard,
          nc.subscribe(shardSubscription(service.name, shard), {
            queue: queueGroup(service.name),
            callback: (err, msg) => {
              if (err) return;
              // The NATS client calls this inside its socket reader: anything
              // thrown here would stop the reader and leave the node deaf.
              // (Molt reads headers leniently, see wire/header-block.ts, but
              // nats.js's own accessors still throw on some hostile frames.)
              try {
                onMessage(msg);
              } catch (e) {
                failUnreadable(msg, e);
              }
            },
          }),
        );
      }
    }
    logger.debug('shards changed', { owned: owned.size });
    if (draining.length === 0) return Promise.resolve();
    // Placement announces the release only after this: until then another node
    // must not take these shards, or two nodes could write one actor at once.
    return Promise.all(draining).then(async () => {
      await quiet();
    });
  }

  const placement = new Placement({
    kv: udb,
    nodeId,
    shards,
    heartbeatMs: options.heartbeatMs ?? 1000,
    leaseMs: options.leaseMs ?? 5000,
    clock,
    logger,
    record,
    onOwnedChange: applyOwnership,
  });
  await placement.start();
  await nc.flush();
  logger.info('node started', { versions: record().versions, shards: placement.ownedShards().size });

  function hostOf(type: string): ActorHost {
    const host = hosts.get(type);
    if (!host) throw new MoltError(ErrorCode.UnknownType, `service '${service.name}' has no actor type '${type}'`);
    return host;
  }

  let stopping: Promise<void> | undefined;
  const node: MoltNode = {
    id: nodeId,
    service: service.name,
    connection: nc,
    udb,
    loadVersion(def) {
      hostOf(def.type).addVersion(def);
      void placement.publish();
    },
    async upgrade(type, version, def) {
      const host = hostOf(type);
      if (def) host.addVersion(def);
      status = 'upgrading';
      // Durably record the target before any actor is written at it: a node
      // restarted after a crash must never run a version older than its state.
      upgradingTo[type] = version;
      await placement.publish();
      try {
        const result = await host.upgrade(version);
        // Taken before the record below announces the new version: from then on
        // other nodes may act on this upgrade having ended (a rolling schedule
        // starts the next node), so records of it must not say it ended later.
        const finishedAt = clock.now();
        logger.info('type upgraded', { type, version, ...result });
        return { ...result, finishedAt };
      } catch (e) {
        lastError = (e as Error).message;
        throw e;
      } finally {
        delete upgradingTo[type];
        status = 'running';
        await placement.publish();
      }
    },
    async downgrade(type, version) {
      const host = hostOf(type);
      if (host.currentVersion === version) {
        host.markRolledBack(version + 1);
        void placement.publish();
        return { transformed: 0, failed: 0 };
      }
      status = 'upgrading';
      await placement.publish();
      try {
        const result = await host.downgrade(version);
        logger.info('type rolled back', { type, version, ...result });
        return result;
      } catch (e) {
        lastError = (e as Error).message;
        throw e;
      } finally {
        status = 'running';
        await placement.publish();
      }
    },
    clearRollback(type) {
      hostOf(type).clearRollback();
      void placement.publish();
    },
    retire(type, version) {
      hostOf(type).retire(version);
    },
    expectUpgrades(predicate) {
      for (const [name, host] of hosts) host.upgradeMayArrive = predicate && ((version) => predicate(name, version));
    },
    status() {
      const types: Record<string, TypeStatus> = {};
      for (const [name, host] of hosts) {
        const tv = host.typeVersions;
        types[name] = {
          current: host.currentVersion,
          known: host.knownVersions,
          served: servedVersions(tv).filter((v) => routeFor(tv, v) !== undefined),
          resident: host.residentCount,
          stats: { ...host.stats },
          transformFailures: [...host.transformFailures.values()],
          ...(host.rolledBackFrom !== undefined ? { rolledBackFrom: host.rolledBackFrom } : {}),
        };
      }
      return { id: nodeId, service: service.name, owned: [...placement.ownedShards()].sort((a, b) => a - b), types };
    },
    ownedShards: () => [...placement.ownedShards()].sort((a, b) => a - b),
    liveNodes: () => placement.live().sort(),
    async setStatus(next, error) {
      status = next;
      lastError = error;
      await placement.publish();
    },
    stop() {
      stopping ??= (async () => {
        status = 'stopped';
        await placement.stop({ leave: true });
        await Promise.allSettled([...subscriptions.values()].map((sub) => sub.drain()));
        subscriptions.clear();
        await quiet();
        for (const host of hosts.values()) {
          await host.drain();
          host.stop();
        }
        kvStore.close();
        if (ownsConnection) await nc.drain().catch(() => undefined);
        logger.info('node stopped');
      })();
      return stopping;
    },
  };
  return node;
}
