/**
 * Makes this process load Molt's runtime from `dist/` (see ./hooks.ts),
 * building it first if any source file is newer than what was built — so a
 * benchmark never measures a stale build. Imported with `--import` by every
 * agent, and first thing by bench/main.ts.
 *
 * @module
 */
import { execFileSync } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { register } from 'node:module';
import { join } from 'node:path';
import { COMPILED_FOLDERS, root } from './folders.ts';

/** The newest modification time under `dir` of files ending in `suffix` (0 if none, or no such folder). */
function newest(dir: string, suffix: string): number {
  let latest = 0;
  let entries;
  try {
    entries = readdirSync(dir, { withFileTypes: true });
  } catch {
    return 0;
  }
  for (const e of entries) {
    const path = join(dir, e.name);
    if (e.isDirectory()) latest = Math.max(latest, newest(path, suffix));
    else if (e.name.endsWith(suffix)) latest = Math.max(latest, statSync(path).mtimeMs);
  }
  return latest;
}

/** True if a source file changed after the build (or nothing was built). */
function stale(): boolean {
  const built = Math.min(...COMPILED_FOLDERS.map((f) => newest(join(root, 'dist', f), '.js')));
  const sources = Math.max(...COMPILED_FOLDERS.map((f) => newest(join(root, f), '.ts')));
  return built === 0 || sources > built;
}

if (stale()) {
  process.stderr.write('bench: building dist/ (npm run build): the benchmarks measure the compiled runtime\n');
  execFileSync(process.execPath, [join(root, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', 'tsconfig.build.json'], { cwd: root, stdio: 'inherit' });
}

register('./hooks.ts', import.meta.url);
