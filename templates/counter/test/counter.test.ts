/**
 * The counter service against a real nats-server (started on a free port by
 * Molt's `startEmbeddedNats`; needs `nats-server` on PATH or NATS_SERVER_BIN).
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { createClient, type MoltClient } from 'molt';
import { createNode, silentLogger, startEmbeddedNats, type EmbeddedNats, type MoltNode } from 'molt/node';
import { formatReport, verifyService } from 'molt/verify';
import service from '../src/service.ts';
import { counterV1 } from '../src/counter/v1.ts';

const test = suite<{ nats: EmbeddedNats; node: MoltNode; client: MoltClient }>('counter');

test.before(async (ctx) => {
  ctx.nats = await startEmbeddedNats();
  ctx.node = await createNode({ service, nats: { servers: ctx.nats.url }, logger: silentLogger });
  ctx.client = await createClient({ service: service.name, nats: { servers: ctx.nats.url } });
});

test.after(async (ctx) => {
  await ctx.client.close();
  await ctx.node.stop();
  await ctx.nats.stop();
});

test('counter - increments and reads back', async ({ client }) => {
  const counter = client.actor(counterV1, 'alice');
  assert.is(await counter.increment({ by: 2 }), 2);
  assert.is(await counter.increment({ by: 3 }), 5);
  assert.is(await counter.get(), 5);
});

test('counter - reset sets it back to zero', async ({ client }) => {
  const counter = client.actor(counterV1, 'bob');
  await counter.increment({ by: 7 });
  await counter.reset();
  assert.is(await counter.get(), 0);
});

test('counter - each key is its own actor', async ({ client }) => {
  await client.actor(counterV1, 'carol').increment({ by: 1 });
  assert.is(await client.actor(counterV1, 'dave').get(), 0);
});

test.run();

// The rules every upgrade must keep (docs/verify.md in Molt): a transform that never
// throws, SOs that answer as the version they simulate, calls through either version
// that see each other. Checked from the declarations alone; `molt publish` checks them too.
const rules = suite('counter: molt verify');

rules('every upgrade of every type keeps the rules of transforms and simulation objects', () => {
  const report = verifyService(service, { seed: 1 });
  assert.ok(report.ok, formatReport(report));
});

rules.run();
