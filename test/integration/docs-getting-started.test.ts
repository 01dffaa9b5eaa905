/**
 * docs/getting-started.md, executed: every shell block preceded by
 * `<!-- run -->` runs, in order, in one bash session (so `cd`, exported
 * variables and background jobs carry over), in an empty temporary folder,
 * exactly as written. The test provides what the page asks the reader to
 * provide in blocks it does not run: `MOLT_PACKAGE` (this checkout's tarball,
 * made with `npm pack`) and `NATS_PORT` (a free port). npm prefers its cache, so installing needs no network when
 * the cache has the packages.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { freePort } from '../../runtime/internal.ts';
import { moltRoot, packMolt, tempDir } from '../support/projects.ts';

const page = join(moltRoot, 'docs', 'getting-started.md');

/** The shell blocks marked `<!-- run -->`, in order. */
function runBlocks(markdown: string): string[] {
  const blocks: string[] = [];
  const pattern = /<!--\s*run\s*-->\s*\n```(?:sh|bash|shell)\n([\s\S]*?)\n```/g;
  for (let m = pattern.exec(markdown); m; m = pattern.exec(markdown)) blocks.push(m[1]!);
  return blocks;
}

const test = suite<{ tmp: ReturnType<typeof tempDir>; output: string; blocks: string[]; status: number | null }>('docs: getting started');

test.before(async (ctx) => {
  ctx.tmp = tempDir('molt-getting-started-');
  ctx.blocks = runBlocks(readFileSync(page, 'utf8'));
  const script = [
    'set -euo pipefail',
    // Whatever happens, no process of this walk-through outlives it.
    'trap \'kill $(jobs -p) 2>/dev/null || true\' EXIT',
    ...ctx.blocks.flatMap((block, i) => [`echo "::block ${i + 1}::"`, block]),
    'echo "::done::"',
  ].join('\n');
  writeFileSync(join(ctx.tmp.path, 'walkthrough.sh'), script);
  const { tarball } = await packMolt(ctx.tmp.path);
  const env: NodeJS.ProcessEnv = { ...process.env, MOLT_PACKAGE: tarball, NATS_PORT: String(await freePort()), npm_config_prefer_offline: 'true', FORCE_COLOR: '0', NO_COLOR: '1' };
  delete env.NATS_URL;
  delete env.MOLT_TRUSTED_KEYS;
  delete env.MOLT_PUBLISHER_KEY;
  const child = spawn('bash', ['walkthrough.sh'], { cwd: ctx.tmp.path, env, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  let output = '';
  child.stdout.on('data', (d) => (output += d));
  child.stderr.on('data', (d) => (output += d));
  ctx.status = await new Promise<number | null>((resolve) => {
    const timer = setTimeout(() => {
      output += '\n(timed out after 240 s)';
      process.kill(-child.pid!, 'SIGKILL');
    }, 240_000);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve(code);
    });
  });
  // The group too: anything the script left behind.
  try {
    process.kill(-child.pid!, 'SIGKILL');
  } catch {
    // nothing left
  }
  ctx.output = output;
});

test.after((ctx) => ctx.tmp.remove());

/** The output of block `n` (1-based). */
function blockOutput(output: string, n: number): string {
  const start = output.indexOf(`::block ${n}::`);
  const next = output.indexOf(`::block ${n + 1}::`);
  const end = next === -1 ? output.indexOf('::done::') : next;
  return output.slice(start, end === -1 ? undefined : end);
}

test('getting started - the page has the blocks to run, from scaffolding to the rollout', ({ blocks }) => {
  assert.ok(blocks.length >= 6, `found ${blocks.length} runnable blocks`);
  assert.match(blocks[0]!, /--package="\$MOLT_PACKAGE" -- create-molt hello --template counter/);
  assert.ok(blocks.some((b) => b.includes('molt publish')));
});

test('getting started - every runnable block runs to the end', ({ output, status }) => {
  assert.is(status, 0, output.slice(-6000));
  assert.match(output, '::done::');
});

test('getting started - the calls answer what the page says they answer', ({ output, blocks }) => {
  const numbers = (n: number) => blockOutput(output, n).split('\n').filter((l) => /^-?\d+$/.test(l.trim()));
  const callsBlock = (text: string) => blocks.findIndex((b) => b.includes(text)) + 1;
  assert.equal(numbers(callsBlock("counter@1 alice increment '{\"by\":2}'")), ['2', '2']);
  assert.equal(numbers(callsBlock('--paused')), ['1', '1']);
  assert.equal(numbers(callsBlock('molt resume counter@2')), ['11', '11']);
});

test('getting started - the rollout ends with every node at counter@2', ({ output, blocks }) => {
  const rollout = blockOutput(output, blocks.findIndex((b) => b.includes('molt resume counter@2')) + 1);
  assert.match(rollout, /rollout counter-v2-\w+ \(counter 1→2\) resumed/);
  for (const node of ['node-1', 'node-2', 'node-3']) assert.match(rollout, new RegExp(`${node}\\s+running\\s+counter@2`));
  assert.match(rollout, /counter 1→2\s+rolling \{"batch":1\}\s+done/);
});

test.run();
