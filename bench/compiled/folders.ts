/** The folders of Molt's runtime that `npm run build` compiles to `dist/` and the benchmarks load from there. */
import { fileURLToPath } from 'node:url';

/** The repository's root, with a trailing slash. */
export const root = fileURLToPath(new URL('../../', import.meta.url));

export const COMPILED_FOLDERS = ['runtime', 'actors'] as const;
