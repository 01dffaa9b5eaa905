/**
 * The benchmark harness, end to end in its quick mode: it starts its own
 * nats-server and agent processes, measures, and writes a results file whose
 * entries are well formed. The numbers themselves are not asserted (a smoke
 * run on a shared machine measures nothing worth asserting).
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const root = new URL('../..', import.meta.url).pathname;
const test = suite('bench');

function runBench(args: string[]): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'bench/main.ts', ...args], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (d) => (output += d));
    child.stderr.on('data', (d) => (output += d));
    // A bound against a hung harness, not a speed check: on a busy machine
    // starting the agents alone has taken half a minute.
    const timer = setTimeout(() => child.kill('SIGKILL'), 240_000);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, output });
    });
  });
}

test('bench - quick mode writes well-formed target entries and machine info', async () => {
  const out = mkdtempSync(join(tmpdir(), 'molt-bench-smoke-'));
  try {
    const { code, output } = await runBench(['--quick', '--only', 'messaging,dissemination', '--cell-ms', '100', '--out', out]);
    assert.is(code, 0, output);
    assert.match(output, /\| target\s+\| value/);
    const files = readdirSync(out);
    assert.ok(files.includes('latest.json'), `files: ${files.join(', ')}`);
    assert.ok(files.some((f) => /^\d{4}-\d\d-\d\dT.*\.json$/.test(f)), `a dated results file: ${files.join(', ')}`);
    const report = JSON.parse(readFileSync(join(out, 'latest.json'), 'utf8'));
    assert.is(report.mode, 'quick');
    for (const field of ['cpu', 'cores', 'node', 'natsServer', 'date', 'host']) assert.ok(report.machine[field] !== undefined, `machine.${field}`);
    assert.match(report.machine.natsServer, /nats-server/);
    assert.is(report.machine.runtime, 'dist', 'Molt is measured as the package ships it');
    const names = report.targets.map((t: { name: string }) => t.name);
    assert.ok(names.includes('messaging.volatile.throughput.c128'), names.join(', '));
    assert.ok(names.includes('messaging.volatile.p50.c1'), names.join(', '));
    for (const t of report.targets) {
      assert.type(t.name, 'string');
      assert.ok(Number.isFinite(t.value) && t.value > 0, `${t.name}: value ${t.value}`);
      assert.ok(t.baseline === null || (Number.isFinite(t.baseline) && t.baseline > 0), `${t.name}: baseline ${t.baseline}`);
      assert.ok(t.ratio === null || Number.isFinite(t.ratio), `${t.name}: ratio ${t.ratio}`);
      if (t.baseline !== null) assert.ok(Math.abs(t.ratio - t.value / t.baseline) / t.ratio < 1e-9 || t.reps.value.n > 1, `${t.name}: ratio is value/baseline`);
      assert.type(t.target, 'number');
      assert.type(t.met, 'boolean');
      assert.is(t.met, t.comparison === '>=' ? (t.ratio ?? t.value) >= t.target : (t.ratio ?? t.value) <= t.target, `${t.name}: met follows from the numbers`);
    }
    assert.ok(names.includes('dissemination.p99.10-nodes') && names.includes('dissemination.p99.50-nodes'), names.join(', '));
    assert.ok(report.rows.length >= 9, `rows: ${report.rows.length}`);
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
});

test.run();
