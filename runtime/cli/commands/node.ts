/**
 * `molt node <module>`: run a node of a service on the NATS at `--nats` /
 * `NATS_URL`. `molt dev <module>`: the same, starting an embedded nats-server
 * first when no NATS_URL is set.
 *
 * @module
 */
import type { Command } from 'commander';
import { createNode, type MoltNode } from '../../node.ts';
import { startEmbeddedNats, type EmbeddedNats } from '../../nats/embedded.ts';
import { loadServiceModule } from '../service-module.ts';
import { ErrorCode, MoltError } from '../../errors.ts';
import { startUpgradeManager } from '../../manager/index.ts';
import { keyFingerprint, parseTrustedKeys } from '../../server/keys.ts';
import { addNatsFlags, natsTargetFromFlags, type NatsFlags } from '../connection.ts';
import type { NatsConnectOptions } from '../../nats/connect.ts';
import { formatLabels, parseLabelFlags } from '../../node/labels.ts';

interface NodeFlags extends NatsFlags {
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

function stopOnSignals(stop: () => Promise<void>): void {
  let stopping = false;
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.on(signal, () => {
      if (stopping) process.exit(1);
      stopping = true;
      void stop().then(() => process.exit(0));
    });
  }
}

function addNodeFlags(cmd: Command): Command {
  return addNatsFlags(cmd)
    .option('--id <id>', 'stable node id; reuse it across restarts to resume an interrupted upgrade')
    .option('--version <type=version...>', 'native version of a type at start (default: the newest in the module)')
    .option('--shards <n>', 'shard count of the service (every node and client must agree)', undefined)
    .option('--passivate-after <ms>', 'drop actors idle this long from memory')
    .option('--lease <ms>', 'a node silent this long is considered dead; its shards move')
    .option('--heartbeat <ms>', 'heartbeat period')
    .option('--replicas <n>', 'replicas the service\'s buckets must have; refuses to start if they differ (see molt setup)')
    .option('--caller-inbox-prefix <prefix>', 'prefix of the reply subjects this node answers (default _INBOX); calls with any other are dropped unrun')
    .option('--state-max-bytes <n>', 'size limit of the actor-state bucket when this node sets the service up (a server without credentials; elsewhere: molt setup --state-max-bytes)')
    .option('--metrics-port <port>', 'serve Prometheus metrics at http://<host>:<port>/metrics (default: not served; 0 takes a free port)')
    .option('--metrics-host <host>', 'interface the metrics listen on (default: every interface)')
    .option('--label <name=value>', 'a label of this node, e.g. --label zone=a --label group=g1 (repeat for each; schedules zones, groups and ring read them)', (v: string, prev: string[] | undefined) => [...(prev ?? []), v])
    .option('--trust <publicKeys...>', 'publisher public keys whose upgrades this node accepts (also $MOLT_TRUSTED_KEYS, comma-separated)')
    .option('--reconcile <ms>', 'how often the upgrade manager re-reads published upgrades (default 5000)')
    .option('--tick <ms>', 'clock tick of scheduling functions (default 1000)')
    .option('--max-bundle-bytes <n>', 'refuse upgrade bundles larger than this, before downloading them (default 16777216, 16 MiB)');
}

export function registerNodeCommands(program: Command): void {
  addNodeFlags(program.command('node <module>').description('run a node of the service exported by <module>')).action(async (modulePath: string, flags: NodeFlags) => {
    if (!flags.nats && !process.env.NATS_URL) throw new MoltError(ErrorCode.Environment, 'no NATS server given: pass --nats nats://host:4222 or set NATS_URL (or use `molt dev` to start an embedded one)');
    const node = await runNodeFromFlags(modulePath, flags, natsTargetFromFlags(flags, 'molt-node'));
    stopOnSignals(() => node.stop());
  });

  addNodeFlags(program.command('dev <module>').description('run a node locally; starts an embedded nats-server when NATS_URL is unset')).action(async (modulePath: string, flags: NodeFlags) => {
    let embedded: EmbeddedNats | undefined;
    let url = flags.nats ?? process.env.NATS_URL;
    if (!url) {
      embedded = await startEmbeddedNats();
      url = embedded.url;
      process.stdout.write(`embedded nats-server on ${url} (JetStream in ${embedded.storeDir}); export NATS_URL=${url} to call it\n`);
    }
    const node = await runNodeFromFlags(modulePath, flags, natsTargetFromFlags(flags, 'molt-node', { defaultUrl: url }));
    stopOnSignals(async () => {
      await node.stop();
      await embedded?.stop();
    });
  });
}
