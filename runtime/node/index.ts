/**
 * A node: one process of a service. It connects to NATS, hosts the service's
 * actor types at its current version of each, takes the shards placement
 * gives it, and answers calls through the upgrade layer.
 *
 * {@link createNode} wires the parts, each in this folder: its connections
 * (connections.ts), one actor host per type (hosts.ts), the request path
 * (edge.ts), the shard subscriptions placement asks for (shards.ts), the
 * heartbeat record (record.ts), discovery, caller evidence, and the verbs
 * that change its versions (verbs.ts; those only the upgrade manager uses
 * are reached through internals.ts, not `MoltNode`).
 *
 * @module
 */
import { hostname } from 'node:os';
import type { NatsConnection } from '@nats-io/transport-node';
import type { KvEntry } from '@nats-io/kv';
import { jetstreamManager } from '@nats-io/jetstream';
import type { TracerProvider } from '@opentelemetry/api';
import { ErrorCode, MoltError } from '../errors.ts';
import type { ServiceDefinition } from '../define/service.ts';
import type { AnyActorVersion } from '../define/version.ts';
import { createSuperjsonCodec, type Codec } from '../wire/codec.ts';
import { batchSubject, DEFAULT_MAX_PAYLOAD, DEFAULT_SHARDS } from '../wire/protocol.ts';
import { createIdGenerator, createJsonLogger, systemClock, type Clock, type IdGenerator, type Logger } from '../env.ts';
import { withDefaultInboxPrefix, type NatsTarget } from '../nats/connect.ts';
import { DEFAULT_MAILBOX_LIMIT } from '../host/actor-host.ts';
import { createKvStore, DEFAULT_WRITE_TIMEOUT_MS, type StateStore } from '../host/store.ts';
import { NODE_PREFIX, Placement } from '../host/placement.ts';
import { openNodeBuckets } from '../udb/buckets.ts';
import { Udb } from '../udb/index.ts';
import type { MetricsOptions, MetricsServer } from '../observe/metrics.ts';
import { tracerOf } from '../observe/trace.ts';
import { createEdge } from './edge.ts';
import { probeCallPath } from './liveness.ts';
import { ensureIdFree, readNodeRecord } from './identity.ts';
import { attachInternals } from './internals.ts';
import { createReplyCheck, nodeInboxPrefix, ownInboxes } from './reply-subject.ts';
import { buildNodeRecord, versionsToResume, type NodeRecordState } from './record.ts';
import { discoveredTypes, startDiscovery } from './discovery.ts';
import { checkLabels } from './labels.ts';
import { CallerEvidence, DEFAULT_EVIDENCE_EVERY_MS } from './callers.ts';
import { openNodeConnections } from './connections.ts';
import { createHosts, typeStatus, type TypeStatus } from './hosts.ts';
import { ShardSubscriptions } from './shards.ts';
import { nodeVerbs, type UpgradeResult } from './verbs.ts';

export type { TypeStatus } from './hosts.ts';
export type { UpgradeResult } from './verbs.ts';

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
  /** Calls waiting per actor before more are refused with `Overloaded` (default 1000). */
  mailboxLimit?: number;
  /** Calls admitted and unanswered on this node before more are refused with `Overloaded` (default 20 000). */
  maxInflight?: number;
  /**
   * How long (default 10 minutes) and how many (default 64, newest kept) idempotency
   * keys of state-changing calls each actor remembers with its state: a call sent
   * again with a remembered key gets the first reply and is not run again.
   * `checkpointEvery` (default 16): how many remembered calls an actor's state
   * record holds, at most, beyond the actor's checkpoint, where the older ones
   * are written once instead of with every change (0: no checkpoint; every
   * write holds every remembered call). See docs/performance.md, "Idempotent calls".
   */
  idempotency?: { windowMs?: number; limit?: number; checkpointEvery?: number };
  /**
   * Replicas the service's buckets must have: the node refuses to start if they
   * have others (default: whatever they have; a server without authentication
   * sets them up with min(3, cluster size)). See `molt setup`.
   */
  replicas?: number;
  /**
   * Most bytes the actor-state bucket may hold, when this node sets the service
   * up (on a server that asks for no credentials; elsewhere `molt setup
   * --state-max-bytes`). On a server whose JetStream storage is bounded, keep
   * it below that bound: when actor state fills the bucket, writes fail
   * (`Unavailable`, nothing written) while heartbeats still have room, so nodes
   * keep their leases and keep answering reads.
   */
  stateMaxBytes?: number;
  /**
   * Prefix of the reply subjects of this service's callers (default `_INBOX`,
   * nats.js's default; a client's `nats.inboxPrefix` must be under it). A call
   * whose reply subject is anything else is dropped unrun (see docs/protocol.md).
   */
  callerInboxPrefix?: string;
  /**
   * Serve Prometheus metrics at `http://<host>:<port>/metrics` (default: not
   * served). See docs/observability.md.
   */
  metrics?: MetricsOptions;
  /**
   * Where this node's spans go (default: the provider registered with
   * `@opentelemetry/api`, a no-op unless the application registers an SDK).
   * See docs/observability.md.
   */
  tracerProvider?: TracerProvider;
  /** Fingerprints of the publisher keys this node's upgrade manager trusts, published in its record (`keyFingerprint`). */
  trusts?: readonly string[];
  /**
   * Labels of this node (`{ zone: 'a', group: 'g1' }`), carried in its UDB record
   * for scheduling functions (`zones`, `groups`, `ring`) and `molt status`.
   */
  labels?: Readonly<Record<string, string>>;
  /**
   * How often, at most, this node writes a busy caller version's last sighting
   * to the UDB (`callers.<type>.<node>`, for `molt retire --when-unused`;
   * default 60 000 ms). A version called again after a quiet spell is written
   * within a heartbeat.
   */
  evidenceEveryMs?: number;
  codec?: Codec;
  clock?: Clock;
  logger?: Logger;
  ids?: IdGenerator;
}

/** Calls a node admits and has not answered yet, by default, before it refuses more. */
const DEFAULT_MAX_INFLIGHT = 20_000;

/** A running node. */
export interface MoltNode {
  readonly id: string;
  readonly service: string;
  readonly connection: NatsConnection;
  /** The port this node serves its metrics on, if it serves them (`metrics` option). */
  readonly metricsPort: number | undefined;
  /** Makes a newer version of a type known: its future SO serves callers of it at once. */
  loadVersion(def: AnyActorVersion): void;
  /** Upgrades a type in place to `version` (current + 1; loaded first if `def` is given). */
  upgrade(type: string, version: number, def?: AnyActorVersion): Promise<UpgradeResult>;
  /** Stops serving a version of a type (its SOs are dropped). */
  retire(type: string, version: number): void;
  /** Versions, residents, counters and failures per type. */
  status(): { id: string; service: string; owned: number[]; types: Record<string, TypeStatus> };
  /** The shards this node serves now. */
  ownedShards(): number[];
  /** Node ids currently live, as this node sees them. */
  liveNodes(): string[];
  /** Leaves the service (its shards move at once), drains in-flight calls, and disconnects if it owns the connection. */
  stop(): Promise<void>;
  /**
   * Resolves once the node has stopped: with undefined after `stop()`, or
   * with an error when it stopped by itself because another process took
   * over its node id while it could not renew its lease.
   */
  stopped(): Promise<MoltError | undefined>;
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

/** Starts a node. Resolves once it is serving. */
export async function createNode(options: NodeOptions): Promise<MoltNode> {
  const clock = options.clock ?? systemClock;
  const codec = options.codec ?? createSuperjsonCodec();
  const ids = options.ids ?? createIdGenerator();
  const nodeId = options.nodeId ?? `${hostname().split('.')[0]}-${process.pid}-${ids.next().slice(0, 6)}`;
  if (!/^[A-Za-z0-9_-]{1,128}$/.test(nodeId)) {
    throw new MoltError(ErrorCode.InvalidDefinition, `node id '${nodeId}' may contain only letters, digits, '_' and '-'`);
  }
  const labels = checkLabels(options.labels);
  const logger = (options.logger ?? createJsonLogger()).child({ node: nodeId, service: options.service.name });
  const shards = options.shards ?? DEFAULT_SHARDS;
  const heartbeatMs = options.heartbeatMs ?? 1000;
  const leaseMs = options.leaseMs ?? 5000;
  const service = options.service;

  // Reply subjects under _MOLT_NODE.<id>, where no caller may subscribe (docs/permissions.md).
  const connections = await openNodeConnections(withDefaultInboxPrefix(options.nats, nodeInboxPrefix(nodeId)));
  const { calls: nc, control } = connections;
  // Set up by the operator (`molt setup`); only opened here (see udb/buckets.ts).
  const { state: stateKv, udb } = await openNodeBuckets(control, service.name, { replicas: options.replicas, stateMaxBytes: options.stateMaxBytes, asker: `node ${nodeId}`, logger }).catch(async (e: unknown) => {
    await connections.close();
    throw e;
  });

  const previous = await udb.get(`${NODE_PREFIX}${nodeId}`).catch(() => null);
  let latest: KvEntry | null;
  try {
    latest = await ensureIdFree(udb, nodeId, previous, { heartbeatMs, leaseMs, clock });
  } catch (e) {
    await connections.close();
    throw e;
  }

  // A node whose lease ran out writes nothing more: another node may own these
  // actors already (`placement` exists before any call can write).
  const kvStore = createKvStore(stateKv, control, { clock, ids });
  const tracer = tracerOf(options.tracerProvider);
  const hosts = createHosts(service, {
    versions: options.versions,
    resumed: versionsToResume(readNodeRecord(previous)),
    durableStore: leaseGuarded(kvStore, () => placement.leaseValid()),
    passivateAfterMs: options.passivateAfterMs,
    holdLimit: options.holdLimit,
    mailboxLimit: options.mailboxLimit,
    idempotency: options.idempotency,
    codec,
    clock,
    logger,
    tracer,
  });

  const identity = { nodeId, service: service.name, startedAt: clock.now(), trusts: options.trusts, labels };
  const state: NodeRecordState = { status: 'running', lastError: undefined, upgradingTo: {} };

  const acceptsReply = createReplyCheck({ callerInboxPrefix: options.callerInboxPrefix, ownInboxes: () => ownInboxes(nc, kvStore.ackInbox, options.callerInboxPrefix), logger, clock });
  // Loaded only when asked for: prom-client is not loaded by nodes that serve no metrics.
  const observe = options.metrics ? await import('../observe/metrics.ts') : undefined;
  const metrics = observe?.createNodeMetrics({ service: service.name, hosts, ownedShards: () => placement.ownedShards().size, rollouts: () => new Udb(udb, service.name).rollouts() });
  const edge = createEdge({
    service: service.name,
    nodeId,
    hosts,
    shards,
    maxPayload: options.maxPayload ?? DEFAULT_MAX_PAYLOAD,
    codec,
    logger,
    maxInflight: options.maxInflight ?? DEFAULT_MAX_INFLIGHT,
    mailboxLimit: options.mailboxLimit ?? DEFAULT_MAILBOX_LIMIT,
    leaseValid: () => placement.leaseValid(),
    serves: (shard) => placement.serves(shard),
    owns: (shard) => placement.owns(shard),
    acceptsReply,
    durations: metrics?.durations,
    tracer,
  });
  const subscriptions = new ShardSubscriptions({ nc, service: service.name, shards, hosts, receive: (msg) => edge.receive(msg), quiet: () => edge.quiet(), logger });

  const callPath = control === nc ? undefined : probeCallPath(nc, clock, { everyMs: heartbeatMs, deadAfterMs: leaseMs / 2 });
  let replacedBy: MoltError | undefined;
  let serving = false;
  const placement = new Placement({
    kv: udb,
    nodeId,
    incarnation: ids.next(),
    recordRevision: latest?.revision ?? 0,
    shards,
    heartbeatMs,
    leaseMs,
    clock,
    logger,
    record: () => buildNodeRecord(identity, hosts, state, clock.now()),
    onOwnedChange: (owned) => subscriptions.apply(owned),
    writeTimeoutMs: DEFAULT_WRITE_TIMEOUT_MS,
    recordReader: await jetstreamManager(control, { checkAPI: false, timeout: Math.max(heartbeatMs, 250) }),
    ...(callPath ? { callPathAlive: callPath.alive } : {}),
    onReplaced(by) {
      replacedBy = new MoltError(
        ErrorCode.OperationRefused,
        `node id '${nodeId}' was taken over by process ${by.pid ?? '?'} on host '${by.host ?? '?'}' while this process was unable to renew its lease (paused or cut off); this process serves nothing more. Give every process its own id (--id)`,
        { retryable: false, data: { nodeId, pid: by.pid, host: by.host } },
      );
      // During start() there is no node yet: start() itself then fails.
      if (serving) void node.stop();
    },
  });
  let metricsServer: MetricsServer | undefined;
  try {
    // Before the node takes shards: a port already taken fails the start, not a running node.
    if (observe && metrics) metricsServer = await observe.serveMetrics(metrics.registry, options.metrics!);
    await placement.start();
  } catch (e) {
    await metricsServer?.close();
    for (const host of hosts.values()) host.stop();
    callPath?.stop();
    kvStore.close();
    await connections.close();
    throw e;
  }
  serving = true;
  // Batches of calls from clients that know this node owns their shards (wire/batch.ts).
  const batches = nc.subscribe(batchSubject(service.name, nodeId), {
    callback: (err, msg) => {
      if (!err) edge.receiveBatch(msg);
    },
  });
  // $SRV.PING|INFO|STATS (docs/protocol.md, "Discovery").
  const discovery = startDiscovery({ nc, service: service.name, nodeId, shards, startedAt: identity.startedAt, types: () => discoveredTypes(service, hosts), ownedShards: () => placement.ownedShards().size, acceptsReply, logger });
  // Caller evidence for retiring by evidence: a node that cannot write it still serves.
  const evidence = new CallerEvidence({
    kv: udb,
    nodeId,
    hosts,
    policies: Object.fromEntries(service.types.map((t) => [t.name, t.options.retireWhenUnusedMs])),
    clock,
    logger,
    everyMs: options.evidenceEveryMs ?? DEFAULT_EVIDENCE_EVERY_MS,
    heartbeatMs,
  });
  await evidence.start().catch((e: unknown) => logger.warn('caller evidence not started', { error: String(e) }));
  await nc.flush();
  logger.info('node started', { versions: Object.fromEntries([...hosts].map(([name, host]) => [name, host.currentVersion])), shards: placement.ownedShards().size });

  const { verbs, internals } = nodeVerbs({ service: service.name, hosts, state, publish: () => placement.publish(), clock, logger });
  let stopping: Promise<void> | undefined;
  let settleStopped!: (reason: MoltError | undefined) => void;
  const stoppedPromise = new Promise<MoltError | undefined>((resolve) => (settleStopped = resolve));
  const node: MoltNode = {
    id: nodeId,
    service: service.name,
    connection: nc,
    metricsPort: metricsServer?.port,
    ...verbs,
    status() {
      const types: Record<string, TypeStatus> = {};
      for (const [name, host] of hosts) types[name] = typeStatus(host);
      return { id: nodeId, service: service.name, owned: node.ownedShards(), types };
    },
    ownedShards: () => [...placement.ownedShards()].sort((a, b) => a - b),
    liveNodes: () => placement.live().sort(),
    stop() {
      stopping ??= (async () => {
        state.status = 'stopped';
        await discovery.stop();
        await evidence.stop().catch(() => undefined);
        await placement.stop({ leave: true });
        await batches.drain().catch(() => undefined);
        await subscriptions.drainAll();
        await edge.quiet();
        for (const host of hosts.values()) {
          await host.drain();
          host.stop();
        }
        callPath?.stop();
        kvStore.close();
        await metricsServer?.close();
        await connections.drain();
        if (replacedBy) logger.error('node stopped: its id was taken over', { error: replacedBy.message });
        else logger.info('node stopped');
        settleStopped(replacedBy);
      })();
      return stopping;
    },
    stopped: () => stoppedPromise,
  };
  attachInternals(node, { udb, ...internals, followNodeRecords: (onEntry) => placement.onRecord(onEntry) });
  return node;
}
