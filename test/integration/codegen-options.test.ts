/**
 * `molt version add` options beyond the default skeleton, on fresh copies of
 * the counter template (type-checked with the project's own tsc):
 * - `--down` writes a `down` stub: the identity, typed from the new state to
 *   the old one, so it carries a fresh copy's state back unchanged and stops
 *   compiling once the two states differ;
 * - `--compatible` writes `compatible: true` instead of a past SO, and the
 *   file stops compiling once a message of the previous version is removed;
 * - the version chain keeps its layout (one per line, trailing comma).
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { installDeps, molt, ownTypeErrors, run, shareDeps, tempDir, typecheck } from '../support/projects.ts';

interface Ctx {
  tmp: ReturnType<typeof tempDir>;
  /** The project whose node_modules the others share. */
  installed: string;
  count: number;
}
const test = suite<Ctx>('codegen options');

test.before(async (ctx) => {
  ctx.tmp = tempDir('molt-codegen-options-');
  ctx.count = 0;
  ctx.installed = join(ctx.tmp.path, 'installed');
  const r = await molt(['new', ctx.installed, '--template', 'counter', '--yes'], ctx.tmp.path);
  assert.is(r.status, 0, r.output);
  await installDeps(ctx.installed);
});

test.after((ctx) => ctx.tmp.remove());

/** A fresh counter project sharing the installed dependencies. */
async function freshCounter(ctx: Ctx): Promise<string> {
  const dir = join(ctx.tmp.path, `p${++ctx.count}`);
  const r = await molt(['new', dir, '--template', 'counter', '--yes'], ctx.tmp.path);
  assert.is(r.status, 0, r.output);
  shareDeps(ctx.installed, dir);
  return dir;
}

/** Runs a module in the project (with its tsx) and returns what it printed. */
async function evaluate(dir: string, code: string): Promise<string> {
  writeFileSync(join(dir, 'probe.ts'), code);
  const r = await run(process.execPath, ['--import', 'tsx', 'probe.ts'], dir);
  assert.is(r.status, 0, r.output);
  return r.output.trim();
}

/** The project's own type errors in `file`, with the 1-based line each is on. */
async function errorsIn(dir: string, file: string): Promise<Array<{ line: number; text: string }>> {
  const r = await typecheck(dir);
  return ownTypeErrors(r.output)
    .filter((l) => l.startsWith(`${file}(`))
    .map((l) => ({ line: Number(/\((\d+),/.exec(l)![1]), text: l }));
}

function lineOf(text: string, needle: string): number {
  const at = text.indexOf(needle);
  assert.ok(at >= 0, `no ${needle} in:\n${text}`);
  return text.slice(0, at).split('\n').length;
}

test('version add --down - writes a typed identity down stub, wired into .from()', async (ctx) => {
  const dir = await freshCounter(ctx);
  const r = await molt(['version', 'add', 'counter', '--down'], dir);
  assert.is(r.status, 0, r.output);
  assert.match(r.output, 'its transform and its down transform are the identity');
  const v2 = readFileSync(join(dir, 'src/counter/v2.ts'), 'utf8');
  assert.match(v2, "type VersionState } from 'molt';");
  assert.match(v2, 'const down: (state: VersionState<typeof machine>) => VersionState<typeof counterV1.machine> = ({ value, context }) => ({');
  assert.match(v2, '}).from(counterV1, { transform, past, future, down });');
  assert.equal(await errorsIn(dir, 'src/counter/v2.ts'), []);
  // At run time it carries a fresh copy's state back unchanged.
  const out = await evaluate(
    dir,
    "import { counterV2 } from './src/counter/v2.ts';\n" +
      "console.log(JSON.stringify(counterV2.upgrade!.down!({ value: {}, context: { count: 7 } })));\n",
  );
  assert.equal(JSON.parse(out), { value: {}, context: { count: 7 } });
});

test('version add --down - the stub stops compiling once the new state differs from the old', async (ctx) => {
  const dir = await freshCounter(ctx);
  assert.is((await molt(['version', 'add', 'counter', '--down'], dir)).status, 0);
  const file = join(dir, 'src/counter/v2.ts');
  // Version 2 calls the count `total`: the identity would carry `total` into a
  // counter@1 state that needs `count`.
  const v2 = readFileSync(file, 'utf8').replace(/\bcount\b/g, 'total');
  writeFileSync(file, v2);
  const errors = await errorsIn(dir, 'src/counter/v2.ts');
  const down = lineOf(v2, 'const down:');
  assert.ok(
    errors.some((e) => e.line > down && e.line <= down + 3 && e.text.includes("Property 'count' is missing")),
    errors.map((e) => e.text).join('\n'),
  );
});

test('version add - without --down, no down is written (molt rollback refuses the version)', async (ctx) => {
  const dir = await freshCounter(ctx);
  assert.is((await molt(['version', 'add', 'counter'], dir)).status, 0);
  const v2 = readFileSync(join(dir, 'src/counter/v2.ts'), 'utf8');
  assert.not.match(v2, 'down');
  assert.match(v2, '}).from(counterV1, { transform, past, future });');
});

test('version add --compatible - declares compatible: true instead of a past SO; the service accepts it', async (ctx) => {
  const dir = await freshCounter(ctx);
  const r = await molt(['version', 'add', 'counter', '--compatible'], dir);
  assert.is(r.status, 0, r.output);
  assert.match(r.output, 'it declares compatible: true (no past SO)');
  const v2 = readFileSync(join(dir, 'src/counter/v2.ts'), 'utf8');
  assert.match(v2, '}).from(counterV1, { transform, compatible: true, future });');
  assert.not.match(v2, 'const past');
  assert.not.match(v2, 'the past SO of counter@2');
  // The future SO is still written (callers of v2 on a node at v1), forwarding
  // each message the two versions share.
  assert.match(v2, /const future[\s\S]*reset: \(\{ (request, )?target \}\) => target\.reset\(/);
  assert.equal(await errorsIn(dir, 'src/counter/v2.ts'), []);
  const out = await evaluate(
    dir,
    "import service from './src/service.ts';\nimport { counterV2 } from './src/counter/v2.ts';\n" +
      'console.log(JSON.stringify({ compatible: counterV2.upgrade?.compatible, past: counterV2.upgrade?.past ?? null, service: service.name }));\n',
  );
  assert.equal(JSON.parse(out), { compatible: true, past: null, service: 'p' + ctx.count });
});

test('version add --compatible - removing a message of the previous version stops the file compiling', async (ctx) => {
  const dir = await freshCounter(ctx);
  assert.is((await molt(['version', 'add', 'counter', '--compatible', '--down'], dir)).status, 0);
  const file = join(dir, 'src/counter/v2.ts');
  const generated = readFileSync(file, 'utf8');
  assert.match(generated, '{ transform, compatible: true, future, down }');
  const v2 = generated
    .replace('  get: ask({}, P.number),\n', '')
    .replace('    get: ({ snapshot }) => snapshot.context.count,\n', '')
    .replace("    get: disallow('the future SO of counter@2 does not serve it yet'),\n", '');
  assert.is.not(v2, generated);
  writeFileSync(file, v2);
  const errors = await errorsIn(dir, 'src/counter/v2.ts');
  const from = lineOf(v2, '}).from(counterV1');
  assert.ok(errors.some((e) => e.line === from), errors.map((e) => e.text).join('\n'));
});

test('version add - a chain written one version per line, with a trailing comma, keeps its layout', async (ctx) => {
  const dir = await freshCounter(ctx);
  const service = join(dir, 'src/service.ts');
  writeFileSync(service, readFileSync(service, 'utf8').replace('[counterV1]', '[\n  counterV1,\n]'));
  assert.is((await molt(['version', 'add', 'counter'], dir)).status, 0);
  assert.match(readFileSync(service, 'utf8'), "defineActorType('counter', [\n  counterV1,\n  counterV2,\n]);");
  assert.equal(await errorsIn(dir, 'src/service.ts'), []);
});

test('version add - a version defined from a variable is refused, saying which form to write', async (ctx) => {
  const dir = await freshCounter(ctx);
  const v1 = join(dir, 'src/counter/v1.ts');
  writeFileSync(v1, readFileSync(v1, 'utf8').replace('export const counterV1 = defineVersion({', 'const definition = ({').replace(/\}\);\s*$/, '});\nexport const counterV1 = defineVersion(definition);\n'));
  const r = await molt(['version', 'add', 'counter'], dir);
  assert.is.not(r.status, 0, r.output);
  assert.match(r.output, 'write `export const counterV1 = defineVersion({ … })`, not defineVersion(someObject)');
});

test.run();
