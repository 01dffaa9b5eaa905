/**
 * Test support for the developer-experience tests: scaffold projects with the
 * real `molt` command, install their dependencies once, and run commands in
 * them as a user would.
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const moltRoot = new URL('../..', import.meta.url).pathname.replace(/\/$/, '');
export const moltBin = join(moltRoot, 'bin', 'molt.js');

/** A fresh temporary folder; `remove()` deletes it (unless MOLT_KEEP_TMP is set, for debugging). */
export function tempDir(prefix: string): { path: string; remove(): void } {
  const path = mkdtempSync(join(tmpdir(), prefix));
  return { path, remove: () => (process.env.MOLT_KEEP_TMP ? undefined : rmSync(path, { recursive: true, force: true })) };
}

/** The outcome of a finished command. */
export interface Ran {
  status: number | null;
  output: string;
}

/** Runs a command to completion (stdout and stderr together); never throws. */
export function run(command: string, args: string[], cwd: string, env: Record<string, string> = {}, timeoutMs = 120_000): Promise<Ran> {
  return new Promise((resolve) => {
    const child = spawn(command, args, { cwd, env: { ...process.env, FORCE_COLOR: '0', NO_COLOR: '1', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (d) => (output += d));
    child.stderr.on('data', (d) => (output += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('close', (status) => {
      clearTimeout(timer);
      resolve({ status, output });
    });
  });
}

/** Runs a command and throws with its output if it fails. */
export async function runOk(command: string, args: string[], cwd: string, env: Record<string, string> = {}): Promise<string> {
  const r = await run(command, args, cwd, env);
  if (r.status !== 0) throw new Error(`\`${command} ${args.join(' ')}\` in ${cwd} exited ${r.status}:\n${r.output.slice(-4000)}`);
  return r.output;
}

/** `molt <args>` through the package's own bin, as `npx molt` would run it. */
export function molt(args: string[], cwd: string, env: Record<string, string> = {}): Promise<Ran> {
  return run(process.execPath, [moltBin, ...args], cwd, env);
}

/**
 * `npm install` in a scaffolded project. Offline first: the packages a project
 * needs beyond Molt (xstate, tsx, typescript, uvu, @types/node) are the ones
 * this checkout installed, so they are in npm's cache, and Molt itself is a
 * `file:` link whose own dependencies resolve from this checkout's
 * node_modules. Falls back to the registry only if the cache lacks something.
 */
export async function installDeps(dir: string): Promise<void> {
  const offline = await run('npm', ['install', ...INSTALL_FLAGS, '--offline'], dir);
  if (offline.status === 0) return;
  await runOk('npm', ['install', ...INSTALL_FLAGS, '--prefer-offline'], dir);
}

/**
 * Without install scripts: installing a `file:` link runs the linked package's
 * `prepare`, which for Molt is `npm run build` — it would rewrite this
 * checkout's dist/ in place while the test files running beside this one load
 * from it (the test runner built it already). The projects' own packages need
 * no script to run (esbuild finds its platform package without its postinstall).
 */
const INSTALL_FLAGS = ['--no-audit', '--no-fund', '--ignore-scripts'];

/** What `npm pack --json` says of the tarball it made. */
export interface Packed {
  filename: string;
  size: number;
  unpackedSize: number;
  files: Array<{ path: string }>;
}

/**
 * `npm pack` of this checkout into `destination`, of the dist/ the test runner
 * built: without the prepack build, which would rewrite dist/ in place while
 * the test files running beside this one load from it. Returns the tarball's
 * path and what npm says of it.
 */
export async function packMolt(destination: string): Promise<{ tarball: string; packed: Packed }> {
  const out = await runOk('npm', ['pack', '--json', '--ignore-scripts', '--pack-destination', destination], moltRoot);
  const packed = (JSON.parse(out.slice(out.indexOf('['))) as Packed[])[0]!;
  return { tarball: join(destination, packed.filename), packed };
}

/** The dependencies a project declares (both kinds), to check that two projects may share node_modules. */
export function declaredDeps(dir: string): Record<string, string> {
  const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { dependencies?: Record<string, string>; devDependencies?: Record<string, string> };
  return { ...pkg.dependencies, ...pkg.devDependencies };
}

/** Points `dir/node_modules` at another project's installed node_modules (same declared dependencies). */
export function shareDeps(installed: string, dir: string): void {
  if (!existsSync(join(dir, 'node_modules'))) symlinkSync(join(installed, 'node_modules'), join(dir, 'node_modules'), 'dir');
}

/** Type-checks a project with the tsc it installed. */
export function typecheck(dir: string): Promise<Ran> {
  return run(join(dir, 'node_modules', '.bin', 'tsc'), ['--noEmit', '-p', 'tsconfig.json'], dir);
}

/**
 * The type errors of a tsc run that are in the project's own files (tsc
 * prints their paths relative to the project). A project also type-checks
 * Molt's declarations, since it imports them through its `file:` link;
 * errors there are Molt's, checked by Molt's own `tsc -p tsconfig.json`, and
 * must not fail the templates' tests.
 */
export function ownTypeErrors(output: string): string[] {
  return output.split('\n').filter((line) => /^[^.\/][^(]*\(\d+,\d+\): error TS/.test(line));
}

/** True if `nats-server` can be found, as the embedded server needs. */
export function hasNatsServer(): boolean {
  return spawnSync('sh', ['-c', 'command -v nats-server || test -x "$NATS_SERVER_BIN"']).status === 0;
}
