/**
 * The shop against a real nats-server: carts at every version of the chain,
 * served natively, through simulation objects, or refused where they must be.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { createClient, isMoltError, type MoltClient } from 'molt';
import { createNode, silentLogger, startEmbeddedNats, type EmbeddedNats, type MoltNode } from 'molt/node';
import { formatReport, verifyService } from 'molt/verify';
import service from '../src/service.ts';
import { cartV1 } from '../src/cart/v1.ts';
import { cartV2 } from '../src/cart/v2.ts';
import { cartV3 } from '../src/cart/v3.ts';
import { inventoryV1 } from '../src/inventory/v1.ts';

interface Ctx {
  nats: EmbeddedNats;
  node: MoltNode;
  client: MoltClient;
}

/** A suite with its own nats-server and one node, at `versions` (default: the newest of each type). */
function shop(name: string, versions?: Record<string, number>) {
  const test = suite<Ctx>(name);
  test.before(async (ctx) => {
    ctx.nats = await startEmbeddedNats();
    ctx.node = await createNode({ service, nats: { servers: ctx.nats.url }, versions, logger: silentLogger });
    ctx.client = await createClient({ service: service.name, nats: { servers: ctx.nats.url } });
  });
  test.after(async (ctx) => {
    await ctx.client.close();
    await ctx.node.stop();
    await ctx.nats.stop();
  });
  return test;
}

const latest = shop('shop at v3');

latest('cart - a v3 caller fills a cart and checks out with an address', async ({ client }) => {
  const cart = client.actor(cartV3, 'ann');
  await cart.add({ sku: 'tea', qty: 2 });
  await cart.add({ sku: 'cup', qty: 1 });
  await cart.add({ sku: 'tea', qty: 1 });
  await cart.applyCoupon({ code: 'WELCOME' });
  const order = await cart.checkout({ address: '1 Main St' });
  assert.equal(order, { lines: [{ sku: 'cup', qty: 1 }, { sku: 'tea', qty: 3 }], coupon: 'WELCOME', address: '1 Main St' });
  assert.is(await cart.status(), 'checkedOut');
  await cart.add({ sku: 'pot', qty: 1 });
  assert.is((await cart.items()).length, 2, 'a checked-out cart ignores changes');
});

latest('cart - v2 callers are served by the past SO, except checkout, which is disallowed with the reason', async ({ client }) => {
  const v2 = client.actor(cartV2, 'bob');
  await v2.add({ sku: 'tea', qty: 1 });
  await v2.applyCoupon({ code: 'SPRING' });
  assert.is(await v2.coupon(), 'SPRING');
  try {
    await v2.checkout();
    assert.unreachable('checkout through the past SO must be refused');
  } catch (e) {
    assert.ok(isMoltError(e, 'Disallowed'), String(e));
    assert.match((e as Error).message, /shipping address/);
  }
  assert.is(await client.actor(cartV3, 'bob').status(), 'open', 'the refused call changed nothing');
});

latest('cart - v1 callers, two versions behind, go through the past SOs of v2 and v3; checkout is refused along the chain', async ({ client }) => {
  const v1 = client.actor(cartV1, 'cid');
  await v1.add({ sku: 'tea', qty: 2 });
  assert.equal(await v1.items(), [{ sku: 'tea', qty: 2 }]);
  assert.equal(await client.actor(cartV3, 'cid').items(), [{ sku: 'tea', qty: 2 }], 'the same cart, natively');
  try {
    await v1.checkout();
    assert.unreachable('the past SO of v3 refuses checkout without an address');
  } catch (e) {
    assert.ok(isMoltError(e, 'Disallowed'), String(e));
    assert.match((e as Error).message, /shipping address/);
  }
  assert.is(await v1.status(), 'open', 'the refused call changed nothing');
});

latest('inventory - reserves only what is in stock', async ({ client }) => {
  const depot = client.actor(inventoryV1, 'depot-1');
  await depot.restock({ sku: 'tea', qty: 5 });
  assert.is(await depot.reserve({ sku: 'tea', qty: 3 }), true);
  assert.is(await depot.reserve({ sku: 'tea', qty: 3 }), false);
  assert.is(await depot.available({ sku: 'tea' }), 2);
});

latest.run();

const old = shop('shop at v1', { cart: 1 });

old('cart - a v1 node serves v2 and v3 callers through the future SOs, and the upgrades carry their changes', async ({ client, node }) => {
  const v1 = client.actor(cartV1, 'dee');
  const v2 = client.actor(cartV2, 'dee');
  const v3 = client.actor(cartV3, 'dee');
  await v1.add({ sku: 'tea', qty: 1 });
  await v2.applyCoupon({ code: 'SPRING' }); // future SO of v2
  assert.is(await v3.coupon(), 'SPRING'); // future SO of v3, chained onto v2's
  const order = await v3.checkout({ address: '2 Side St' });
  assert.equal(order, { lines: [{ sku: 'tea', qty: 1 }], coupon: 'SPRING', address: '2 Side St' });

  await node.upgrade('cart', 2);
  assert.is(await v2.coupon(), 'SPRING', 'TF 1→2 moved the coupon into the object');
  assert.is(await v3.address(), '2 Side St');
  await node.upgrade('cart', 3);
  assert.is(await v3.address(), '2 Side St', 'TF 2→3 moved the address into the object');
  assert.equal(await v3.checkout({ address: 'elsewhere' }), order, 'checking out again answers the same order');
});

old.run();

// The rules every upgrade must keep (docs/verify.md in Molt): a transform that never
// throws, SOs that answer as the version they simulate, calls through either version
// that see each other. Checked from the declarations alone; `molt publish` checks them too.
const rules = suite('cart: molt verify');

rules('every upgrade of every type keeps the rules of transforms and simulation objects', () => {
  const report = verifyService(service, { seed: 1 });
  assert.ok(report.ok, formatReport(report));
});

rules.run();
