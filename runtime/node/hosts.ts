/**
 * The actor hosts of a node, one per actor type of its service, each at the
 * version the node runs natively: the newest, a `--version` given, or the one
 * an interrupted upgrade was taking it to (never older than state it wrote).
 *
 * @module
 */
import type { Tracer } from '@opentelemetry/api';
import type { ServiceDefinition } from '../define/service.ts';
import { checkVersionChain } from '../define/service.ts';
import type { Codec } from '../wire/codec.ts';
import type { Clock, Logger } from '../env.ts';
import { ActorHost, DEFAULT_MAILBOX_LIMIT, type HostStats, type TransformFailure } from '../host/actor-host.ts';
import { createMemoryStore, type StateStore } from '../host/store.ts';
import { DEFAULT_REMEMBER } from '../host/remembered.ts';
import { servedVersions } from '../upgrade/layer.ts';

/** What `status()` reports about one type on this node. */
export interface TypeStatus {
  current: number;
  known: number[];
  served: number[];
  resident: number;
  stats: HostStats;
  transformFailures: TransformFailure[];
  rolledBackFrom?: number;
}

/** What {@link createHosts} needs beyond the service. */
export interface HostsOptions {
  /** Native version per type asked for at start (default: the newest). */
  versions: Record<string, number> | undefined;
  /** Versions an interrupted upgrade was taking each type to (node/record.ts). */
  resumed: Record<string, number>;
  /** Where durable types keep state; volatile ones keep it in memory. */
  durableStore: StateStore;
  passivateAfterMs: number | undefined;
  holdLimit: number | undefined;
  mailboxLimit: number | undefined;
  idempotency: { windowMs?: number; limit?: number; checkpointEvery?: number } | undefined;
  codec: Codec;
  clock: Clock;
  logger: Logger;
  tracer: Tracer | undefined;
}

/** One host per actor type of the service. */
export function createHosts(service: ServiceDefinition, o: HostsOptions): Map<string, ActorHost> {
  const hosts = new Map<string, ActorHost>();
  for (const type of service.types) {
    checkVersionChain(type.name, type.versions);
    const newest = type.versions[type.versions.length - 1]!.version;
    let current = o.versions?.[type.name] ?? newest;
    const last = o.resumed[type.name];
    if (last !== undefined && last > current && last <= newest) current = last;
    hosts.set(
      type.name,
      new ActorHost({
        types: type.versions.filter((v) => v.version <= Math.max(current, newest)),
        current,
        volatile: type.options.volatile ?? false,
        passivateAfterMs: type.options.passivateAfterMs ?? o.passivateAfterMs ?? 60_000,
        holdLimit: o.holdLimit ?? 10_000,
        mailboxLimit: o.mailboxLimit ?? DEFAULT_MAILBOX_LIMIT,
        remember: { ...DEFAULT_REMEMBER, ...o.idempotency },
        store: type.options.volatile ? createMemoryStore() : o.durableStore,
        codec: o.codec,
        clock: o.clock,
        logger: o.logger,
        tracer: o.tracer,
      }),
    );
  }
  return hosts;
}

/** A host's status, as `MoltNode.status()` reports it. */
export function typeStatus(host: ActorHost): TypeStatus {
  return {
    current: host.currentVersion,
    known: host.knownVersions,
    served: servedVersions(host.typeVersions),
    resident: host.residentCount,
    stats: { ...host.stats },
    transformFailures: [...host.transformFailures.values()],
    ...(host.rolledBackFrom !== undefined ? { rolledBackFrom: host.rolledBackFrom } : {}),
  };
}
