/**
 * Starting a node from the flags of `molt node` and `molt dev`
 * (commands/node.ts registers them): the node, its upgrade manager, and the
 * line that says where it serves. Imported when one of them runs.
 *
 * @module
 */
import { createNode, type MoltNode } from '../node/index.ts';
import { loadServiceModule } from './service-module.ts';
import { ErrorCode, MoltError } from '../errors.ts';
import { startUpgradeManager } from '../manager/index.ts';
import { keyFingerprint, parseTrustedKeys } from '../server/keys.ts';
import type { NatsConnectOptions } from '../nats/connect.ts';
import { formatLabels, parseLabelFlags } from '../node/labels.ts';
import type { NatsFlags } from './flags.ts';

/** The flags of `molt node` and `molt dev`, as commander parses them. */
export interface NodeFlags extends NatsFlags {
  id?: string;
  version?: string[];
  shards?: string;
  passivateAfter?: string;
  lease?: string;
  heartbeat?: string;
  replicas?: string;
  trust?: string[];
  reconcile?: string;
  tick?: string;
  maxBundleBytes?: string;
  callerInboxPrefix?: string;
  stateMaxBytes?: string;
  metricsPort?: string;
  metricsHost?: string;
  label?: string[];
}

function parseVersions(pairs: string[] | undefined): Record<string, number> | undefined {
  if (!pairs || pairs.length === 0) return undefined;
  const out: Record<string, number> = {};
  for (const pair of pairs) {
    const m = /^([a-z][a-z0-9-]*)=([1-9][0-9]*)$/.exec(pair);
    if (!m) throw new MoltError(ErrorCode.InvalidDefinition, `--version takes <type>=<version>, e.g. --version counter=2; got '${pair}'`);
    out[m[1]!] = Number(m[2]);
  }
  return out;
}

function positive(name: string, value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isFinite(n) || n <= 0) throw new MoltError(ErrorCode.InvalidDefinition, `--${name} must be a positive number, got '${value}'`);
  return n;
}

function port(name: string, value: string): number {
  const n = Number(value);
  if (!/^[0-9]{1,5}$/.test(value) || n > 65535) throw new MoltError(ErrorCode.InvalidDefinition, `--${name} must be a TCP port (0 to 65535; 0 takes a free one), got '${value}'`);
  return n;
}

/** Starts a node from CLI flags; shared by `node` and `dev`. */
export async function runNodeFromFlags(modulePath: string, flags: NodeFlags, nats: NatsConnectOptions): Promise<MoltNode> {
  const service = await loadServiceModule(modulePath);
  const trustedKeys = parseTrustedKeys([...(flags.trust ?? []), process.env.MOLT_TRUSTED_KEYS ?? ''].join(','));
  const node = await createNode({
    service,
    nats: { ...nats, name: `molt-node ${service.name}` },
    nodeId: flags.id,
    versions: parseVersions(flags.version),
    shards: positive('shards', flags.shards),
    passivateAfterMs: positive('passivate-after', flags.passivateAfter),
    leaseMs: positive('lease', flags.lease),
    heartbeatMs: positive('heartbeat', flags.heartbeat),
    replicas: positive('replicas', flags.replicas),
    ...(flags.callerInboxPrefix ? { callerInboxPrefix: flags.callerInboxPrefix } : {}),
    stateMaxBytes: positive('state-max-bytes', flags.stateMaxBytes),
    ...(flags.metricsPort !== undefined ? { metrics: { port: port('metrics-port', flags.metricsPort), ...(flags.metricsHost ? { host: flags.metricsHost } : {}) } } : {}),
    labels: parseLabelFlags(flags.label),
    // In the node's record, so that `molt publish` can tell a key no node trusts.
    trusts: trustedKeys.map(keyFingerprint),
  });
  // Every node runs an upgrade manager; with no trusted key it refuses (and reports) every upgrade.
  const manager = await startUpgradeManager(node, {
    trustedKeys,
    reconcileMs: positive('reconcile', flags.reconcile),
    tickMs: positive('tick', flags.tick),
    leaseMs: positive('lease', flags.lease),
    maxBundleBytes: positive('max-bundle-bytes', flags.maxBundleBytes),
  });
  // A node whose id another process took over (while this one was paused or
  // cut off) has stopped serving for good: the process ends, so a supervisor sees it.
  void node.stopped().then((reason) => {
    if (!reason) return;
    process.stderr.write(`molt: ${reason.code}: ${reason.message}\n`);
    void manager.stop().finally(() => process.exit(1));
  });
  const versions = Object.entries(node.status().types).map(([t, s]) => `${t}@${s.current}`).join(' ');
  const labels = formatLabels(parseLabelFlags(flags.label));
  process.stdout.write(`molt node ${node.id} serving ${service.name} (${versions}) on ${(Array.isArray(nats.servers) ? nats.servers : [nats.servers]).map(withoutCredentials).join(',')}${labels ? ` labels ${labels}` : ''}\n`);
  if (node.metricsPort !== undefined) process.stdout.write(`metrics on http://${flags.metricsHost ?? 'localhost'}:${node.metricsPort}/metrics\n`);
  // The manager works over the node's connection, which node.stop() drains: stop
  // it first (an upgrade in progress completes), or its periodic reads fail
  // with "connection draining" warnings on every shutdown.
  const stopNode = node.stop.bind(node);
  return Object.assign(node, { stop: () => manager.stop().then(stopNode, stopNode) });
}

/** A server URL as printed: without the credentials it may carry. */
function withoutCredentials(url: string): string {
  return url.replace(/^([a-z][a-z0-9+.-]*:\/\/)?[^@/]*@/i, '$1');
}

