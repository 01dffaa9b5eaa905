/**
 * A node's Prometheus metrics, served as text on `--metrics-port` (off by
 * default). Built with prom-client on a registry of the node's own (never the
 * process-global one: two nodes in one process keep their series apart).
 *
 * Counters are not kept twice: at each scrape they are read from the hosts'
 * {@link CallCounts}, the same counters the node's UDB record — and so a
 * rollout's health gate — reports. Only the call durations are recorded per
 * call, and only when metrics are on (the edge times nothing otherwise).
 *
 * @module
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Counter, Gauge, Registry } from 'prom-client';
import { FastHistogram, type HistogramSeries } from './histogram.ts';
import type { ActorHost } from '../host/actor-host.ts';
import type { RolloutRecord, RolloutState } from '../udb/records.ts';
import { supersedes } from '../udb/records.ts';
import type { Route } from '../upgrade/layer.ts';
import { ErrorCode, MoltError } from '../errors.ts';
import { MAX_VERSIONS_COUNTED, OTHER_VERSIONS, ROUTE_LABELS, routeIndex } from './calls.ts';

/** A version as a label: its number, or `other` for the versions counted together. */
const versionLabel = (version: number): string => (version === OTHER_VERSIONS ? 'other' : String(version));

/** Where a node serves its metrics (`GET /metrics`). */
export interface MetricsOptions {
  /** TCP port; 0 takes a free one (see `MoltNode.metricsPort`). */
  port: number;
  /** Interface to listen on (default: every interface, as Node.js listens). */
  host?: string;
}

/** What the metrics read from a node. */
export interface MetricsSource {
  service: string;
  hosts: ReadonlyMap<string, ActorHost>;
  ownedShards(): number;
  /** The service's rollouts as the UDB holds them now. */
  rollouts(): Promise<RolloutRecord[]>;
}

/** Records call durations (seconds) by type, caller version and route. */
export interface CallDurations {
  observe(type: string, version: number, route: Route | undefined, seconds: number): void;
}

export interface NodeMetrics {
  readonly registry: Registry;
  readonly durations: CallDurations;
}

/** Buckets for call durations: a volatile call takes tens of microseconds, a durable one a KV round trip. */
const DURATION_BUCKETS = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

const ROLLOUT_STATES: readonly RolloutState[] = ['running', 'paused', 'aborted', 'done', 'rolling-back', 'rolled-back'];

/** The metrics of one node, on a registry of their own. */
export function createNodeMetrics(source: MetricsSource): NodeMetrics {
  const registry = new Registry();
  const service = source.service;
  const hosts = source.hosts;

  new Counter({
    name: 'molt_calls_total',
    help: 'Calls answered, by type, caller version, route (native, past, future, future2, none) and outcome (ok, disallowed, or the error code).',
    labelNames: ['service', 'type', 'version', 'route', 'outcome'] as const,
    registers: [registry],
    collect() {
      this.reset();
      for (const [type, host] of hosts) {
        for (const s of host.counts.series()) this.inc({ service, type, version: versionLabel(s.version), route: s.route, outcome: s.outcome }, s.count);
      }
    },
  });

  const duration = new FastHistogram(
    'molt_call_duration_seconds',
    'Time from receiving a call to sending its reply, by type, caller version and route.',
    DURATION_BUCKETS,
    registry,
  );

  new Gauge({
    name: 'molt_actors_resident',
    help: 'Actors held in memory.',
    labelNames: ['service', 'type'] as const,
    registers: [registry],
    collect() {
      for (const [type, host] of hosts) this.set({ service, type }, host.residentCount);
    },
  });

  new Counter({
    name: 'molt_transform_failures_total',
    help: 'Actors whose transform function failed, by the step (from, to) that failed.',
    labelNames: ['service', 'type', 'from', 'to'] as const,
    registers: [registry],
    collect() {
      this.reset();
      for (const [type, host] of hosts) {
        for (const s of host.counts.transformSteps()) this.inc({ service, type, from: String(s.from), to: String(s.to) }, s.count);
      }
    },
  });

  new Gauge({
    name: 'molt_hold_buffer',
    help: 'Calls held while the type upgrades on this node.',
    labelNames: ['service', 'type'] as const,
    registers: [registry],
    collect() {
      for (const [type, host] of hosts) this.set({ service, type }, host.heldCount);
    },
  });

  new Gauge({
    name: 'molt_shards_owned',
    help: 'Shards this node serves.',
    labelNames: ['service'] as const,
    registers: [registry],
    collect() {
      this.set({ service }, source.ownedShards());
    },
  });

  new Gauge({
    name: 'molt_node_version',
    help: 'The version of the type this node runs natively.',
    labelNames: ['service', 'type'] as const,
    registers: [registry],
    collect() {
      for (const [type, host] of hosts) this.set({ service, type }, host.currentVersion);
    },
  });

  new Gauge({
    name: 'molt_rollout_state',
    help: "The newest rollout of each type: 1 for the state it is in, 0 for the others (as the UDB holds it when scraped).",
    labelNames: ['service', 'type', 'rollout', 'from', 'to', 'state'] as const,
    registers: [registry],
    async collect() {
      this.reset();
      let all: RolloutRecord[];
      try {
        all = await source.rollouts();
      } catch {
        return; // the UDB is unreachable: no rollout series rather than a failed scrape
      }
      for (const r of all) {
        if (all.some((later) => supersedes(later, r))) continue;
        for (const state of ROLLOUT_STATES) {
          this.set({ service, type: r.type, rollout: r.rolloutId, from: String(r.from), to: String(r.to), state }, r.state === state ? 1 : 0);
        }
      }
    },
  });

  // One series per (type, version, route), found by two map lookups and an index.
  const children = new Map<string, Map<number, Array<HistogramSeries | undefined>>>();
  const durations: CallDurations = {
    observe(type, version, route, seconds) {
      let byVersion = children.get(type);
      if (byVersion === undefined) children.set(type, (byVersion = new Map()));
      let byRoute = byVersion.get(version);
      if (byRoute === undefined && byVersion.size >= MAX_VERSIONS_COUNTED) byRoute = byVersion.get((version = OTHER_VERSIONS));
      if (byRoute === undefined) byVersion.set(version, (byRoute = []));
      const i = routeIndex(route);
      (byRoute[i] ??= duration.series({ service, type, version: versionLabel(version), route: ROUTE_LABELS[i]! })).observe(seconds);
    },
  };
  return { registry, durations };
}

/** An HTTP server answering `GET /metrics` with the registry's text. */
export interface MetricsServer {
  readonly port: number;
  close(): Promise<void>;
}

/** Serves `registry` at `http://<host>:<port>/metrics`. Rejects with `Environment` if the port is taken. */
export async function serveMetrics(registry: Registry, options: MetricsOptions): Promise<MetricsServer> {
  const server: Server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (req.method !== 'GET' || (path !== '/metrics' && path !== '/')) {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('molt serves its metrics at GET /metrics\n');
      return;
    }
    registry.metrics().then(
      (text) => res.writeHead(200, { 'content-type': registry.contentType }).end(text),
      (e: unknown) => res.writeHead(500, { 'content-type': 'text/plain' }).end(`metrics could not be collected: ${String(e)}\n`),
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', (e: NodeJS.ErrnoException) =>
      reject(new MoltError(ErrorCode.Environment, `cannot serve metrics on ${options.host ?? '*'}:${options.port}: ${e.code ?? e.message}; choose another --metrics-port`, { cause: e })),
    );
    server.listen(options.port, options.host, () => resolve());
  });
  return {
    port: (server.address() as AddressInfo).port,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
