/**
 * The test runner (test/run.ts): a file that hangs is killed after the file
 * timeout and counted as failed — and the processes it started go with it,
 * rather than keep running (a nats-server, three nodes) under the files after
 * it. A file that has run its tests but does not exit (a failed test's client
 * left reconnecting) is killed soon after its summary, not at the file
 * timeout.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** Whether process `pid` still runs (a zombie, killed and not yet reaped, does not). */
function running(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}

test('test runner - a hanging file is killed and counted as failed, with the processes it started', () => {
  const dir = mkdtempSync(join(tmpdir(), 'molt-runner-'));
  const pidFile = join(dir, 'child.pid');
  try {
    const run = spawnSync(process.execPath, ['--import', 'tsx', 'test/run.ts', 'test/fixtures/hanging-test-file.ts'], {
      cwd: new URL('../..', import.meta.url).pathname,
      env: { ...process.env, MOLT_TEST_NO_BUILD: '1', MOLT_TEST_FILE_TIMEOUT_MS: '3000', HANGING_CHILD_PID_FILE: pidFile },
      encoding: 'utf8',
      timeout: 60_000,
    });
    const output = `${run.stdout}${run.stderr}`;
    assert.is.not(run.status, 0, `the runner exits non-zero:\n${output}`);
    assert.match(output, /killed after 3s: the file did not finish/);
    assert.match(output, /^0 passed, 1 failed$/m);
    const pid = Number(readFileSync(pidFile, 'utf8'));
    assert.ok(pid > 0, 'the file started its child');
    assert.not.ok(running(pid), `the hanging file's child (pid ${pid}) was killed with it`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('test runner - a file that does not exit once its tests ran is killed soon after its summary, and counted', () => {
  const started = Date.now();
  const run = spawnSync(process.execPath, ['--import', 'tsx', 'test/run.ts', 'test/fixtures/lingering-test-file.ts'], {
    cwd: new URL('../..', import.meta.url).pathname,
    env: { ...process.env, MOLT_TEST_NO_BUILD: '1', MOLT_TEST_EXIT_GRACE_MS: '2000' },
    encoding: 'utf8',
    timeout: 120_000,
  });
  const output = `${run.stdout}${run.stderr}`;
  assert.match(output, /killed 2s after its summary: the file did not exit/);
  // Its one test passed; not exiting is a failure of its own.
  assert.match(output, /^1 passed, 1 failed$/m);
  assert.ok(Date.now() - started < 30_000, `killed well before the file timeout (${Date.now() - started} ms)`);
});

test.run();
