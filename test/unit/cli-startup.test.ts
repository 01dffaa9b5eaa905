/**
 * `molt --help` must start fast (issue: under 300 ms; `npm run bench --
 * startup` measures it). What makes it slow is structural, so this checks the
 * structure: the modules the compiled command loads to print its help. A
 * command file that imports what it runs at the top (the NATS client, xstate,
 * the node, the verifier) instead of inside its action shows up here.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';

const root = fileURLToPath(new URL('../..', import.meta.url));

/** Every module `molt <args>` resolves, as a path relative to the package (node: builtins left out). */
function modulesLoadedBy(args: string[]): string[] {
  const hook = `export async function resolve(s, c, next) { const r = await next(s, c); if (r.url.startsWith('file:')) process.stderr.write('LOADED ' + r.url + '\\n'); return r; }`;
  const register = `import { register } from 'node:module'; register(${JSON.stringify(`data:text/javascript,${encodeURIComponent(hook)}`)});`;
  const r = spawnSync(process.execPath, ['--import', `data:text/javascript,${encodeURIComponent(register)}`, join(root, 'bin', 'molt.js'), ...args], {
    env: { ...process.env, MOLT_FROM: 'dist' },
    encoding: 'utf8',
  });
  assert.is(r.status, 0, r.stderr);
  const prefix = new URL('../..', import.meta.url).href;
  return [...new Set(r.stderr.split('\n').filter((l) => l.startsWith('LOADED ')).map((l) => l.slice('LOADED '.length).replace(prefix, '')))].sort();
}

test('molt --help loads the command registrations and commander, nothing it does not print', () => {
  const loaded = modulesLoadedBy(['--help']);
  assert.ok(loaded.some((m) => m.endsWith('dist/runtime/cli/commands/status.js')), `the hook saw the command files: ${loaded.join(', ')}`);
  const heavy = loaded.filter((m) => /node_modules\/(@nats-io|xstate|superjson|ts-pattern|fast-check|prom-client|@opentelemetry|esbuild|tsx)\//.test(m) || /dist\/runtime\/(node|host|manager|udb|server|verify|observe|simulate|operate|upgrade)[./]/.test(m));
  assert.equal(heavy, [], `molt --help loaded what only a running command needs: ${heavy.join(', ')}`);
});

test('molt status --help does not load the NATS client either', () => {
  const loaded = modulesLoadedBy(['status', '--help']);
  assert.equal(loaded.filter((m) => m.includes('@nats-io/')), []);
});

test.run();
