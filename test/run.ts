/**
 * The test command. Runs every uvu file under the chosen tiers, each in its own
 * Node process (integration files start their own nats-server, so isolating them
 * keeps one file's servers and timers from leaking into the next), then the
 * type tests with `tsc --noEmit`, and ends with one honest line:
 * `N passed, N failed`, counted from uvu's own summaries.
 *
 * A file that exits without a uvu summary (it failed to load, or crashed) counts
 * as one failure: silence is never a pass.
 *
 * Usage: node --import tsx test/run.ts [tier|file ...]
 * (builds dist/ first; MOLT_TEST_NO_BUILD=1 skips that)
 *   tiers: unit, integration, fault, types (default: all)
 */
import { spawn, spawnSync } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { cpus } from 'node:os';

const root = new URL('..', import.meta.url).pathname;
const tiers = ['unit', 'integration', 'fault'] as const;
const args = process.argv.slice(2);
const wanted = args.length === 0 ? [...tiers, 'types'] : args;
const parallel = Number(process.env.MOLT_TEST_JOBS ?? Math.max(2, cpus().length));
// A file that runs longer than this is killed and counted as failed: a hung
// test must not hang CI (which has a hard limit) without saying which one.
const fileTimeoutMs = Number(process.env.MOLT_TEST_FILE_TIMEOUT_MS ?? 300_000);
/** How long a file may take to exit once its tests have run (uvu printed its summary). */
const exitGraceMs = Number(process.env.MOLT_TEST_EXIT_GRACE_MS ?? 20_000);

function listTests(dir: string): string[] {
  let out: string[] = [];
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) out = out.concat(listTests(path));
    else if (/\.test\.ts$/.test(name)) out.push(path);
  }
  return out.sort();
}

const files: string[] = [];
for (const w of wanted) {
  if ((tiers as readonly string[]).includes(w)) files.push(...listTests(join(root, 'test', w)));
  else if (w.endsWith('.ts')) files.push(join(process.cwd(), w));
}

interface FileResult { file: string; passed: number; failed: number; output: string; ms: number }

/** The process groups of the test files running now: stopping the runner (Ctrl-C) stops them too. */
const runningGroups = new Set<number>();
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    for (const pid of runningGroups) {
      try {
        process.kill(-pid, 'SIGKILL');
      } catch {
        // Gone already.
      }
    }
    process.exit(130);
  });
}

function runFile(file: string): Promise<FileResult> {
  const started = Date.now();
  return new Promise((resolve) => {
    // `molt-source`: the test's own imports of `molt/…` load the same sources as its relative imports.
    // In a process group of its own: the nats-servers and nodes it starts are
    // in it too, so a file killed for hanging takes them with it rather than
    // leave them running (and using the CPU) under the files after it.
    const child = spawn(process.execPath, ['--conditions=molt-source', '--import', 'tsx', file], {
      cwd: root,
      env: { ...process.env, FORCE_COLOR: '0', NO_COLOR: '1' },
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
    });
    runningGroups.add(child.pid!);
    const killGroup = () => {
      try {
        process.kill(-child.pid!, 'SIGKILL');
      } catch {
        // The group is gone already.
      }
    };
    let output = '';
    let timedOut = false;
    // Once uvu has printed its summary the file has nothing left to run: if
    // it does not exit (a client or timer a failed test left behind), it is
    // killed after a grace period instead of at the file timeout.
    let lingering: NodeJS.Timeout | undefined;
    const onOutput = (d: Buffer) => {
      output += d;
      if (lingering === undefined && /Duration:\s+[\d.]+ms/.test(output)) {
        lingering = setTimeout(() => {
          output += `\n(killed ${exitGraceMs / 1000}s after its summary: the file did not exit)`;
          timedOut = true;
          killGroup();
        }, exitGraceMs);
      }
    };
    child.stdout.on('data', onOutput);
    child.stderr.on('data', onOutput);
    const timer = setTimeout(() => {
      output += `\n(killed after ${fileTimeoutMs / 1000}s: the file did not finish)`;
      timedOut = true;
      killGroup();
    }, fileTimeoutMs);
    child.on('close', (code) => {
      clearTimeout(timer);
      clearTimeout(lingering);
      // Whatever the file left running once it ended goes too.
      killGroup();
      runningGroups.delete(child.pid!);
      const total = /Total:\s+(\d+)/.exec(output);
      const passed = /Passed:\s+(\d+)/.exec(output);
      const ms = Date.now() - started;
      if (!total || !passed) {
        resolve({ file, passed: 0, failed: 1, output: output + `\n(no uvu summary; exit code ${code})`, ms });
        return;
      }
      const t = Number(total[1]);
      const p = Number(passed[1]);
      // A non-zero exit with every test passed still means something broke
      // after the tests (a crash on teardown, a leaked rejection): count it.
      const failed = t - p + ((code !== 0 || timedOut) && t === p ? 1 : 0);
      resolve({ file, passed: p, failed, output, ms });
    });
  });
}

function runTypes(): Promise<FileResult> {
  const started = Date.now();
  return new Promise((resolve) => {
    const tsc = join(root, 'node_modules', '.bin', 'tsc');
    const child = spawn(`${tsc} --noEmit -p tsconfig.json && ${tsc} --noEmit -p test/types/tsconfig.json`, {
      cwd: root, shell: true, stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.on('data', (d) => (output += d));
    child.stderr.on('data', (d) => (output += d));
    child.on('close', (code) => {
      resolve({ file: 'types (tsc --noEmit)', passed: code === 0 ? 1 : 0, failed: code === 0 ? 0 : 1, output, ms: Date.now() - started });
    });
  });
}

/**
 * Builds dist/ first: projects the tests scaffold link to this checkout, and
 * their type checks read its declarations (dist/*.d.ts). A build error is
 * shown here and counted by the types tier; the tests still run.
 */
function build(): void {
  const started = Date.now();
  const r = spawnSync(join(root, 'node_modules', '.bin', 'tsc'), ['-p', 'tsconfig.build.json'], { cwd: root, encoding: 'utf8' });
  console.log(`${r.status === 0 ? 'built' : 'BUILD FAILED'} dist/ (npm run build, ${((Date.now() - started) / 1000).toFixed(1)}s)`);
  if (r.status !== 0) console.log(`${r.stdout}${r.stderr}`);
}
if (process.env.MOLT_TEST_NO_BUILD === undefined) build();

const results: FileResult[] = [];
// Files that start a 3-server NATS cluster run last, one at a time, with no other
// file beside them: on a small machine, two clusters' Raft elections plus other
// suites starve the JetStream leader elections these tests time (both cluster
// files once failed together that way while every other run passed).
const alone = (f: string) => /[\\/]test[\\/]fault[\\/]cluster-[^\\/]*\.test\.ts$/.test(f);
const queue = files.filter((f) => !alone(f));
const solo = files.filter(alone);
// Every file runs once, fault tests included: a failure is a failure, never
// retried away (the cluster failover stall that once earned fault files a
// second run was a bug, fixed in runtime/host/placement.ts).
async function worker() {
  for (let f = queue.shift(); f; f = queue.shift()) {
    const r = await runFile(f);
    results.push(r);
    const name = relative(root, r.file);
    const mark = r.failed === 0 ? 'ok  ' : 'FAIL';
    console.log(`${mark} ${name}  (${r.passed} passed, ${r.failed} failed, ${(r.ms / 1000).toFixed(1)}s)`);
    if (r.failed > 0) console.log(r.output.split('\n').map((l) => '     | ' + l).join('\n'));
  }
}
await Promise.all(Array.from({ length: Math.min(parallel, Math.max(1, queue.length)) }, worker));
queue.push(...solo);
await worker();
if (wanted.includes('types')) {
  const r = await runTypes();
  results.push(r);
  console.log(`${r.failed === 0 ? 'ok  ' : 'FAIL'} ${r.file}  (${(r.ms / 1000).toFixed(1)}s)`);
  if (r.failed > 0) console.log(r.output);
}

const passed = results.reduce((n, r) => n + r.passed, 0);
const failed = results.reduce((n, r) => n + r.failed, 0);
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed === 0 && passed > 0 ? 0 : 1);
