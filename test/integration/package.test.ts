/**
 * The package as a user gets it: `npm pack` makes the tarball (of the dist/
 * the test runner built; a user's `npm pack` builds it first), and an empty
 * folder outside the repository uses it the way the getting-started page says. `create-molt` from the tarball scaffolds the cart
 * template with `molt` as a version dependency; the project installs (the
 * tarball standing in for the registry's copy of that version, the other
 * packages from the npm registry), type-checks against the shipped
 * declarations, runs its tests, starts a node with `molt dev`, publishes its
 * versions 2 and 3, and the node upgrades to them.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { startEmbeddedNats, type EmbeddedNats } from '../../runtime/index.ts';
import { moltRoot, packMolt, run, runOk, tempDir, type Packed } from '../support/projects.ts';

const test = suite<{ tmp: ReturnType<typeof tempDir>; tarball: string; packed: Packed; project: string; version: string }>('package');

test.before(async (ctx) => {
  ctx.tmp = tempDir('molt-package-');
  ctx.version = (JSON.parse(readFileSync(join(moltRoot, 'package.json'), 'utf8')) as { version: string }).version;
  ({ tarball: ctx.tarball, packed: ctx.packed } = await packMolt(ctx.tmp.path));
  ctx.project = join(ctx.tmp.path, 'app', 'shop');
});

test.after((ctx) => ctx.tmp.remove());

test('package - the tarball holds compiled code, declarations, bins and templates, and no TypeScript sources or tests', ({ packed, tarball }) => {
  assert.ok(existsSync(tarball), tarball);
  const paths = packed.files.map((f) => f.path);
  for (const file of ['package.json', 'bin/molt.js', 'bin/create-molt.js', 'dist/runtime/index.js', 'dist/runtime/index.d.ts', 'dist/runtime/testing.js', 'dist/runtime/cli/main.js', 'templates/counter/package.json']) {
    assert.ok(paths.includes(file), `${file} missing from the tarball`);
  }
  const stray = paths.filter((p) => /\.ts$/.test(p) && !p.endsWith('.d.ts') && !p.startsWith('templates/'));
  assert.equal(stray, [], 'TypeScript sources in the tarball');
  assert.equal(paths.filter((p) => /^(test|bench|demo|runtime|actors|codegen)\//.test(p)), [], 'repository-only folders in the tarball');
  const pkg = JSON.parse(readFileSync(join(moltRoot, 'package.json'), 'utf8')) as { dependencies: Record<string, string> };
  for (const name of ['tsx', 'ts-morph', 'moleculer', 'nats']) assert.not.ok(name in pkg.dependencies, `${name} is not a dependency of the library`);
});

test('package - create-molt from the tarball scaffolds a project that depends on molt by version', async ({ tmp, tarball, project, version }) => {
  mkdirSync(join(tmp.path, 'app'));
  await runOk('npm', ['exec', '--yes', `--package=${tarball}`, '--', 'create-molt', 'shop', '--template', 'cart', '--yes'], join(tmp.path, 'app'));
  const pkg = JSON.parse(readFileSync(join(project, 'package.json'), 'utf8')) as { dependencies: Record<string, string> };
  assert.is(pkg.dependencies.molt, version);
});

test('package - the project installs, type-checks against the shipped declarations, and its tests pass', async ({ tarball, project, version }) => {
  // The tarball stands in for the registry's molt@<version>; --no-save keeps the version dependency.
  await runOk('npm', ['install', '--no-audit', '--no-fund', '--prefer-offline', '--no-save', tarball], project);
  const pkg = JSON.parse(readFileSync(join(project, 'package.json'), 'utf8')) as { dependencies: Record<string, string> };
  assert.is(pkg.dependencies.molt, version);
  assert.not.ok(existsSync(join(project, 'node_modules', 'molt', 'runtime')), 'the installed package has no sources');
  const types = await run('npm', ['run', 'typecheck'], project);
  assert.is(types.status, 0, types.output);
  const tests = await run('npm', ['test'], project);
  assert.is(tests.status, 0, tests.output);
  assert.match(tests.output, /Total:\s+(\d+)\s+Passed:\s+\1/);
});

test('package - molt --help runs the compiled command', async ({ project }) => {
  const r = await run('npx', ['molt', '--help'], project);
  assert.is(r.status, 0, r.output);
  assert.match(r.output, 'Usage: molt');
});

/** Starts a long-running command in its own process group; `stop()` interrupts it. */
function start(command: string, args: string[], cwd: string, env: NodeJS.ProcessEnv): { child: ChildProcess; output: () => string; stop: () => Promise<void> } {
  const child = spawn(command, args, { cwd, env, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  let out = '';
  child.stdout!.on('data', (d) => (out += d));
  child.stderr!.on('data', (d) => (out += d));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const signal = (sig: NodeJS.Signals) => {
    try {
      process.kill(-child.pid!, sig);
    } catch {
      // already gone
    }
  };
  return {
    child,
    output: () => out,
    stop: async () => {
      signal('SIGINT');
      const killer = setTimeout(() => signal('SIGKILL'), 5000);
      await exited;
      clearTimeout(killer);
    },
  };
}

async function until(what: string, check: () => Promise<boolean> | boolean, timeoutMs: number, detail: () => string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`${what} within ${timeoutMs / 1000} s:\n${detail()}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

test('package - molt dev serves the project, and molt publish upgrades it: cart 1 → 2 → 3', async ({ project }) => {
  let nats: EmbeddedNats | undefined;
  let node: ReturnType<typeof start> | undefined;
  try {
    nats = await startEmbeddedNats();
    const env: NodeJS.ProcessEnv = { ...process.env, FORCE_COLOR: '0', NATS_URL: nats.url };
    const keys = await run('npx', ['molt', 'keys', 'generate', '--out', 'publisher.nk'], project, { NATS_URL: nats.url });
    assert.is(keys.status, 0, keys.output);
    const publicKey = /--trust (U[A-Z0-9]{55})/.exec(keys.output)?.[1];
    assert.ok(publicKey, keys.output);
    node = start('npx', ['molt', 'dev', 'src/service.ts', '--version', 'cart=1', '--trust', publicKey!], project, env);
    await until('molt dev did not start', () => /serving shop \(cart@1 inventory@1\)/.test(node!.output()), 30_000, node.output);
    const published = await run('npx', ['molt', 'publish', 'src/service.ts', '--key', 'publisher.nk'], project, { NATS_URL: nats.url });
    assert.is(published.status, 0, published.output);
    assert.match(published.output, 'published cart 1→2');
    assert.match(published.output, 'published cart 2→3');
    let status = '';
    await until(
      'the node did not reach cart@3',
      async () => {
        status = (await run('npx', ['molt', 'status', '--json'], project, { NATS_URL: nats!.url })).output;
        try {
          const s = JSON.parse(status) as { nodes: Array<{ versions: Record<string, number> }>; rollouts: Array<{ state: string }> };
          return s.nodes.length === 1 && s.nodes[0]!.versions.cart === 3 && s.rollouts.length === 2 && s.rollouts.every((r) => r.state === 'done');
        } catch {
          return false;
        }
      },
      60_000,
      () => `${status}\n${node!.output()}`,
    );
  } finally {
    await node?.stop();
    await nats?.stop();
  }
});

test.run();
