/**
 * Test support for the upgrade tests: node processes with an upgrade manager
 * (`molt node … --trust`), publishing from the test process, and waiting on
 * the upgrade database.
 */
import { Kvm } from '@nats-io/kv';
import type { NatsConnection } from '@nats-io/transport-node';
import { connectNats, createClient, startEmbeddedNats, type EmbeddedNats, type MoltClient } from '../../runtime/index.ts';
import { Udb, type NodeRecord, type ProgressRecord, type RolloutRecord } from '../../runtime/udb/index.ts';
import { generatePublisherKeys, signerFromSeed, type Signer } from '../../runtime/server/keys.ts';
import { publishUpgrade, type PublishOptions } from '../../runtime/server/publish.ts';
import { DESCRIPTOR_FORMAT, type UpgradeDescriptor } from '../../runtime/server/descriptor.ts';
import { spawnScript, eventually, type ChildNode } from './nats.ts';

export { eventually };

/**
 * An (unsigned) descriptor of counters' `counter` 1 → 2, for tests that sign,
 * forge, tamper with or replay descriptors by hand.
 */
export function counterV2Descriptor(o: { publisher: string; bundle: { digest: string; size: number }; rolloutId: string; schedule?: string }): UpgradeDescriptor {
  return {
    format: DESCRIPTOR_FORMAT,
    service: 'counters',
    type: 'counter',
    from: 1,
    to: 2,
    bundle: o.bundle,
    schedule: { name: o.schedule ?? 'immediate', params: {} },
    publisher: o.publisher,
    createdAt: Date.now(),
    rolloutId: o.rolloutId,
  };
}

/** Fast timings for node processes in upgrade tests. */
export const TIMINGS = { leaseMs: 1500, heartbeatMs: 300, reconcileMs: 1000, tickMs: 200 };

/** A publisher key pair and its signer. */
export function testPublisher(): { publicKey: string; seed: string; signer: Signer } {
  const keys = generatePublisherKeys();
  return { ...keys, signer: signerFromSeed(keys.seed) };
}

/** Starts `molt node <module>` with an upgrade manager trusting `trust`; resolves once it serves. */
export async function startUpgradableNode(
  url: string,
  id: string,
  options: { trust: string[]; module?: string; env?: Record<string, string>; args?: string[] },
): Promise<ChildNode> {
  const args = [
    'node',
    options.module ?? 'test/fixtures/counter.ts',
    '--nats',
    url,
    '--id',
    id,
    '--lease',
    String(TIMINGS.leaseMs),
    '--heartbeat',
    String(TIMINGS.heartbeatMs),
    '--reconcile',
    String(TIMINGS.reconcileMs),
    '--tick',
    String(TIMINGS.tickMs),
    ...(options.trust.length ? ['--trust', ...options.trust] : []),
    ...(options.args ?? []),
  ];
  const child = spawnScript('bin/molt.js', args, { MOLT_LOG: 'warn', ...(options.env ?? {}) });
  try {
    await child.waitFor(new RegExp(`molt node ${id} serving`), 60_000);
  } catch (e) {
    await child.kill('SIGKILL');
    throw e;
  }
  return child;
}

/** A connection and the UDB of the `counters` service, for assertions. */
export async function openCounters(url: string): Promise<{ nc: NatsConnection; udb: Udb }> {
  const nc = await connectNats({ servers: url, name: 'test' });
  const kv = await new Kvm(nc).create('molt_counters_udb', { history: 5 });
  return { nc, udb: new Udb(kv, 'counters', nc) };
}

/** Publishes a fixture module from the test process. */
export function publish(url: string, signer: Signer, module: string, extra: Partial<PublishOptions> = {}) {
  return publishUpgrade({ nats: { servers: url }, module, signer, ...extra });
}

/** Node records that are live (heartbeat within the lease, by this process's clock). */
export async function liveNodes(udb: Udb): Promise<NodeRecord[]> {
  const now = Date.now();
  return (await udb.nodes()).filter((n) => n.status !== 'stopped' && now - n.heartbeatAt <= TIMINGS.leaseMs);
}

/** Waits until every listed node runs `type` at `version` (per the UDB). */
export async function waitForVersions(udb: Udb, ids: string[], type: string, version: number, timeoutMs = 20_000): Promise<void> {
  let last: NodeRecord[] = [];
  await eventually(
    async () => {
      last = await udb.nodes();
      return ids.every((id) => last.find((n) => n.id === id)?.versions[type] === version);
    },
    `nodes ${ids.join(', ')} at ${type}@${version}`,
    timeoutMs,
  ).catch((e) => {
    throw new Error(`${(e as Error).message}; nodes: ${JSON.stringify(last.map((n) => ({ id: n.id, v: n.versions, s: n.status, e: n.lastError })))}`);
  });
}

/** Waits until a rollout record satisfies `check`. */
export async function waitForRollout(udb: Udb, rolloutId: string, check: (r: RolloutRecord) => boolean, what: string, timeoutMs = 20_000): Promise<RolloutRecord> {
  let last: RolloutRecord | undefined;
  await eventually(
    async () => {
      last = (await udb.rollout(rolloutId))?.record;
      return last !== undefined && check(last);
    },
    `rollout ${rolloutId}: ${what}`,
    timeoutMs,
  ).catch((e) => {
    throw new Error(`${(e as Error).message}; last: ${JSON.stringify(last)}`);
  });
  return last!;
}

/** The progress records of a rollout by node id. */
export async function progressByNode(udb: Udb, rolloutId: string): Promise<Map<string, ProgressRecord>> {
  return new Map((await udb.progress(rolloutId)).map((p) => [p.nodeId, p]));
}

/**
 * Waits until every listed node's progress in a rollout has reached one of
 * `steps` (progress records are written just after the node record changes,
 * so read them through this, not right after `waitForVersions`).
 */
export async function waitForProgress(udb: Udb, rolloutId: string, ids: string[], steps: string[] = ['upgraded'], timeoutMs = 10_000): Promise<Map<string, ProgressRecord>> {
  let last = new Map<string, ProgressRecord>();
  await eventually(
    async () => {
      last = await progressByNode(udb, rolloutId);
      return ids.every((id) => steps.includes(last.get(id)?.step ?? ''));
    },
    `progress of ${ids.join(', ')} in ${rolloutId} at ${steps.join('/')}`,
    timeoutMs,
  ).catch((e) => {
    throw new Error(`${(e as Error).message}; progress: ${JSON.stringify([...last.values()].map((p) => ({ id: p.nodeId, step: p.step, note: p.note })))}`);
  });
  return last;
}

/** Kills every child, ignoring errors. */
export async function killAll(children: Array<ChildNode | undefined>, signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
  await Promise.all(children.map((c) => c?.kill(signal).catch(() => undefined)));
}

/** A `counters` service on three upgradable node processes, with a client and the UDB. */
export interface ThreeNodeService {
  nats: EmbeddedNats;
  nodes: ChildNode[];
  nc: NatsConnection;
  udb: Udb;
  client: MoltClient;
  publisher: ReturnType<typeof testPublisher>;
}

/** The node ids of {@link startThreeNodeService}. */
export const THREE_NODE_IDS: string[] = ['node-a', 'node-b', 'node-c'];

/** Starts a nats-server and three `molt node` processes trusting a fresh publisher (`args`: extra node flags). */
export async function startThreeNodeService(options: { args?: string[] } = {}): Promise<ThreeNodeService> {
  const nats = await startEmbeddedNats();
  const publisher = testPublisher();
  const nodes = await Promise.all(THREE_NODE_IDS.map((id) => startUpgradableNode(nats.url, id, { trust: [publisher.publicKey], args: options.args })));
  const { nc, udb } = await openCounters(nats.url);
  const client = await createClient({ service: 'counters', nats: nc, timeoutMs: 5000 });
  return { nats, nodes, nc, udb, client, publisher };
}

/** Stops what {@link startThreeNodeService} started (tolerates a partial start). */
export async function stopThreeNodeService(s: Partial<ThreeNodeService>): Promise<void> {
  await s.client?.close();
  await killAll(s.nodes ?? []);
  await s.nc?.drain().catch(() => undefined);
  await s.nats?.stop();
}
