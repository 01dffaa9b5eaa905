/**
 * NATS services discovery: a node answers `$SRV.PING`, `$SRV.INFO` and
 * `$SRV.STATS` — for all services, for its service's name, and for its
 * service's name and its node id — in the NATS micro format
 * (`io.nats.micro.v1.*_response`), so `nats micro ls`, `nats micro info` and
 * any client can list Molt services, their endpoints (one per actor type,
 * with the versions it serves) and the shard count, without provoking an
 * error on a call subject.
 *
 * Only the discovery subjects are answered here. Calls keep the node's own
 * shard subscriptions (no queue group, see docs/protocol.md); an endpoint of
 * the micro format describes them, it does not add a second path for calls.
 * As for calls, a discovery request is answered only when its reply subject
 * is a caller inbox: the node replies with its own NATS rights.
 *
 * @module
 */
import { readFileSync } from 'node:fs';
import type { NatsConnection, Msg, Subscription } from '@nats-io/transport-node';
import type { Logger } from '../env.ts';
import { PROTOCOL_VERSION } from '../wire/protocol.ts';
import { servedVersions, type TypeVersions } from '../upgrade/layer.ts';

/** The subject prefix of the services protocol. */
export const SRV_PREFIX = '$SRV';

/** The verbs a node answers. */
export const discoveryVerbs = ['PING', 'INFO', 'STATS'] as const;
export type DiscoveryVerb = (typeof discoveryVerbs)[number];

/** What discovery reports about one actor type on this node, read at each request. */
export interface DiscoveredType {
  name: string;
  /** The version the node runs natively. */
  current: number;
  /** Every caller version it answers, oldest first. */
  served: readonly number[];
  volatile: boolean;
  stats: { calls: number; failed: number; disallowed: number; overloaded: number; conflicts: number; transformFailures: number };
  resident: number;
}

/** Options of {@link startDiscovery}. */
export interface DiscoveryOptions {
  nc: NatsConnection;
  service: string;
  nodeId: string;
  shards: number;
  /** When the node started, ms since the epoch. */
  startedAt: number;
  /** The node's types, now. */
  types: () => readonly DiscoveredType[];
  /** The shards this node owns now. */
  ownedShards: () => number;
  /** True if a reply may be sent to this reply subject (the node's caller-inbox check). */
  acceptsReply: (subject: string, reply: string | undefined) => boolean;
  logger: Logger;
}

/** The subjects a node of `service` with id `nodeId` subscribes to for discovery (nine: three verbs, three scopes). */
export function discoverySubjects(service: string, nodeId: string): string[] {
  return discoveryVerbs.flatMap((verb) => subjectsOf(verb, service, nodeId));
}

function subjectsOf(verb: DiscoveryVerb, service: string, nodeId: string): string[] {
  return [`${SRV_PREFIX}.${verb}`, `${SRV_PREFIX}.${verb}.${service}`, `${SRV_PREFIX}.${verb}.${service}.${nodeId}`];
}

/** The framework's version, reported as the service version (semver, as the format requires). */
function frameworkVersion(): string {
  try {
    const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version?: unknown };
    if (typeof pkg.version === 'string' && /^\d+\.\d+\.\d+/.test(pkg.version)) return pkg.version;
  } catch {
    // Bundled without its package.json: fall through.
  }
  return '0.0.0';
}

/** Starts answering discovery requests. `stop()` drains the subscriptions. */
export function startDiscovery(options: DiscoveryOptions): { stop(): Promise<void> } {
  const { nc, service, nodeId, shards, logger } = options;
  const version = frameworkVersion();
  const started = new Date(options.startedAt).toISOString();
  const encoder = new TextEncoder();
  const metadata = {
    'molt.protocol': String(PROTOCOL_VERSION),
    'molt.shards': String(shards),
    'molt.subject': `molt.${service}.<type>.<shard>.<key>`,
  };
  const base = (kind: string) => ({ type: `io.nats.micro.v1.${kind}_response`, name: service, id: nodeId, version, metadata });
  const endpointOf = (t: DiscoveredType) => ({
    name: t.name,
    subject: `molt.${service}.${t.name}.*.*`,
    // Calls are not load-balanced by a queue group: each shard has one owner.
    queue_group: '',
    metadata: {
      'molt.version': String(t.current),
      'molt.served': t.served.join(','),
      'molt.volatile': String(t.volatile),
    },
  });

  const answer = (verb: DiscoveryVerb): unknown => {
    switch (verb) {
      case 'PING':
        return base('ping');
      case 'INFO':
        return {
          ...base('info'),
          description: `Molt service '${service}': versioned actors, one endpoint per actor type (docs/protocol.md)`,
          endpoints: options.types().map(endpointOf),
        };
      case 'STATS':
        return {
          ...base('stats'),
          started,
          endpoints: options.types().map((t) => ({
            ...endpointOf(t),
            num_requests: t.stats.calls,
            num_errors: t.stats.failed,
            last_error: '',
            // Molt does not time calls per endpoint.
            processing_time: 0,
            average_processing_time: 0,
            data: { resident: t.resident, ownedShards: options.ownedShards(), disallowed: t.stats.disallowed, overloaded: t.stats.overloaded, conflicts: t.stats.conflicts, transformFailures: t.stats.transformFailures },
          })),
        };
    }
  };

  const subscriptions: Subscription[] = [];
  for (const verb of discoveryVerbs) {
    for (const subject of subjectsOf(verb, service, nodeId)) {
      subscriptions.push(
        nc.subscribe(subject, {
          callback: (err: Error | null, msg: Msg) => {
            if (err || !msg.reply || !options.acceptsReply(msg.subject, msg.reply)) return;
            try {
              msg.respond(encoder.encode(JSON.stringify(answer(verb))));
            } catch (e) {
              logger.warn('discovery reply failed', { subject: msg.subject, error: (e as Error).message });
            }
          },
        }),
      );
    }
  }
  return {
    async stop() {
      await Promise.allSettled(subscriptions.map((s) => s.drain()));
    },
  };
}

/** What discovery reports of a node's hosts (read at each request). */
export function discoveredTypes(
  service: { types: ReadonlyArray<{ name: string; options: { volatile?: boolean } }> },
  hosts: ReadonlyMap<string, { currentVersion: number; typeVersions: TypeVersions; residentCount: number; stats: DiscoveredType['stats'] }>,
): DiscoveredType[] {
  return service.types.flatMap((type) => {
    const host = hosts.get(type.name);
    if (!host) return [];
    return [{
      name: type.name,
      current: host.currentVersion,
      served: servedVersions(host.typeVersions),
      volatile: type.options.volatile === true,
      stats: host.stats,
      resident: host.residentCount,
    }];
  });
}
