/**
 * Packages only some commands need, loaded when those commands run: `tsx`
 * (importing a TypeScript service module when Molt itself runs compiled) and
 * `ts-morph` (`molt version add`). They are optional peer dependencies of the
 * package, so an install that never runs those commands never carries them,
 * and `molt --help` never loads them.
 *
 * @module
 */
import { createRequire } from 'node:module';
import { extname } from 'node:path';
import { pathToFileURL } from 'node:url';
import { ErrorCode, MoltError } from './errors.ts';

/** True when `e` says that `name` (a package) could not be found. */
function isMissing(e: unknown, name: string): boolean {
  const code = (e as { code?: string } | undefined)?.code;
  return (code === 'ERR_MODULE_NOT_FOUND' || code === 'MODULE_NOT_FOUND') && String((e as Error).message).includes(`'${name}`);
}

/**
 * Runs `load` (a dynamic import that needs the package `name`); if `name` is
 * not installed, throws an `Environment` error saying what needs it and how
 * to install it.
 */
export async function withOptionalPackage<T>(name: string, neededFor: string, load: () => Promise<T>): Promise<T> {
  try {
    return await load();
  } catch (e) {
    if (!isMissing(e, name)) throw e;
    throw new MoltError(ErrorCode.Environment, `${neededFor} needs the package '${name}', which is not installed: run \`npm install --save-dev ${name}\` in your project`, { cause: e });
  }
}

const typeScriptExtensions = ['.ts', '.mts', '.cts', '.tsx'];
let loader: Promise<void> | undefined;

/**
 * Makes `import()` of the TypeScript file `file` work in this process. Nothing
 * to do for JavaScript, or when Molt itself runs from its TypeScript sources
 * (a loader is already active); otherwise tsx's loader is registered, once,
 * found beside Molt or else in the project that holds `file`.
 */
export function ensureTypeScriptLoader(file: string): Promise<void> {
  if (!typeScriptExtensions.includes(extname(file)) || import.meta.url.endsWith('.ts')) return Promise.resolve();
  loader ??= (async () => {
    let api: { register(): unknown };
    try {
      api = await import('tsx/esm/api');
    } catch (e) {
      if (!isMissing(e, 'tsx')) throw e;
      try {
        api = (await import(pathToFileURL(createRequire(file).resolve('tsx/esm/api')).href)) as { register(): unknown };
      } catch {
        throw new MoltError(
          ErrorCode.Environment,
          `${file} is TypeScript, and loading it needs the package 'tsx', which is not installed: run \`npm install --save-dev tsx\` in your project (or pass the compiled .js module)`,
          { cause: e },
        );
      }
    }
    api.register();
  })();
  loader.catch(() => (loader = undefined));
  return loader;
}
