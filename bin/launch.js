// How the package's commands start. An installed package runs the compiled
// JavaScript in dist/. A checkout of the repository (where the TypeScript
// sources sit next to this folder) runs those sources through tsx, so a
// contributor's edit takes effect without a build; the `molt-source` export
// condition is switched on too, so a project linked to the checkout imports
// the same sources as the command, never a stale dist/. MOLT_FROM=dist runs
// the compiled code in a checkout (after `npm run build`).
import { existsSync } from 'node:fs';

const root = new URL('../', import.meta.url);

/** Imports the entry module `entry` (a path in the package without extension, e.g. `runtime/cli/main`). */
export async function launch(entry) {
  const source = new URL(`${entry}.ts`, root);
  const compiled = new URL(`dist/${entry}.js`, root);
  if (process.env.MOLT_FROM !== 'dist' && existsSync(source)) {
    const { register } = await import('node:module');
    register('data:text/javascript,export function resolve(s, c, next) { return next(s, { ...c, conditions: [...c.conditions, "molt-source"] }); }');
    const tsx = await import('tsx/esm/api');
    tsx.register();
    await import(source.href);
    return;
  }
  if (!existsSync(compiled)) {
    process.stderr.write(`molt: the compiled code is missing (${compiled.pathname}): run \`npm run build\` in ${root.pathname}\n`);
    process.exit(2);
  }
  await import(compiled.href);
}
