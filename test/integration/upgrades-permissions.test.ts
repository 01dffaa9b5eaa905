/**
 * The permissions of docs/permissions.md, on a real nats-server: a node
 * serves and upgrades itself, but cannot write descriptors, bundles or
 * retirements, nor delete or purge the upgrade buckets; only the publisher
 * can publish. The configuration is read from the document itself.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { readFileSync } from 'node:fs';
import { Kvm } from '@nats-io/kv';
import { Objm } from '@nats-io/obj';
import { jetstreamManager } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import { connectNats, createClient, createNode, silentLogger, type MoltNode } from '../../runtime/index.ts';
import { startUpgradeManager, type UpgradeManager } from '../../runtime/manager/index.ts';
import { publishUpgrade } from '../../runtime/server/publish.ts';
import { Udb } from '../../runtime/udb/index.ts';
import service, { counterV1 } from '../fixtures/counter.ts';
import { counterV2 } from '../fixtures/counter-v2.ts';
import { startEmbeddedNats, type EmbeddedNats } from '../support/nats.ts';
import { eventually, testPublisher, waitForVersions } from '../support/upgrades.ts';

const passwords = { MOLT_PUBLISHER_PASSWORD: 'pub-secret', MOLT_NODE_PASSWORD: 'node-secret', MOLT_OPERATOR_PASSWORD: 'op-secret', MOLT_CALLER_PASSWORD: 'caller-secret' };

/** The ```conf block of docs/permissions.md, for service `counters`. */
function documentedConfig(): string {
  const doc = readFileSync(new URL('../../docs/permissions.md', import.meta.url), 'utf8');
  const block = /```conf\n([\s\S]*?)```/.exec(doc);
  if (!block) throw new Error('docs/permissions.md has no ```conf block');
  return block[1]!.replaceAll('shop', 'counters');
}

interface Ctx {
  nats: EmbeddedNats;
  node: MoltNode;
  manager: UpgradeManager;
  asNode: NatsConnection;
}
const test = suite<Ctx>('upgrades: permissions');

test.before(async (ctx) => {
  Object.assign(process.env, passwords); // the server reads the passwords from its environment
  ctx.nats = await startEmbeddedNats({ config: documentedConfig() });
});

test.after(async (ctx) => {
  await ctx.manager?.stop();
  await ctx.node?.stop();
  await ctx.asNode?.close().catch(() => undefined);
  await ctx.nats?.stop();
});

async function refused(what: string, attempt: () => Promise<unknown>): Promise<void> {
  try {
    await attempt();
  } catch (e) {
    assert.match(String((e as Error).message), /Permissions Violation/i, `${what}: ${String(e)}`);
    return;
  }
  assert.unreachable(`${what} must be refused`);
}

test('permissions - a node upgrades itself but cannot publish; the publisher can', async (ctx) => {
  const publisher = testPublisher();
  const nodeCreds = { servers: ctx.nats.url, user: 'node', pass: passwords.MOLT_NODE_PASSWORD };
  ctx.node = await createNode({ service, nats: nodeCreds, nodeId: 'n1', logger: silentLogger, heartbeatMs: 300, leaseMs: 1500 });
  ctx.manager = await startUpgradeManager(ctx.node, { trustedKeys: [publisher.publicKey], reconcileMs: 300, tickMs: 200, leaseMs: 1500, logger: silentLogger });

  const caller = await createClient({ service: 'counters', nats: { servers: ctx.nats.url, user: 'caller', pass: passwords.MOLT_CALLER_PASSWORD } });
  assert.is(await caller.actor(counterV1, 'p').increment({ by: 4 }), 4);

  // The publisher creates the upgrade buckets and publishes; the node binds to them and upgrades.
  await publishUpgrade({ nats: { servers: ctx.nats.url, user: 'publisher', pass: passwords.MOLT_PUBLISHER_PASSWORD }, module: 'test/fixtures/counter-v2.ts', signer: publisher.signer });
  ctx.asNode = await connectNats(nodeCreds);
  const udb = new Udb(await new Kvm(ctx.asNode).open('molt_counters_udb'), 'counters');
  await waitForVersions(udb, ['n1'], 'counter', 2, 15_000);
  assert.equal(await caller.actor(counterV2, 'p').via(), ['tf2']);
  await caller.close();

  // Everything a node might try in order to plant or erase an upgrade is refused by the server.
  const upgrades = await new Kvm(ctx.asNode).open('molt_counters_upgrades');
  const entry = await upgrades.get('upgrade.counter.2');
  assert.ok(entry, 'a node can read descriptors');
  await refused('overwrite a descriptor', () => upgrades.put('upgrade.counter.2', entry!.value));
  await refused('add a descriptor', () => upgrades.put('upgrade.counter.3', entry!.value));
  await refused('delete a descriptor', () => upgrades.delete('upgrade.counter.2'));
  const bundles = await new Objm(ctx.asNode).open('molt_counters_bundles');
  await refused('write a bundle', () => bundles.putBlob({ name: 'sha256-evil' }, new TextEncoder().encode('export {}')));
  const jsm = await jetstreamManager(ctx.asNode);
  await refused('purge the descriptors', () => jsm.streams.purge('KV_molt_counters_upgrades'));
  await refused('delete the descriptors', () => jsm.streams.delete('KV_molt_counters_upgrades'));
  await refused('delete the bundles', () => jsm.streams.delete('OBJ_molt_counters_bundles'));
  await refused('retire a version', () => udb.kv.put('retired.counter.1', JSON.stringify({ type: 'counter', version: 1, by: 'node', at: Date.now() })));
  // …while the node's own UDB writes still work (its heartbeat moved on).
  const before = (await udb.nodes()).find((n) => n.id === 'n1')!.heartbeatAt;
  await eventually(async () => (await udb.nodes()).find((n) => n.id === 'n1')!.heartbeatAt > before, 'node heartbeats', 3000);

  // The operator may retire, but not touch the upgrade buckets.
  const asOperator = await connectNats({ servers: ctx.nats.url, user: 'operator', pass: passwords.MOLT_OPERATOR_PASSWORD });
  try {
    const opUpgrades = await new Kvm(asOperator).open('molt_counters_upgrades');
    await refused('operator writes a descriptor', () => opUpgrades.put('upgrade.counter.3', entry!.value));
    const opJsm = await jetstreamManager(asOperator);
    await refused('operator deletes the bundles', () => opJsm.streams.delete('OBJ_molt_counters_bundles'));
    await new Udb(await new Kvm(asOperator).open('molt_counters_udb'), 'counters').retire({ type: 'counter', version: 1, by: 'operator', at: Date.now() });
  } finally {
    await asOperator.close();
  }
});

test.run();
