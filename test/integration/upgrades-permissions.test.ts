/**
 * The permissions of docs/permissions.md on a real nats-server, tried the way
 * a hostile caller and a compromised node would (issue 14 §2). The server runs
 * the block `molt permissions counters --nodes n1 n2` prints; the document's
 * own block is that command's output for its example service.
 *
 * Every attack here worked against the permissions documented before: a call
 * whose reply subject was an actor's KV record overwrote it, one whose reply
 * subject was the JetStream API purged the state, a node planted a descriptor
 * and retired a version through a stream's RePublish, wrote another node's
 * record and a control record, and could delete the state bucket.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { readFileSync } from 'node:fs';
import { Kvm, type KV } from '@nats-io/kv';
import { Objm } from '@nats-io/obj';
import { headers as natsHeaders, type NatsConnection } from '@nats-io/transport-node';
import { jetstreamManager } from '@nats-io/jetstream';
import { connectNats, createClient, createJsonLogger, createNode, createSuperjsonCodec, silentLogger, type MoltClient, type MoltNode } from '../../runtime/index.ts';
import { startUpgradeManager, type UpgradeManager } from '../../runtime/manager/index.ts';
import { publishUpgrade } from '../../runtime/server/publish.ts';
import { Udb } from '../../runtime/udb/index.ts';
import { setupServiceBuckets } from '../../runtime/udb/buckets.ts';
import { permissionsConfig } from '../../runtime/nats/permissions.ts';
import { pruneHistory } from '../../runtime/operate/prune.ts';
import { callSubject, encodeKey, Header, stateKey } from '../../runtime/wire/protocol.ts';
import service, { counterV1 } from '../fixtures/counter.ts';
import { counterV2 } from '../fixtures/counter-v2.ts';
import { startEmbeddedNats, type EmbeddedNats } from '../support/nats.ts';
import { eventually, testPublisher, waitForVersions } from '../support/upgrades.ts';

const passwords: Record<string, string> = {
  MOLT_OPERATOR_PASSWORD: 'op-secret',
  MOLT_PUBLISHER_PASSWORD: 'pub-secret',
  MOLT_NODE_N1_PASSWORD: 'n1-secret',
  MOLT_NODE_N2_PASSWORD: 'n2-secret',
  MOLT_CALLER_PASSWORD: 'caller-secret',
};

/** The server's configuration: what `molt permissions counters --nodes n1 n2` prints. */
function serverConfig(): string {
  return permissionsConfig({ service: 'counters', nodes: ['n1', 'n2'] });
}

interface Ctx {
  nats: EmbeddedNats;
  nodes: MoltNode[];
  managers: UpgradeManager[];
  connections: NatsConnection[];
  client?: MoltClient;
  warnings: string[];
  rolloutId?: string;
}
const test = suite<Ctx>('upgrades: permissions');
const publisher = testPublisher();

test.before(async (ctx) => {
  Object.assign(process.env, passwords); // the server reads the passwords from its environment
  ctx.nats = await startEmbeddedNats({ config: serverConfig(), verbose: !!process.env.NATS_VERBOSE });
  ctx.nodes = [];
  ctx.managers = [];
  ctx.connections = [];
  ctx.warnings = [];
});

test.after(async (ctx) => {
  await ctx.client?.close();
  for (const m of ctx.managers) await m.stop();
  for (const n of ctx.nodes) await n.stop();
  for (const c of ctx.connections) await c.close().catch(() => undefined);
  await ctx.nats?.stop();
});

const login = {
  operator: { user: 'operator', pass: 'op-secret', inboxPrefix: '_MOLT_TOOLS' },
  publisher: { user: 'publisher', pass: 'pub-secret', inboxPrefix: '_MOLT_TOOLS' },
  n1: { user: 'node-n1', pass: 'n1-secret' },
  n2: { user: 'node-n2', pass: 'n2-secret' },
  caller: { user: 'caller', pass: 'caller-secret' },
};

async function as(ctx: Ctx, who: keyof typeof login): Promise<NatsConnection> {
  const id = who === 'n1' || who === 'n2' ? who : undefined;
  const nc = await connectNats({ servers: ctx.nats.url, ...login[who], ...(id ? { inboxPrefix: `_MOLT_NODE.${id}` } : {}) });
  ctx.connections.push(nc);
  return nc;
}

async function refused(what: string, attempt: () => Promise<unknown>): Promise<void> {
  try {
    await attempt();
  } catch (e) {
    assert.match(String((e as Error).message), /Permissions Violation/i, `${what}: ${String(e)}`);
    return;
  }
  assert.unreachable(`${what} must be refused`);
}

async function startNode(ctx: Ctx, id: 'n1' | 'n2'): Promise<MoltNode> {
  const logger = createJsonLogger('warn', {}, (line) => ctx.warnings.push(line));
  return createNode({ service, nats: { servers: ctx.nats.url, ...login[id] }, nodeId: id, logger, heartbeatMs: 300, leaseMs: 1500 });
}

async function stateMessages(ctx: Ctx): Promise<number> {
  const jsm = await jetstreamManager(await as(ctx, 'operator'));
  return (await jsm.streams.info('KV_molt_counters_state')).state.messages;
}

test('permissions - docs/permissions.md shows what `molt permissions shop` prints', () => {
  const doc = readFileSync(new URL('../../docs/permissions.md', import.meta.url), 'utf8');
  const block = /```conf\n([\s\S]*?)```/.exec(doc);
  assert.ok(block, 'docs/permissions.md has a ```conf block');
  assert.fixture(block![1]!, permissionsConfig({ service: 'shop' }));
});

test('permissions - a node started before `molt setup` refuses, naming the command', async (ctx) => {
  let started: MoltNode | undefined;
  try {
    started = await startNode(ctx, 'n1');
  } catch (e) {
    assert.match(String((e as Error).message), /service 'counters' is not set up on this NATS \(missing: molt_counters_state, molt_counters_udb, molt_counters_upgrades, molt_counters_bundles\)/);
    assert.match(String((e as Error).message), /molt setup counters/);
  }
  if (started) {
    await started.stop();
    assert.unreachable('the node must not start before the service is set up');
  }
});

test('permissions - the operator sets up, nodes serve and upgrade, the publisher publishes, callers call', async (ctx) => {
  const outcomes = await setupServiceBuckets(await as(ctx, 'operator'), 'counters');
  assert.equal(outcomes.map((o) => [o.bucket.name, o.action, o.replicas]), [
    ['molt_counters_state', 'created', 1],
    ['molt_counters_udb', 'created', 1],
    ['molt_counters_upgrades', 'created', 1],
    ['molt_counters_bundles', 'created', 1],
  ]);
  for (const id of ['n1', 'n2'] as const) {
    const node = await startNode(ctx, id);
    ctx.nodes.push(node);
    ctx.managers.push(await startUpgradeManager(node, { trustedKeys: [publisher.publicKey], reconcileMs: 300, tickMs: 200, leaseMs: 1500, logger: silentLogger }));
  }
  ctx.client = await createClient({ service: 'counters', nats: { servers: ctx.nats.url, ...login.caller } });
  for (const key of ['a', 'b', 'c', 'd']) assert.is(await ctx.client.actor(counterV1, key).increment({ by: 5 }), 5);

  const result = await publishUpgrade({ nats: { servers: ctx.nats.url, ...login.publisher }, module: 'test/fixtures/counter-v2.ts', signer: publisher.signer });
  ctx.rolloutId = result.upgrades[0]!.rolloutId;
  const udb = new Udb(await new Kvm(await as(ctx, 'operator')).open('molt_counters_udb'), 'counters');
  await waitForVersions(udb, ['n1', 'n2'], 'counter', 2, 15_000);
  assert.is(await ctx.client.actor(counterV2, 'a').get(), 5);
  assert.equal(ctx.warnings.filter((w) => /"level":"(warn|error)"/.test(w)), [], 'no node logged a warning');
});

test('permissions - a caller discovers the service ($SRV.PING, INFO, STATS): every node answers, with its endpoints', async (ctx) => {
  const nc = await as(ctx, 'caller');
  for (const verb of ['PING', 'INFO', 'STATS']) {
    const inbox = `_INBOX.discovery-${verb}`;
    const ids: string[] = [];
    const sub = nc.subscribe(inbox);
    nc.publish(`$SRV.${verb}.counters`, new Uint8Array(0), { reply: inbox });
    const timer = setTimeout(() => sub.unsubscribe(), 5000);
    for await (const msg of sub) {
      const reply = JSON.parse(new TextDecoder().decode(msg.data)) as { type: string; id: string; endpoints?: Array<{ name: string }> };
      assert.is(reply.type, `io.nats.micro.v1.${verb.toLowerCase()}_response`);
      if (verb !== 'PING') assert.equal(reply.endpoints!.map((e) => e.name), ['counter', 'cache']);
      ids.push(reply.id);
      if (ids.length === 2) break;
    }
    clearTimeout(timer);
    sub.unsubscribe();
    assert.equal(ids.sort(), ['n1', 'n2'], `${verb}: both nodes answer`);
  }
  const one = await nc.request('$SRV.INFO.counters.n2', new Uint8Array(0), { timeout: 5000 });
  assert.is((JSON.parse(new TextDecoder().decode(one.data)) as { id: string }).id, 'n2');
  await refused('a caller publishing on another $SRV verb of the service', async () => {
    await nc.request('$SRV.SCHEMA', new Uint8Array(0), { timeout: 2000 });
  });
});

/** Sends counter `key` an increment whose reply subject is `reply`, as the caller, straight on NATS. */
async function callWithReply(ctx: Ctx, key: string, reply: string): Promise<void> {
  const nc = await as(ctx, 'caller');
  const h = natsHeaders();
  h.set(Header.Version, '2');
  h.set(Header.Message, 'increment');
  nc.publish(callSubject('counters', 'counter', encodeKey(key), 64), createSuperjsonCodec().encode({ by: 1000 }), { reply, headers: h });
  await nc.flush();
}

function droppedWarning(ctx: Ctx, reply: string): boolean {
  return ctx.warnings.some((w) => w.includes('call dropped unrun') && w.includes(JSON.stringify(reply)));
}

test('permissions - a call whose reply subject is an actor\'s KV record does not overwrite it, and does not run', async (ctx) => {
  const state = await new Kvm(await as(ctx, 'operator')).open('molt_counters_state');
  const record = stateKey('counter', encodeKey('b'));
  const before = await state.get(record);
  assert.ok(before, 'actor b has a record');
  const reply = `$KV.molt_counters_state.${record}`;
  await callWithReply(ctx, 'b', reply);
  let after = before;
  await eventually(async () => {
    after = (await state.get(record))!;
    return droppedWarning(ctx, reply) || after.revision !== before!.revision;
  }, 'the node answers the call or drops it', 5000);
  assert.is(after.revision, before!.revision, 'the record was not written');
  assert.is(await ctx.client!.actor(counterV2, 'b').get(), 5, 'the call did not run');
  assert.ok(droppedWarning(ctx, reply), 'the node logged the dropped call with its reply subject');
});

test('permissions - a call whose reply subject is the JetStream API does not purge the state', async (ctx) => {
  const before = await stateMessages(ctx);
  assert.ok(before >= 4);
  const reply = '$JS.API.STREAM.PURGE.KV_molt_counters_state';
  await callWithReply(ctx, 'c', reply);
  let after = before;
  await eventually(async () => {
    after = await stateMessages(ctx);
    return droppedWarning(ctx, reply) || after !== before;
  }, 'the node answers the call or drops it', 5000);
  assert.is(after, before, 'nothing was purged');
  assert.is(await ctx.client!.actor(counterV2, 'c').get(), 5);
});

test('permissions - a node cannot plant a descriptor or retire a version through a stream\'s RePublish', async (ctx) => {
  const n1 = await as(ctx, 'n1');
  const jsm = await jetstreamManager(n1);
  await refused('create a stream that republishes into the upgrades bucket', () =>
    jsm.streams.add({ name: 'PLANT', subjects: ['_INBOX.plant.x'], republish: { src: '_INBOX.plant.x', dest: '$KV.molt_counters_upgrades.upgrade.counter.9' } }),
  );
  await refused('create a stream that republishes into the retirements', () =>
    jsm.streams.add({ name: 'RETIRE', subjects: ['_INBOX.retire.x'], republish: { src: '_INBOX.retire.x', dest: '$KV.molt_counters_udb.retired.counter.1' } }),
  );
  await refused('add a RePublish to the state stream', () =>
    jsm.streams.update('KV_molt_counters_state', { republish: { src: '$KV.molt_counters_state.>', dest: '$KV.molt_counters_upgrades.upgrade.counter.9' } }),
  );
  // Had any stream been made, these would be republished where only the publisher and the operator write.
  n1.publish('_INBOX.plant.x', JSON.stringify({ forged: true }));
  n1.publish('_INBOX.retire.x', JSON.stringify({ type: 'counter', version: 1, by: 'n1', at: Date.now() }));
  await n1.flush();
  const asOperator = await as(ctx, 'operator');
  const upgrades = await new Kvm(asOperator).open('molt_counters_upgrades');
  const udb = new Udb(await new Kvm(asOperator).open('molt_counters_udb'), 'counters');
  await new Promise((r) => setTimeout(r, 300));
  assert.is(await upgrades.get('upgrade.counter.9'), null, 'no descriptor was planted');
  assert.equal(await udb.retirements(), [], 'nothing was retired');
});

test('permissions - a node cannot write another node\'s record, progress or halt; its own it can', async (ctx) => {
  const udbKv: KV = await new Kvm(await as(ctx, 'n1')).open('molt_counters_udb');
  const other = await udbKv.get('nodes.n2');
  assert.ok(other, 'a node reads the others\' records');
  await refused('write another node\'s record', () => udbKv.put('nodes.n2', other!.value));
  await refused('delete another node\'s record', () => udbKv.delete('nodes.n2'));
  await refused('write another node\'s progress', () => udbKv.put(`progress.${ctx.rolloutId}.n2`, '{}'));
  await refused('write another node\'s halt', () => udbKv.put(`control.${ctx.rolloutId}.n2`, '{}'));
  // Its own keys are its to write (its heartbeat rewrites its record anyway).
  await udbKv.put('nodes.n1', (await udbKv.get('nodes.n1'))!.value);
  await udbKv.put(`progress.${ctx.rolloutId}.n1`, (await udbKv.get(`progress.${ctx.rolloutId}.n1`))!.value);
});

test('permissions - a node cannot write a control record, retire a version, or write another service', async (ctx) => {
  const n1 = await as(ctx, 'n1');
  const udbKv = await new Kvm(n1).open('molt_counters_udb');
  await refused('write a control record', () => udbKv.put(`control.${ctx.rolloutId}`, JSON.stringify({ rolloutId: ctx.rolloutId, command: 'rollback', by: 'n1', at: Date.now() })));
  await refused('retire a version', () => udbKv.put('retired.counter.1', JSON.stringify({ type: 'counter', version: 1, by: 'n1', at: Date.now() })));
  await refused('write another service\'s state', () => new Kvm(n1).open('molt_other_state').then((kv) => kv.put('x', 'y')));
});

test('permissions - a node\'s halt key counts only as that node\'s pause', async (ctx) => {
  const n1 = await as(ctx, 'n1');
  const udbKv = await new Kvm(n1).open('molt_counters_udb');
  const udb = new Udb(await new Kvm(await as(ctx, 'operator')).open('molt_counters_udb'), 'counters');
  const id = ctx.rolloutId!;
  const before = await udb.control(id);
  // A forged command under the node's own key is ignored by every reader.
  await udbKv.put(`control.${id}.n1`, JSON.stringify({ rolloutId: id, command: 'rollback', reason: 'forged', by: 'node n1', at: Date.now() }));
  await udbKv.put(`control.${id}.n1`, JSON.stringify({ rolloutId: id, command: 'pause', reason: 'impersonated', by: 'node n2', at: Date.now() }));
  assert.equal(await udb.control(id), before);
  await new Promise((r) => setTimeout(r, 1500)); // several reconciliations of both managers
  assert.equal(Object.fromEntries((await udb.nodes()).map((n) => [n.id, n.versions.counter])), { n1: 2, n2: 2 }, 'no node rolled back');
  // A real halt pauses the rollout; the operator's resume, written later, lifts it.
  await udbKv.put(`control.${id}.n1`, JSON.stringify({ rolloutId: id, command: 'pause', reason: 'transform failures', by: 'node n1', at: Date.now() }));
  assert.equal((await udb.control(id))?.by, 'node n1');
  await udb.setControl({ rolloutId: id, command: 'resume', by: 'operator', at: Date.now() });
  assert.equal((await udb.control(id))?.command, 'resume');
});

test('permissions - only the publisher writes descriptors and bundles', async (ctx) => {
  for (const who of ['n1', 'operator'] as const) {
    const nc = await as(ctx, who);
    const upgrades = await new Kvm(nc).open('molt_counters_upgrades');
    const entry = await upgrades.get('upgrade.counter.2');
    assert.ok(entry, `${who} reads descriptors`);
    await refused(`${who} overwrites a descriptor`, () => upgrades.put('upgrade.counter.2', entry!.value));
    await refused(`${who} adds a descriptor`, () => upgrades.put('upgrade.counter.3', entry!.value));
    await refused(`${who} deletes a descriptor`, () => upgrades.delete('upgrade.counter.2'));
    const bundles = await new Objm(nc).open('molt_counters_bundles');
    await refused(`${who} writes a bundle`, () => bundles.putBlob({ name: 'sha256-evil' }, new TextEncoder().encode('export {}')));
    const jsm = await jetstreamManager(nc);
    await refused(`${who} purges the descriptors`, () => jsm.streams.purge('KV_molt_counters_upgrades'));
    await refused(`${who} deletes the bundles`, () => jsm.streams.delete('OBJ_molt_counters_bundles'));
  }
  // The operator retires (a version no node runs natively any more).
  const udb = new Udb(await new Kvm(await as(ctx, 'operator')).open('molt_counters_udb'), 'counters');
  await udb.retire({ type: 'counter', version: 1, by: 'operator', at: Date.now() });
});

test('permissions - a node cannot purge or delete the state, nor delete the other buckets', async (ctx) => {
  const jsm = await jetstreamManager(await as(ctx, 'n1'));
  const before = await stateMessages(ctx);
  await refused('purge the state', () => jsm.streams.purge('KV_molt_counters_state'));
  await refused('delete an actor record from the stream', () => jsm.streams.deleteMessage('KV_molt_counters_state', 1));
  await refused('delete the state bucket', () => jsm.streams.delete('KV_molt_counters_state'));
  await refused('delete the UDB', () => jsm.streams.delete('KV_molt_counters_udb'));
  await refused('delete the bundles', () => jsm.streams.delete('OBJ_molt_counters_bundles'));
  assert.is(await stateMessages(ctx), before, 'the state is all there');
});

test('permissions - the operator prunes the UDB\'s history; a node cannot purge the UDB', async (ctx) => {
  const n1 = await jetstreamManager(await as(ctx, 'n1'));
  await refused('a node purges the UDB', () => n1.streams.purge('KV_molt_counters_udb', { filter: '$KV.molt_counters_udb.control.>' }));
  const operator = await as(ctx, 'operator');
  const udb = new Udb(await new Kvm(operator).open('molt_counters_udb'), 'counters', operator);
  const kept = (await udb.snapshot()).nodes.map((n) => n.id).sort();
  // Nothing is old enough to go; the read and the purge request are what the operator's rights must allow.
  const result = await pruneHistory(udb, { now: Date.now() });
  assert.is(result.keys, 0);
  assert.is(await udb.purgeKeys(['nodes.nobody']), 0);
  assert.equal((await udb.snapshot()).nodes.map((n) => n.id).sort(), kept);
});

test.run();
