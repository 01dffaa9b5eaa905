/**
 * Type-checking a service module before `molt publish` bundles it: a
 * transform that returns a string where the state says number builds and
 * bundles fine (esbuild strips types), and fails only on the nodes. So the
 * module's own project is checked first, with the project's own settings and
 * compiler, and a publish that does not type-check is refused with the
 * compiler's diagnostics.
 *
 * - **Which project**: the nearest `tsconfig.json` from the module's folder up
 *   to the project root (the nearest folder with a `package.json`), checked
 *   whole with `tsc -p <tsconfig> --noEmit`, as the project's own `typecheck`
 *   script would. A module the project's `include`/`files` leave out is
 *   refused: checking the rest would prove nothing about it.
 * - **No tsconfig**: the module alone (and what it imports) with the settings
 *   of `molt new`'s templates: strict, NodeNext modules, ES2022, `.ts`
 *   imports allowed, and Node's types when `@types/node` is installed.
 * - **Which compiler**: the project's own (`typescript` resolved from the
 *   module, run as its `tsc` bin with this Node: TypeScript 5's JavaScript
 *   compiler and TypeScript 7's native one are started the same way), else
 *   the one Molt was installed with; with neither, the publish is refused and
 *   says how to install one (or to pass `--no-typecheck`).
 * - A JavaScript module is not checked.
 *
 * @module
 */
import { spawn } from 'node:child_process';
import { existsSync, readFileSync, realpathSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, extname, isAbsolute, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ErrorCode, MoltError } from '../errors.ts';

/** What was checked, and with what. */
export interface TypecheckOutcome {
  /** Absent when the module is JavaScript (nothing to check). */
  checked?: {
    /** The project's tsconfig.json, or undefined when the module was checked alone. */
    tsconfig: string | undefined;
    /** The compiler's `tsc` bin, and whose it is. */
    compiler: string;
    from: 'project' | 'molt';
  };
}

/** Diagnostic lines shown at most in a refusal (the rest are counted). */
const MAX_LINES = 40;
/** A check that takes longer than this is stopped and the publish refused (a hung compiler must not hang a deploy). */
const TIMEOUT_MS = 300_000;

/** The settings a module without a tsconfig is checked with (those of `molt new`'s templates). */
const STANDALONE_FLAGS = ['--strict', '--target', 'es2022', '--module', 'nodenext', '--moduleResolution', 'nodenext', '--skipLibCheck', '--allowImportingTsExtensions'];

function isTypeScript(file: string): boolean {
  return ['.ts', '.mts', '.cts', '.tsx'].includes(extname(file));
}

/** The nearest folder at or above `dir` that holds `name`, stopping after `stopAt` (inclusive) when given. */
function findUp(dir: string, name: string, stopAt?: string): string | undefined {
  for (let d = dir; ; d = dirname(d)) {
    if (existsSync(join(d, name))) return join(d, name);
    if (d === stopAt || dirname(d) === d) return undefined;
  }
}

/** The `tsc` bin of the `typescript` package resolved from `from` (a file), or undefined. */
function tscFrom(from: string): string | undefined {
  try {
    const pkgJson = createRequire(from).resolve('typescript/package.json');
    const pkg = JSON.parse(readFileSync(pkgJson, 'utf8')) as { bin?: string | Record<string, string> };
    const bin = typeof pkg.bin === 'string' ? pkg.bin : pkg.bin?.tsc;
    if (!bin) return undefined;
    const path = resolve(dirname(pkgJson), bin);
    return existsSync(path) ? path : undefined;
  } catch {
    return undefined;
  }
}

function canResolve(from: string, request: string): boolean {
  try {
    createRequire(from).resolve(request);
    return true;
  } catch {
    return false;
  }
}

function run(bin: string, args: string[], cwd: string): Promise<{ code: number | null; output: string }> {
  return new Promise((done, fail) => {
    const child = spawn(process.execPath, [bin, ...args], { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (d) => (output += d));
    child.stderr.on('data', (d) => (output += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), TIMEOUT_MS);
    child.on('error', (e) => {
      clearTimeout(timer);
      fail(e);
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      done({ code, output });
    });
  });
}

function real(path: string): string {
  try {
    return realpathSync(path);
  } catch {
    return path;
  }
}

/**
 * Type-checks the project of `modulePath`; resolves when it type-checks,
 * throws `InvalidDefinition` with the compiler's diagnostics when it does not
 * (or `Environment` when no compiler can be found).
 */
export async function typecheckModule(modulePath: string): Promise<TypecheckOutcome> {
  const file = resolve(modulePath);
  if (!isTypeScript(file)) return {};
  const dir = dirname(file);
  const packageJson = findUp(dir, 'package.json');
  const projectRoot = packageJson ? dirname(packageJson) : undefined;
  const tsconfig = findUp(dir, 'tsconfig.json', projectRoot);

  const own = tscFrom(file);
  const compiler = own ?? tscFrom(fileURLToPath(import.meta.url));
  if (!compiler) {
    throw new MoltError(
      ErrorCode.Environment,
      `cannot type-check ${modulePath} before publishing it: no TypeScript compiler in its project or beside Molt. Install one (\`npm install --save-dev typescript\`), or pass --no-typecheck to publish without checking`,
    );
  }
  const args = tsconfig
    ? ['-p', tsconfig, '--noEmit', '--pretty', 'false', '--listFiles']
    : ['--noEmit', '--pretty', 'false', ...STANDALONE_FLAGS, ...(canResolve(file, '@types/node/package.json') ? ['--types', 'node'] : []), file];
  let result: { code: number | null; output: string };
  try {
    result = await run(compiler, args, tsconfig ? dirname(tsconfig) : dir);
  } catch (e) {
    throw new MoltError(ErrorCode.Environment, `cannot run the TypeScript compiler (${compiler}) to check ${modulePath}: ${(e as Error).message}. Pass --no-typecheck to publish without checking`, { cause: e });
  }
  const lines = result.output.split(/\r?\n/).filter((l) => l.trim() !== '');
  // With --listFiles the compiler prints every file of the program, one absolute path a line.
  const listed = new Set(lines.filter((l) => isAbsolute(l) && existsSync(l)).map(real));
  const diagnostics = lines.filter((l) => !(isAbsolute(l) && existsSync(l)));
  const how = tsconfig ? `tsc -p ${relative(process.cwd(), tsconfig) || tsconfig}` : `tsc (no tsconfig.json in its project: the module alone, strict)`;
  if (result.code !== 0) {
    const shown = diagnostics.slice(0, MAX_LINES).map((l) => `  ${l}`);
    if (diagnostics.length > MAX_LINES) shown.push(`  … and ${diagnostics.length - MAX_LINES} more lines`);
    if (diagnostics.length === 0) shown.push(`  (the compiler exited ${result.code ?? 'on a signal'} without a diagnostic)`);
    throw new MoltError(
      ErrorCode.InvalidDefinition,
      `${modulePath} does not type-check (${how}); nothing was published. Fix what the compiler says, or pass --no-typecheck to publish anyway:\n${shown.join('\n')}`,
      { data: { module: file, ...(tsconfig ? { tsconfig } : {}), compiler } },
    );
  }
  if (tsconfig && !listed.has(real(file))) {
    throw new MoltError(
      ErrorCode.InvalidDefinition,
      `${modulePath} is not part of the project of ${tsconfig} (its "include"/"files" leave it out), so the compiler did not check it; nothing was published. Add it to the project, or pass --no-typecheck`,
      { data: { module: file, tsconfig } },
    );
  }
  return { checked: { tsconfig, compiler, from: own ? 'project' : 'molt' } };
}
