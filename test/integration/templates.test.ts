/**
 * `molt new`: every template is scaffolded with the real command into a
 * temporary folder, installed, type-checked, and its own tests are run. One
 * `npm install` serves all templates: they declare the same dependencies
 * (checked below), so the others link to the first one's node_modules.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { spawn, spawnSync } from 'node:child_process';
import { listTemplates } from '../../codegen/scaffold.ts';
import { startEmbeddedNats } from '../../runtime/index.ts';
import { declaredDeps, installDeps, molt, moltBin, moltRoot, ownTypeErrors, run, shareDeps, tempDir } from '../support/projects.ts';

const templates = listTemplates().map((t) => t.name);
const test = suite<{ tmp: ReturnType<typeof tempDir> }>('templates');

const projectOf = (tmp: { path: string }, template: string) => join(tmp.path, `my-${template}`);

test.before(async (ctx) => {
  ctx.tmp = tempDir('molt-templates-');
  for (const template of templates) {
    const r = await molt(['new', `my-${template}`, '--template', template, '--yes'], ctx.tmp.path);
    assert.is(r.status, 0, r.output);
  }
  const [first, ...rest] = templates;
  await installDeps(projectOf(ctx.tmp, first!));
  for (const template of rest) shareDeps(projectOf(ctx.tmp, first!), projectOf(ctx.tmp, template));
});

test.after((ctx) => ctx.tmp.remove());

test('templates - the shipped set includes counter, cart and colorset', () => {
  for (const name of ['counter', 'cart', 'colorset']) assert.ok(templates.includes(name), `missing template ${name}; have ${templates.join(', ')}`);
});

test('templates - every template declares the same dependencies (so one install serves all)', ({ tmp }) => {
  const [first, ...rest] = templates;
  for (const template of rest) assert.equal(declaredDeps(projectOf(tmp, template)), declaredDeps(projectOf(tmp, first!)), template);
});

test('templates - the project depends on this Molt by an absolute file: path and pins its versions', ({ tmp }) => {
  const pkg = JSON.parse(readFileSync(join(projectOf(tmp, 'counter'), 'package.json'), 'utf8'));
  const molts = JSON.parse(readFileSync(join(moltRoot, 'package.json'), 'utf8'));
  assert.is(pkg.name, 'my-counter');
  assert.is(pkg.dependencies.molt, `file:${moltRoot}`);
  assert.is(pkg.dependencies.xstate, molts.dependencies.xstate);
  assert.is(pkg.devDependencies.typescript, molts.devDependencies.typescript);
});

for (const template of templates) {
  test(`templates - ${template}: scaffolds a service module, a test, a README and .gitignore, with no placeholder left`, ({ tmp }) => {
    const dir = projectOf(tmp, template);
    for (const file of ['package.json', 'tsconfig.json', '.gitignore', 'README.md', 'src/service.ts']) assert.ok(existsSync(join(dir, file)), `${template}: ${file}`);
    assert.not.ok(existsSync(join(dir, 'template.json')), 'template.json is metadata, not part of the project');
    const service = readFileSync(join(dir, 'src/service.ts'), 'utf8');
    assert.match(service, `defineService('my-${template}'`);
    assert.not.match(service + readFileSync(join(dir, 'README.md'), 'utf8'), '{{');
  });

  test(`templates - ${template}: type-checks (npm run typecheck)`, async ({ tmp }) => {
    const r = await run('npm', ['run', 'typecheck'], projectOf(tmp, template));
    assert.equal(ownTypeErrors(r.output), [], r.output);
    assert.ok(r.status === 0 || /error TS/.test(r.output), r.output);
  });

  test(`templates - ${template}: its own tests pass (npm test)`, async ({ tmp }) => {
    const r = await run('npm', ['test'], projectOf(tmp, template));
    assert.is(r.status, 0, r.output);
    assert.match(r.output, /Passed:\s+[1-9]/);
    assert.match(r.output, /Total:\s+(\d+)\s+Passed:\s+\1/);
  });
}

test('templates - the README command `npx molt dev src/service.ts` starts a node with an embedded nats-server', async ({ tmp }) => {
  const dir = projectOf(tmp, 'counter');
  const env: NodeJS.ProcessEnv = { ...process.env, FORCE_COLOR: '0' };
  delete env.NATS_URL;
  // Its own process group, so the interrupt reaches npx and the node under it,
  // as Ctrl-C in a terminal does.
  const child = spawn('npx', ['molt', 'dev', 'src/service.ts'], { cwd: dir, env, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  let out = '';
  child.stdout.on('data', (d) => (out += d));
  child.stderr.on('data', (d) => (out += d));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const signal = (sig: NodeJS.Signals) => {
    try {
      process.kill(-child.pid!, sig);
    } catch {
      // already gone
    }
  };
  try {
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`molt dev did not start within 20 s:\n${out}`)), 20_000);
      const check = () => /serving my-counter \(counter@1\)/.test(out) && (clearTimeout(timer), resolve());
      child.stdout.on('data', check);
      void exited.then(() => (clearTimeout(timer), reject(new Error(`molt dev exited early:\n${out}`))));
    });
  } finally {
    signal('SIGINT');
    const killer = setTimeout(() => signal('SIGKILL'), 5000);
    await exited;
    clearTimeout(killer);
  }
});

test('templates - molt new refuses a folder that is not empty, and says how to proceed', async ({ tmp }) => {
  const dir = join(tmp.path, 'occupied');
  mkdirSync(dir);
  writeFileSync(join(dir, 'notes.txt'), 'mine');
  const r = await molt(['new', 'occupied', '--template', 'counter', '--yes'], tmp.path);
  assert.is(r.status, 2, r.output);
  assert.match(r.output, /not empty.*--force/);
  assert.is(readFileSync(join(dir, 'notes.txt'), 'utf8'), 'mine');
});

test('templates - molt new names the templates when given an unknown one', async ({ tmp }) => {
  const r = await molt(['new', 'x', '--template', 'nope', '--yes'], tmp.path);
  assert.is(r.status, 2, r.output);
  assert.match(r.output, /no template 'nope'; choose one of: .*counter/);
});

test('templates - --name sets the service name; an invalid one is refused with the rule', async ({ tmp }) => {
  const ok = await molt(['new', 'named', '--template', 'counter', '--name', 'shop-eu', '--yes'], tmp.path);
  assert.is(ok.status, 0, ok.output);
  assert.match(readFileSync(join(tmp.path, 'named/src/service.ts'), 'utf8'), "defineService('shop-eu'");
  const bad = await molt(['new', 'named2', '--template', 'counter', '--name', 'Shop!', '--yes'], tmp.path);
  assert.is(bad.status, 2, bad.output);
  assert.match(bad.output, /lower-case letters/);
});

test('templates - cart: its release script publishes with valid canary parameters (dry run)', async ({ tmp }) => {
  const dir = projectOf(tmp, 'cart');
  const nats = await startEmbeddedNats();
  try {
    const keys = await molt(['keys', 'generate', '--out', 'publisher.nk'], dir);
    assert.is(keys.status, 0, keys.output);
    const r = await run('npm', ['run', 'release', '--', '--dry-run'], dir, { NATS_URL: nats.url, MOLT_PUBLISHER_KEY: 'publisher.nk' });
    assert.is(r.status, 0, r.output);
    assert.match(r.output, 'would publish cart 2→3: rollout cart-v3-');
    assert.match(r.output, 'schedule canary {"canaries":1,"healthyForMs":30000,"batch":2}');
  } finally {
    await nats.stop();
  }
});

// `script` gives the command a terminal, so molt new asks its questions.
const hasScript = spawnSync('sh', ['-c', 'command -v script']).status === 0;
test('templates - without --yes, on a terminal, molt new asks for the folder, the template and the name', async ({ tmp }) => {
  if (!hasScript) return console.log('  (skipped: no `script` command to provide a terminal)');
  const answers = 'asked\ncolorset\npaper-set\n';
  const r = await run('sh', ['-c', `(sleep 1; printf '${answers}'; sleep 3) | script -qec "${process.execPath} ${moltBin} new" /dev/null`], tmp.path);
  assert.is(r.status, 0, r.output);
  assert.match(r.output, 'Folder for the new service [molt-service]: ');
  assert.match(r.output, 'Template (cart, colorset, counter) [counter]: ');
  assert.match(r.output, 'Service name [asked]: ');
  assert.match(readFileSync(join(tmp.path, 'asked/src/service.ts'), 'utf8'), "defineService('paper-set', [colorset])");
});

test.run();
