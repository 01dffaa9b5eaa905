/**
 * Code generation in scaffolded projects, through the real `molt` command:
 * `molt compat` on the cart template prints the matrix its definitions imply.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { join } from 'node:path';
import { installDeps, molt, tempDir } from '../support/projects.ts';

interface Ctx {
  tmp: ReturnType<typeof tempDir>;
  cart: string;
}
const test = suite<Ctx>('codegen');

test.before(async (ctx) => {
  ctx.tmp = tempDir('molt-codegen-');
  ctx.cart = join(ctx.tmp.path, 'shop');
  const r = await molt(['new', 'shop', '--template', 'cart', '--yes'], ctx.tmp.path);
  assert.is(r.status, 0, r.output);
  await installDeps(ctx.cart);
});

test.after((ctx) => ctx.tmp.remove());

// Node versions 1, 2, 3 in that order. n = native, p = past SO, f = future SO,
// f2 = future SO chain, D = disallowed, - = unsupported.
const expectedCart: Record<string, string> = {
  'cart@1 add': 'n p -',
  'cart@1 remove': 'n p -',
  'cart@1 items': 'n p -',
  'cart@1 status': 'n p -',
  'cart@1 checkout': 'n p -',
  'cart@2 add': 'f n p',
  'cart@2 remove': 'f n p',
  'cart@2 items': 'f n p',
  'cart@2 status': 'f n p',
  'cart@2 applyCoupon': 'f n p',
  'cart@2 coupon': 'f n p',
  'cart@2 checkout': 'f n D',
  'cart@3 add': 'f2 f n',
  'cart@3 remove': 'f2 f n',
  'cart@3 items': 'f2 f n',
  'cart@3 status': 'f2 f n',
  'cart@3 applyCoupon': 'f2 f n',
  'cart@3 coupon': 'f2 f n',
  'cart@3 address': 'f2 f n',
  'cart@3 checkout': 'f2 f n',
};
const short: Record<string, string> = { native: 'n', past: 'p', future: 'f', future2: 'f2', disallowed: 'D', unsupported: '-', compatible: 'c' };

test('compat - the cart template’s matrix (--json) is the one its v2 and v3 definitions declare', async ({ cart }) => {
  const r = await molt(['compat', 'cart', '--json'], cart);
  assert.is(r.status, 0, r.output);
  const matrix = JSON.parse(r.output) as { type: string; versions: number[]; rows: Array<{ version: number; message: string; cells: Array<{ node: number; support: string; reason?: string }> }> };
  assert.is(matrix.type, 'cart');
  assert.equal(matrix.versions, [1, 2, 3]);
  const got = Object.fromEntries(matrix.rows.map((row) => [`cart@${row.version} ${row.message}`, row.cells.map((c) => short[c.support]).join(' ')]));
  assert.equal(got, expectedCart);
  const refused = matrix.rows.find((row) => row.version === 2 && row.message === 'checkout')!.cells[2]!;
  assert.match(refused.reason!, /shipping address/);
});

test('compat - the table and Markdown forms, and every type when none is named', async ({ cart }) => {
  const table = await molt(['compat', 'cart'], cart);
  assert.is(table.status, 0, table.output);
  assert.match(table.output, /^\s+checkout\s+future SO\s+native\s+DISALLOWED$/m);
  const md = await molt(['compat', '--markdown'], cart);
  assert.is(md.status, 0, md.output);
  assert.match(md.output, '### `cart`');
  assert.match(md.output, '### `inventory`');
  assert.match(md.output, '| cart@2 | `checkout` | future SO | native | **disallowed** |');
});

test('compat - an unknown type is refused with the types the service has', async ({ cart }) => {
  const r = await molt(['compat', 'basket'], cart);
  assert.is(r.status, 2, r.output);
  assert.match(r.output, /has no actor type 'basket'; it has: cart, inventory/);
});

test.run();
