/**
 * The demo (`npm run demo`, issue 4 item 8) runs green: a bank service on three
 * node processes upgrades account v1 → v2 (rolling) → v3 (canary) under load
 * from callers of all three versions, with no failed call and no lost update.
 * Runs the real script with short settings and judges its JSON line.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn } from 'node:child_process';
import fc from 'fast-check';
import type { AnyActorVersion } from '../../runtime/index.ts';
import { checkIdentity as checkUpgradeIdentity, DISALLOWED, SimulatedActor, type SimulatedCall as Call } from 'molt/testing';
import { accountV1 } from '../../demo/service.ts';
import { accountV2 } from '../../demo/account-v2.ts';
import { accountV3 } from '../../demo/account-v3.ts';

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

// ---- the demo service's upgrades, in process: the paper's identity condition ----

const chain: readonly AnyActorVersion[] = [accountV1, accountV2, accountV3];

const holdIds = fc.constantFrom('h0', 'h1', 'h2', 'h3');
const callsOf: Record<number, fc.Arbitrary<Call>> = {
  1: fc.oneof(
    fc.integer({ min: 1, max: 20 }).map((amount) => ({ version: 1, message: 'deposit', request: { amount } })),
    fc.integer({ min: 1, max: 12 }).map((amount) => ({ version: 1, message: 'withdraw', request: { amount } })),
  ),
  2: fc.oneof(
    fc.integer({ min: 1, max: 2500 }).map((cents) => ({ version: 2, message: 'deposit', request: { cents } })),
    fc.integer({ min: 1, max: 1500 }).map((cents) => ({ version: 2, message: 'withdraw', request: { cents } })),
  ),
  3: fc.oneof(
    fc.integer({ min: 1, max: 2500 }).map((cents) => ({ version: 3, message: 'deposit', request: { cents } })),
    fc.integer({ min: 1, max: 1500 }).map((cents) => ({ version: 3, message: 'withdraw', request: { cents } })),
    fc.tuple(holdIds, fc.integer({ min: 1, max: 800 })).map(([holdId, cents]) => ({ version: 3, message: 'placeHold', request: { holdId, cents } })),
    holdIds.map((holdId) => ({ version: 3, message: 'releaseHold', request: { holdId } })),
  ),
};
const readsOf: Record<number, Call[]> = {
  1: [{ version: 1, message: 'balance', request: {} }],
  2: [{ version: 2, message: 'balance', request: {} }, { version: 2, message: 'statement', request: {} }],
  3: [{ version: 3, message: 'balance', request: {} }, { version: 3, message: 'statement', request: {} }],
};

/**
 * On a node at `from` that knows every version, callers of `speak` make random
 * calls; the node is carried to `to` (the TF chain). Every read served both
 * before and after must answer the same (a read disallowed before has no
 * answer to keep).
 */
function checkIdentity(from: number, to: number, speak: number[], readBoth: number[]): void {
  const reads = readBoth.flatMap((v) => readsOf[v]!);
  fc.assert(
    fc.property(fc.array(fc.oneof(...speak.map((v) => callsOf[v]!)), { maxLength: 40 }), (calls) =>
      checkUpgradeIdentity({ versions: chain, from, to, calls, readsOld: reads, readsNew: [] }),
    ),
    { numRuns: 300, seed: 20260408 },
  );
}

test('demo service - account 1→2 is invisible to v1 and v2 readers (v3 callers too, through the chained SOs)', () => {
  checkIdentity(1, 2, [1, 2, 3], [1, 2, 3]);
});

test('demo service - account 2→3 is invisible to v2 and v3 readers', () => {
  checkIdentity(2, 3, [1, 2, 3], [2, 3]);
});

test('demo service - a v1 node carried to v3 in one go (TF chain) answers v2 and v3 readers as before', () => {
  checkIdentity(1, 3, [1, 2, 3], [2, 3]);
});

test('demo service - statement is disallowed on a v1 node, through v2 and through v3 (chained)', () => {
  const actor = new SimulatedActor(chain, 1).apply([{ version: 1, message: 'deposit', request: { amount: 5 } }]);
  assert.equal(actor.read([readsOf[2]![1]!, readsOf[3]![1]!]), [DISALLOWED, DISALLOWED]);
  assert.equal(actor.upgradeTo(2).read([readsOf[2]![1]!]), [{ balanceCents: 500, operations: 0 }]);
});

test.run();
