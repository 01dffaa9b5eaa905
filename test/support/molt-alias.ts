/**
 * Lets a test import a template's modules in place: resolves `molt`,
 * `molt/testing` and `molt/verify` (which a scaffolded project gets from its
 * dependency) to this repository's runtime. Import it before the template.
 */
import { register } from 'node:module';

const root = new URL('../../', import.meta.url).href;
const hook = `const root = ${JSON.stringify(root)};
const map = { 'molt': 'runtime/index.ts', 'molt/testing': 'runtime/testing.ts', 'molt/verify': 'runtime/verify/index.ts', 'molt/internal': 'runtime/internal.ts' };
export async function resolve(specifier, context, next) {
  return Object.hasOwn(map, specifier) ? next(root + map[specifier], context) : next(specifier, context);
}`;
register('data:text/javascript,' + encodeURIComponent(hook));
