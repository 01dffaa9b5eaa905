/**
 * The demo (`npm run demo`, issue 4 item 8) runs green: a bank service on three
 * node processes upgrades account v1 → v2 (rolling) → v3 (canary) under load
 * from callers of all three versions, with no failed call and no lost update.
 * Runs the real script with short settings and judges its JSON line.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn } from 'node:child_process';

const root = new URL('../..', import.meta.url).pathname;
const test = suite('demo');

interface DemoResult {
  calls: number;
  ok: number;
  disallowed: number;
  failed: number;
  lostUpdates: number;
  finalVersions: Record<string, number>;
  durationMs: number;
}

function runDemo(env: Record<string, string>, timeoutMs: number): Promise<{ code: number | null; output: string }> {
  const { NATS_URL: _ignored, ...inherited } = process.env;
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'demo/main.ts'], { cwd: root, env: { ...inherited, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (d) => (output += d));
    child.stderr.on('data', (d) => (output += d));
    // SIGINT first: the demo's own cleanup stops its nodes and nats-server.
    const timer = setTimeout(() => {
      output += `\n(test: no end after ${timeoutMs} ms, sending SIGINT)`;
      child.kill('SIGINT');
      setTimeout(() => child.kill('SIGKILL'), 10_000).unref();
    }, timeoutMs);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, output });
    });
  });
}

test('demo - v1 → v2 (rolling) → v3 (canary) under mixed-version load: no failure, no lost update, all nodes at v3', async () => {
  const { code, output } = await runDemo({ DEMO_SECONDS: '10', DEMO_CALLERS: '4', DEMO_ACCOUNTS: '16' }, 80_000);
  const line = output.split('\n').reverse().find((l) => l.startsWith('{"calls"'));
  assert.ok(line, `the demo printed no JSON line:\n${output.slice(-4000)}`);
  const result = JSON.parse(line!) as DemoResult;
  const context = `\n${output.slice(-4000)}`;
  assert.equal(Object.keys(result), ['calls', 'ok', 'disallowed', 'failed', 'lostUpdates', 'finalVersions', 'durationMs'], 'the JSON line has exactly the documented keys, in order');
  assert.is(result.failed, 0, `failed calls${context}`);
  assert.is(result.lostUpdates, 0, `lost updates${context}`);
  assert.equal(result.finalVersions, { 'node-a': 3, 'node-b': 3, 'node-c': 3 }, `final versions${context}`);
  assert.ok(result.calls > 0, 'calls were made');
  assert.ok(result.disallowed > 0, `some calls were disallowed by design (statement on v1 nodes)${context}`);
  assert.is(result.calls, result.ok + result.disallowed + result.failed, 'every call is counted once');
  assert.is(code, 0, `exit code${context}`);
  // The story the demo tells is in its log.
  assert.match(output, /rollout account@2: paused → running/);
  assert.match(output, /v1 callers migrate to v2/);
  assert.match(output, /rollout account@3: running → done/);
});

test.run();
