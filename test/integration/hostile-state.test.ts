/**
 * What one caller (or one bad record) can do to an actor, and must not:
 * - a state record a node cannot read answers a typed `StateUnreadable` that
 *   names the key, leaves the node idle (no reload loop), shows in the node's
 *   record, and serves again once the record is repaired;
 * - `NaN` and `±Infinity` smuggled in through superjson `meta` are refused
 *   (`InvalidPayload`, naming the field) unless the message declares
 *   `nonFinite: true`;
 * - a body larger than the server accepts is refused by the client, not
 *   retryable; state that would grow past it answers `StateTooLarge`, not
 *   retryable, and leaves the actor serving calls that do not grow it — also
 *   calls that shared a batch with the one that would have.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { Kvm, type KV } from '@nats-io/kv';
import { assign, setup } from 'xstate';
import { ask, createClient, createNode, defineActorType, defineService, defineVersion, isMoltError, P, silentLogger, type EventsOf, type MoltClient, type MoltNode } from '../../runtime/index.ts';
import { bucketNames, encodeKey, stateKey } from '../../runtime/internal.ts';
import { nodeInternals } from '../../runtime/node/internals.ts';
import { Udb } from '../../runtime/udb/index.ts';
import { statusView } from '../../runtime/operate/status.ts';
import { startEmbeddedNats, type EmbeddedNats } from '../support/nats.ts';
import { rawCall } from '../support/wire.ts';

/** The server's max_payload: small, so growing past it is cheap. */
const SERVER_MAX_PAYLOAD = 64 * 1024;

const bagMessages = {
  add: ask({ text: P.string }, P.number),
  count: ask({}, P.number),
  score: ask({ points: P.number }, P.number),
  weigh: ask({ grams: P.number }, P.number, { nonFinite: true }),
};

const bagV1 = defineVersion({
  type: 'bag',
  version: 1,
  messages: bagMessages,
  machine: setup({ types: { context: {} as { items: string[]; points: number; grams: number }, events: {} as EventsOf<typeof bagMessages> } }).createMachine({
    context: { items: [], points: 0, grams: 0 },
    on: {
      add: { actions: assign({ items: ({ context, event }) => [...context.items, event.text] }) },
      score: { actions: assign({ points: ({ context, event }) => context.points + event.points }) },
      weigh: { actions: assign({ grams: ({ event }) => event.grams }) },
    },
  }),
  replies: {
    add: ({ snapshot }) => snapshot.context.items.length,
    count: ({ snapshot }) => snapshot.context.items.length,
    score: ({ snapshot }) => snapshot.context.points,
    weigh: ({ snapshot }) => snapshot.context.grams,
  },
});

const service = defineService('bags', [defineActorType('bag', [bagV1])]);

interface Ctx {
  nats: EmbeddedNats;
  node: MoltNode;
  client: MoltClient;
  nc: NatsConnection;
  state: KV;
}

const test = suite<Ctx>('hostile state');

test.before(async (ctx) => {
  ctx.nats = await startEmbeddedNats({ config: `max_payload: ${SERVER_MAX_PAYLOAD}\n` });
  ctx.node = await createNode({ service, nats: { servers: ctx.nats.url }, maxPayload: SERVER_MAX_PAYLOAD, logger: silentLogger });
  ctx.client = await createClient({ service: 'bags', nats: { servers: ctx.nats.url } });
  ctx.nc = await connect({ servers: ctx.nats.url });
  ctx.state = await new Kvm(ctx.nc).open(bucketNames('bags').state);
});

test.after(async (ctx) => {
  await ctx.nc?.close();
  await ctx.client?.close();
  await ctx.node?.stop();
  await ctx.nats?.stop();
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function expectCode(p: Promise<unknown>, code: string): Promise<{ message: string; retryable: boolean; data: Record<string, unknown> }> {
  try {
    await p;
  } catch (e) {
    assert.ok(isMoltError(e), String(e));
    assert.is(e.code, code, e.message);
    return e;
  }
  assert.unreachable(`expected ${code}`);
  throw new Error('unreachable');
}

test('unreadable state - a record Molt did not write answers StateUnreadable naming the key; the node stays idle', async (ctx) => {
  const key = 'broken';
  const recordKey = stateKey('bag', encodeKey(key));
  const bag = ctx.client.actor(bagV1, key);
  const cases = ['not json at all', '{"json":{"value":{},"context":{}}}', '{"json":{"v":1.5,"value":{},"context":{}}}', '{"json":[1,2,3]}'];
  for (const garbage of cases) {
    await ctx.state.put(recordKey, new TextEncoder().encode(garbage));
    const revision = (await ctx.state.get(recordKey))!.revision;
    // A freshly written record: the node must reload it (it may hold the actor from the previous case).
    await ctx.node.stop();
    ctx.node = await createNode({ service, nats: { servers: ctx.nats.url }, maxPayload: SERVER_MAX_PAYLOAD, logger: silentLogger });
    const e = await expectCode(bag.count(), 'StateUnreadable');
    assert.is(e.retryable, false, garbage);
    assert.ok(e.message.includes(recordKey), `the error names the record: ${e.message}`);
    assert.is(e.data.revision, revision);
    assert.is((await ctx.state.get(recordKey))!.revision, revision, 'the record was not touched');
  }

  // Idle: no reload loop burning CPU between calls.
  const before = process.cpuUsage();
  await sleep(1000);
  const used = process.cpuUsage(before);
  assert.ok((used.user + used.system) / 1000 < 300, `the process used ${(used.user + used.system) / 1000} ms of CPU in an idle second`);

  // Every other actor serves; the node reports the record in the UDB.
  assert.is(await ctx.client.actor(bagV1, 'fine').add({ text: 'x' }), 1);
  const udb = nodeInternals(ctx.node).udb;
  let reported: unknown[] = [];
  for (let i = 0; i < 30 && reported.length === 0; i++) {
    const rec = (await udb.get(`nodes.${ctx.node.id}`))?.json<{ unreadable?: Array<{ key: string }> }>();
    reported = rec?.unreadable?.filter((u) => u.key === key) ?? [];
    if (reported.length === 0) await sleep(200);
  }
  assert.is(reported.length, 1, 'the node record lists the unreadable actor');
  const view = statusView('bags', await new Udb(udb, 'bags').snapshot(), Date.now(), 5000);
  assert.ok(
    view.problems.some((p) => p.code === 'StateUnreadable' && p.key === `state.bag.${key}` && p.nodeId === ctx.node.id),
    `molt status shows it among the problems: ${JSON.stringify(view.problems)}`,
  );

  // Stopping is not held up by it.
  const stopStarted = Date.now();
  await ctx.node.stop();
  assert.ok(Date.now() - stopStarted < 3000, `stop took ${Date.now() - stopStarted} ms`);

  // Repaired (deleted): the actor starts fresh.
  await ctx.state.delete(recordKey);
  ctx.node = await createNode({ service, nats: { servers: ctx.nats.url }, maxPayload: SERVER_MAX_PAYLOAD, logger: silentLogger });
  assert.is(await bag.add({ text: 'again' }), 1);
});

test('non-finite numbers - NaN and Infinity through superjson meta are refused unless the message accepts them', async (ctx) => {
  const bag = ctx.client.actor(bagV1, 'numbers');
  assert.is(await bag.score({ points: 2 }), 2);
  for (const [value, meta] of [
    ['NaN', 'number'],
    ['Infinity', 'number'],
    ['-Infinity', 'number'],
  ] as const) {
    const reply = await rawCall(ctx.nc, {
      service: 'bags',
      type: 'bag',
      key: 'numbers',
      message: 'score',
      body: JSON.stringify({ json: { points: value }, meta: { values: { points: [meta] }, v: 1 } }),
    });
    assert.is(reply.status, 'error', reply.text);
    assert.is(reply.json.code, 'InvalidPayload', reply.text);
    assert.is(reply.json.data.path, 'points');
    assert.match(reply.json.message, /finite/);
  }
  assert.is(await bag.score({ points: 0 }), 2, 'the state never saw them');
  // A message declared with { nonFinite: true } takes them.
  assert.ok(Number.isNaN(await bag.weigh({ grams: Number.NaN })));
  assert.is(await bag.weigh({ grams: Number.POSITIVE_INFINITY }), Number.POSITIVE_INFINITY);
});

test('too large - a body over the server limit fails at the client, permanently', async (ctx) => {
  const e = await expectCode(ctx.client.actor(bagV1, 'huge').add({ text: 'x'.repeat(2 * SERVER_MAX_PAYLOAD) }), 'PayloadTooLarge');
  assert.is(e.retryable, false);
  assert.is(e.data.limit, SERVER_MAX_PAYLOAD);
});

test('too large - state that would outgrow a record answers StateTooLarge; the actor keeps serving smaller calls', async (ctx) => {
  const bag = ctx.client.actor(bagV1, 'growing');
  const chunk = 'y'.repeat(18 * 1024);
  for (let i = 1; i <= 3; i++) assert.is(await bag.add({ text: chunk }), i);
  const e = await expectCode(bag.add({ text: chunk }), 'StateTooLarge');
  assert.is(e.retryable, false, 'retrying cannot help');
  assert.is(await bag.count(), 3, 'not applied');
  // One batch: two small calls around one that grows the state too far. Only that one fails.
  const [a, big, b] = await Promise.allSettled([bag.add({ text: 'a' }), bag.add({ text: chunk }), bag.add({ text: 'b' })]);
  assert.is(a.status, 'fulfilled', String((a as PromiseRejectedResult).reason));
  assert.is(b.status, 'fulfilled', String((b as PromiseRejectedResult).reason));
  assert.is(big.status, 'rejected');
  assert.ok(isMoltError((big as PromiseRejectedResult).reason, 'StateTooLarge'));
  assert.is(await bag.count(), 5);
});

test.run();
