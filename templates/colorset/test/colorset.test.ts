/**
 * ColorSet across an upgrade, against a real nats-server: a node still at
 * version 1 serves v2 callers through the interceptor future SO, then
 * upgrades in place, and serves v1 callers through the past SO.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { createClient, isMoltError, type MoltClient } from 'molt';
import { createNode, silentLogger, startEmbeddedNats, type EmbeddedNats, type MoltNode } from 'molt/node';
import { formatReport, verifyService } from 'molt/verify';
import service from '../src/service.ts';
import { colorsetV1 } from '../src/colorset/v1.ts';
import { colorsetV2, DEFAULT_COLOR } from '../src/colorset/v2.ts';

const test = suite<{ nats: EmbeddedNats; node: MoltNode; client: MoltClient }>('colorset');

test.before(async (ctx) => {
  ctx.nats = await startEmbeddedNats();
  // The node runs colorset@1 natively; it knows version 2 from the service
  // module, so it serves v2 callers through the future SO.
  ctx.node = await createNode({ service, nats: { servers: ctx.nats.url }, versions: { colorset: 1 }, logger: silentLogger });
  ctx.client = await createClient({ service: service.name, nats: { servers: ctx.nats.url } });
});

test.after(async (ctx) => {
  await ctx.client.close();
  await ctx.node.stop();
  await ctx.nats.stop();
});

test('colorset - a v1 node serves v2 callers through the future SO', async ({ client }) => {
  const v2 = client.actor(colorsetV2, 'served');
  await v2.insertColor({ x: 3, color: 'blue' });
  assert.is(await v2.getColor({ x: 3 }), 'blue');
  assert.equal(await client.actor(colorsetV1, 'served').elements(), [3]);
});

test('colorset - sequence requirement: a colour does not outlive a delete made through the object', async ({ client }) => {
  const v1 = client.actor(colorsetV1, 'paper');
  const v2 = client.actor(colorsetV2, 'paper');
  await v2.insertColor({ x: 1, color: 'red' }); // through the SO
  await v1.delete({ x: 1 }); // through the object
  await v1.insert({ x: 1 });
  const color = await v2.getColor({ x: 1 });
  assert.is.not(color, 'red');
  assert.is(color, DEFAULT_COLOR);
});

test('colorset - the upgrade keeps every colour, and v1 callers are served through the past SO', async ({ client, node }) => {
  const v1 = client.actor(colorsetV1, 'upgraded');
  const v2 = client.actor(colorsetV2, 'upgraded');
  await v1.insert({ x: 1 });
  await v2.insertColor({ x: 2, color: 'green' });
  await node.upgrade('colorset', 2);
  assert.is(node.status().types.colorset?.current, 2);
  assert.is(await v2.getColor({ x: 1 }), DEFAULT_COLOR);
  assert.is(await v2.getColor({ x: 2 }), 'green');
  await v1.insert({ x: 5 });
  assert.equal(await v1.elements(), [1, 2, 5]);
  assert.is(await v2.getColor({ x: 5 }), DEFAULT_COLOR);
});

test('colorset - a v2 call with a bad payload is refused with the field named', async ({ client }) => {
  try {
    await client.call('colorset', 2, 'bad', 'insertColor', { x: 'one', color: 'red' });
    assert.unreachable();
  } catch (e) {
    assert.ok(isMoltError(e, 'InvalidPayload'), String(e));
    assert.match((e as Error).message, /field 'x'/);
  }
});

test.run();

// The rules every upgrade must keep (docs/verify.md in Molt): a transform that never
// throws, SOs that answer as the version they simulate, calls through either version
// that see each other. Checked from the declarations alone; `molt publish` checks them too.
const rules = suite('colorset: molt verify');

rules('every upgrade of every type keeps the rules of transforms and simulation objects', () => {
  const report = verifyService(service, { seed: 1 });
  assert.ok(report.ok, formatReport(report));
});

rules.run();
