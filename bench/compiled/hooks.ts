/**
 * Module resolution hooks (registered by ./register.ts): an import that
 * resolves to a source file of Molt's runtime (`runtime/`, `actors/`)
 * resolves to the file `npm run build` compiled from it under `dist/`
 * instead. Benchmark code, fixtures and baselines stay TypeScript, run by
 * tsx; the code being measured is what the package ships.
 *
 * @module
 */
import { existsSync } from 'node:fs';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { COMPILED_FOLDERS, root } from './folders.ts';

const folders = COMPILED_FOLDERS.map((folder) => ({
  source: pathToFileURL(`${root}${folder}/`).href,
  compiled: pathToFileURL(`${root}dist/${folder}/`).href,
}));

interface Resolved {
  url: string;
  format?: string | null | undefined;
  shortCircuit?: boolean;
}

export async function resolve(specifier: string, context: unknown, nextResolve: (specifier: string, context: unknown) => Promise<Resolved>): Promise<Resolved> {
  const resolved = await nextResolve(specifier, context);
  if (!resolved.url.endsWith('.ts')) return resolved;
  const folder = folders.find((f) => resolved.url.startsWith(f.source));
  if (folder === undefined) return resolved;
  const url = `${folder.compiled}${resolved.url.slice(folder.source.length, -'.ts'.length)}.js`;
  if (!existsSync(fileURLToPath(url))) throw new Error(`${fileURLToPath(url)} is missing: run \`npm run build\` (the benchmarks measure the compiled runtime)`);
  return { url, format: 'module', shortCircuit: true };
}
