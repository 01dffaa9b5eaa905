/**
 * Command start: wall time of `molt --help`, from spawning Node to its exit,
 * run from the compiled package (dist/, what an installed package runs) and
 * from the TypeScript sources through tsx (what a checkout runs), interleaved
 * in each repetition. Builds dist/ first (`npm run build`).
 * Target: the compiled command starts in under 300 ms (median).
 *
 * @module
 */
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import { stat, type Benchmark } from '../harness.ts';

const root = fileURLToPath(new URL('../..', import.meta.url));
const bin = join(root, 'bin', 'molt.js');

/** Milliseconds of one `molt --help`, from spawn to exit. */
function timeHelp(from: 'dist' | 'sources'): number {
  const env = { ...process.env, MOLT_FROM: from === 'dist' ? 'dist' : 'sources' };
  const started = process.hrtime.bigint();
  const r = spawnSync(process.execPath, [bin, '--help'], { env, encoding: 'utf8' });
  const ms = Number(process.hrtime.bigint() - started) / 1e6;
  if (r.status !== 0 || !r.stdout.includes('Usage: molt')) throw new Error(`molt --help (${from}) failed: ${r.stderr}`);
  return ms;
}

export const startup: Benchmark = {
  name: 'startup',
  title: '`molt --help` start time: compiled package versus sources through tsx',
  async run(ctx) {
    const built = spawnSync(join(root, 'node_modules', '.bin', 'tsc'), ['-p', 'tsconfig.build.json'], { cwd: root, encoding: 'utf8' });
    if (built.status !== 0) throw new Error(`npm run build failed:\n${built.stdout}${built.stderr}`);
    const node = (() => {
      const started = process.hrtime.bigint();
      spawnSync(process.execPath, ['-e', '0']);
      return Number(process.hrtime.bigint() - started) / 1e6;
    })();
    const reps = ctx.options.quick ? 3 : Math.max(10, ctx.options.reps * 4);
    timeHelp('dist');
    timeHelp('sources');
    const compiled: number[] = [];
    const sources: number[] = [];
    const bare: number[] = [node];
    for (let i = 0; i < reps; i++) {
      compiled.push(timeHelp('dist'));
      sources.push(timeHelp('sources'));
      const started = process.hrtime.bigint();
      spawnSync(process.execPath, ['-e', '0']);
      bare.push(Number(process.hrtime.bigint() - started) / 1e6);
    }
    ctx.row({ system: 'molt --help, compiled (dist/)', setting: `${reps} runs`, metrics: { start_ms: stat(compiled) } });
    ctx.row({ system: 'molt --help, sources through tsx', setting: `${reps} runs`, metrics: { start_ms: stat(sources) } });
    ctx.row({ system: 'node -e 0 (the floor)', setting: `${bare.length} runs`, metrics: { start_ms: stat(bare) } });
    ctx.log(`molt --help: compiled ${stat(compiled).median.toFixed(0)} ms, sources ${stat(sources).median.toFixed(0)} ms, bare node ${stat(bare).median.toFixed(0)} ms (medians)`);
    ctx.target({
      name: 'startup.molt-help',
      description: '`molt --help` wall time from the compiled package (median)',
      unit: 'ms',
      value: compiled,
      comparison: '<=',
      target: 300,
      params: { sourcesMedianMs: stat(sources).median, nodeMedianMs: stat(bare).median },
    });
  },
};
