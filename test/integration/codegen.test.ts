/**
 * Code generation in scaffolded projects, through the real `molt` command:
 * - `molt compat` on the cart template prints the matrix its definitions imply;
 * - `molt version add` on every type of every template writes a next version
 *   that type-checks, and the service then serves callers of both versions
 *   (a node at each version, called through a client of each version).
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { installDeps, molt, ownTypeErrors, run, shareDeps, tempDir, typecheck } from '../support/projects.ts';

interface Ctx {
  tmp: ReturnType<typeof tempDir>;
  cart: string;
  /** Fresh projects for `version add`, by template. */
  projects: Record<string, string>;
}
const test = suite<Ctx>('codegen');

test.before(async (ctx) => {
  ctx.tmp = tempDir('molt-codegen-');
  ctx.cart = join(ctx.tmp.path, 'shop');
  const r = await molt(['new', 'shop', '--template', 'cart', '--yes'], ctx.tmp.path);
  assert.is(r.status, 0, r.output);
  await installDeps(ctx.cart);
  ctx.projects = {};
  for (const template of ['counter', 'cart', 'colorset']) {
    const dir = join(ctx.tmp.path, `next-${template}`);
    const made = await molt(['new', dir, '--template', template, '--yes'], ctx.tmp.path);
    assert.is(made.status, 0, made.output);
    shareDeps(ctx.cart, dir);
    ctx.projects[template] = dir;
  }
});

test.after((ctx) => ctx.tmp.remove());

// Node versions 1, 2, 3 in that order. n = native, p = past SO, p2 = chain of
// two past SOs, f = future SO, f2 = future SO chain, D = disallowed, - = unsupported.
const expectedCart: Record<string, string> = {
  'cart@1 add': 'n p p2',
  'cart@1 remove': 'n p p2',
  'cart@1 items': 'n p p2',
  'cart@1 status': 'n p p2',
  // The past SO of v2 serves it by calling v2's checkout, which the past SO of
  // v3 refuses at run time: a handler that is a function counts as served.
  'cart@1 checkout': 'n p p2',
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
const short: Record<string, string> = { native: 'n', past: 'p', future: 'f', disallowed: 'D', unsupported: '-', compatible: 'c' };

test('compat - the cart template’s matrix (--json) is the one its v2 and v3 definitions declare', async ({ cart }) => {
  const r = await molt(['compat', 'cart', '--json'], cart);
  assert.is(r.status, 0, r.output);
  const matrix = JSON.parse(r.output) as { type: string; versions: number[]; rows: Array<{ version: number; message: string; cells: Array<{ node: number; support: string; steps?: number; reason?: string }> }> };
  assert.is(matrix.type, 'cart');
  assert.equal(matrix.versions, [1, 2, 3]);
  const got = Object.fromEntries(matrix.rows.map((row) => [`cart@${row.version} ${row.message}`, row.cells.map((c) => short[c.support]! + ((c.steps ?? 1) > 1 ? c.steps : '')).join(' ')]));
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


/**
 * A script run inside a scaffolded project: for one type, a node at the newest
 * version and then a node at the one before, each called by a client of both
 * versions. Prints one JSON line per call.
 */
const bothVersionsScript = `
import { createClient, isMoltError } from 'molt';
import { createNode, silentLogger, startEmbeddedNats } from 'molt/node';
import service from '../src/service.ts';

// Arguments: a JSON list of [type, message, payload].
const probes = JSON.parse(process.argv[2]!) as Array<[string, string, unknown]>;
const nats = await startEmbeddedNats();
try {
  for (const [typeName, message, payload] of probes) {
    const type = service.types.find((t) => t.name === typeName)!;
    const newest = type.versions.length;
    for (const node of [newest, newest - 1]) {
      const running = await createNode({ service, nats: { servers: nats.url }, versions: { [typeName]: node }, logger: silentLogger });
      const client = await createClient({ service: service.name, nats: { servers: nats.url } });
      for (const caller of [newest - 1, newest]) {
        try {
          const reply = await client.call(typeName, caller, \`key-\${node}\`, message, payload);
          console.log(JSON.stringify({ type: typeName, node, caller, ok: true, reply }));
        } catch (e) {
          console.log(JSON.stringify({ type: typeName, node, caller, ok: false, code: isMoltError(e) ? e.code : String(e), message: (e as Error).message }));
        }
      }
      await client.close();
      await running.stop();
    }
  }
} finally {
  await nats.stop();
}
`;

interface Call {
  type: string;
  node: number;
  caller: number;
  ok: boolean;
  code?: string;
  reply?: unknown;
  message?: string;
}

/** Runs the script in a project for each [type, message, payload]; returns the calls by type. */
async function callBothVersions(dir: string, probes: Array<[string, string, unknown]>): Promise<Record<string, Call[]>> {
  mkdirSync(join(dir, 'scripts'), { recursive: true });
  writeFileSync(join(dir, 'scripts', 'both-versions.ts'), bothVersionsScript);
  const r = await run(process.execPath, ['--import', 'tsx', 'scripts/both-versions.ts', JSON.stringify(probes)], dir);
  assert.is(r.status, 0, r.output);
  const calls = r.output
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as Call);
  const byType: Record<string, Call[]> = {};
  for (const c of calls) (byType[c.type] ??= []).push(c);
  return byType;
}

/** What each (node version, caller version) pair got: the reply, or the error code. */
function outcomes(calls: Call[]): Record<string, unknown> {
  return Object.fromEntries(calls.map((c) => [`node v${c.node}, caller v${c.caller}`, c.ok ? c.reply : c.code]));
}

test('version add - counter: writes src/counter/v2.ts beside v1 and adds it to the chain', async ({ projects }) => {
  const dir = projects.counter!;
  // Refusing stubs here (the default forwards every message: see cart below); the tests after this one call through them.
  const r = await molt(['version', 'add', 'counter', '--no-forward'], dir);
  assert.is(r.status, 0, r.output);
  assert.match(r.output, 'wrote src/counter/v2.ts: counter@2, a copy of counter@1 (3 messages)');
  const service = readFileSync(join(dir, 'src/service.ts'), 'utf8');
  assert.match(service, "import { counterV1 } from './counter/v1.ts';\nimport { counterV2 } from './counter/v2.ts';");
  assert.match(service, "defineActorType('counter', [counterV1, counterV2])");
  const v2 = readFileSync(join(dir, 'src/counter/v2.ts'), 'utf8');
  assert.match(v2, 'export const counterV2 = defineVersion({');
  assert.match(v2, 'version: 2,');
  assert.match(v2, '}).from(counterV1, { transform, past, future });');
  assert.match(v2, "const transform: TransformFunction<typeof counterV1.machine, typeof machine, FutureState, PastState> = ({ value, context }) => ({");
  assert.match(v2, '// increment({ by: number }) → number\n    // e.g. ({ request, target }) => target.increment(request)');
  assert.match(v2, "increment: disallow('the past SO of counter@2 does not serve it yet'),");
  assert.match(v2, "reset: disallow('the future SO of counter@2 does not serve it yet'),");
  assert.not.match(v2, '{{');
});

test('version add - cart (v3 → v4) and inventory (v1 → v2) in one project', async ({ projects }) => {
  const dir = projects.cart!;
  for (const type of ['cart', 'inventory']) {
    const r = await molt(['version', 'add', type], dir);
    assert.is(r.status, 0, r.output);
  }
  assert.ok(existsSync(join(dir, 'src/cart/v4.ts')));
  assert.ok(existsSync(join(dir, 'src/inventory/v2.ts')));
  const v4 = readFileSync(join(dir, 'src/cart/v4.ts'), 'utf8');
  // Exported helpers of the older versions are imported, not copied; v3's own upgrade is not copied.
  assert.match(v4, "import { line, linesOf, type Items } from './v1.ts';");
  assert.match(v4, "import { cartV3 } from './v3.ts';");
  assert.not.match(v4, 'cartV2');
  assert.not.match(v4, 'shipping address');
  assert.match(v4, 'checkout: ({ request, target }) => target.checkout(request),');
});

test('version add - colorset --forward: handlers call the same message on the other version', async ({ projects }) => {
  const dir = projects.colorset!;
  const r = await molt(['version', 'add', 'colorset', '--forward'], dir);
  assert.is(r.status, 0, r.output);
  const v3 = readFileSync(join(dir, 'src/colorset/v3.ts'), 'utf8');
  assert.match(v3, 'getColor: ({ request, target }) => target.getColor(request),');
  assert.match(v3, 'elements: ({ target }) => target.elements(),');
  assert.not.match(v3, "disallow('");
  // The helpers v2's machine and replies use are copied; DEFAULT_COLOR, used only by v2's upgrade, is not.
  assert.match(v3, 'function without(colors: Colors, x: number): Colors {');
  assert.not.match(v3, 'DEFAULT_COLOR');
});

test('version add - every generated project type-checks', async ({ projects }) => {
  for (const [template, dir] of Object.entries(projects)) {
    const r = await typecheck(dir);
    assert.equal(ownTypeErrors(r.output), [], `${template}:\n${r.output}`);
    assert.ok(r.status === 0 || /error TS/.test(r.output), r.output);
  }
});

test('version add - counter: the service serves both versions; the stubs refuse through the SOs until written', async ({ projects }) => {
  const calls = (await callBothVersions(projects.counter!, [['counter', 'increment', { by: 2 }]])).counter!;
  assert.equal(outcomes(calls), {
    'node v2, caller v1': 'Disallowed',
    'node v2, caller v2': 2,
    'node v1, caller v1': 2,
    'node v1, caller v2': 'Disallowed',
  });
  assert.match(calls.find((c) => !c.ok)!.message!, /counter@1 increment is disallowed on this node: the past SO of counter@2 does not serve it yet/);
});

test('version add - cart and inventory: both versions of each answer on nodes of both versions (the SOs forward by default)', async ({ projects }) => {
  const calls = await callBothVersions(projects.cart!, [
    ['cart', 'items', {}],
    ['inventory', 'available', { sku: 'tea' }],
  ]);
  assert.equal(outcomes(calls.cart!), { 'node v4, caller v3': [], 'node v4, caller v4': [], 'node v3, caller v3': [], 'node v3, caller v4': [] });
  assert.equal(outcomes(calls.inventory!), { 'node v2, caller v1': 0, 'node v2, caller v2': 0, 'node v1, caller v1': 0, 'node v1, caller v2': 0 });
});

test('version add - cart and inventory: the freshly added versions pass molt verify', async ({ projects }) => {
  const r = await molt(['verify', '--seed', '5', '--runs', '10', '--small-scope', '200'], projects.cart!);
  assert.is(r.status, 0, r.output);
  assert.match(r.output, /^✓ cart 3→4: 5 rules hold/m);
  assert.match(r.output, /^✓ inventory 1→2: 5 rules hold/m);
});

test('version add - colorset --forward: callers of both versions get answers on nodes of both versions', async ({ projects }) => {
  const calls = (await callBothVersions(projects.colorset!, [['colorset', 'elements', {}]])).colorset!;
  assert.equal(outcomes(calls), { 'node v3, caller v2': [], 'node v3, caller v3': [], 'node v2, caller v2': [], 'node v2, caller v3': [] });
});

test('version add - molt compat sees the generated stubs as standing refusals', async ({ projects }) => {
  const r = await molt(['compat', 'counter', '--json'], projects.counter!);
  assert.is(r.status, 0, r.output);
  const matrix = JSON.parse(r.output);
  assert.equal(
    matrix.rows.map((row: { version: number; message: string; cells: Array<{ support: string }> }) => `${row.version} ${row.message}: ${row.cells.map((c) => c.support).join(' ')}`),
    ['1 increment: native disallowed', '1 get: native disallowed', '1 reset: native disallowed', '2 increment: disallowed native', '2 get: disallowed native', '2 reset: disallowed native'],
  );
});

test('version add - refuses an unknown type, naming the types there are', async ({ projects }) => {
  const r = await molt(['version', 'add', 'basket'], projects.cart!);
  assert.is(r.status, 2, r.output);
  assert.match(r.output, /no defineActorType\('basket', …\).*types found: cart, inventory/);
});

test.run();
