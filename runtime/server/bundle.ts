/**
 * Upgrade bundles: the code of an upgrade as one ES module.
 *
 * **Building** (publisher side): esbuild bundles the user's module (format
 * esm, platform node) with everything it imports, *except* the packages the
 * node already runs and must share with the upgrade — `molt`, `xstate` and
 * `ts-pattern`. They stay imports, so the loaded versions are made of the
 * node's own `ActorVersion`, machines and patterns (one copy of each in the
 * process: `instanceof`, symbols and xstate internals all agree). An import of
 * Molt's own source by path (`../runtime/index.ts`, as in this repository's
 * tests, or a file of `actors/` such as the built-in schedules) becomes a
 * `molt` / `molt/<path>` import too.
 *
 * **Loading** (node side, only after the signature and digest checks): the
 * shared imports are pointed at the node's own copies (absolute URLs), and the
 * result is imported from a `data:` URL — nothing is written to disk. The
 * build writes each shared import in a marked form (see {@link LINK_BANNER})
 * that the node replaces without parsing: no esbuild on the node. A bundle
 * built before the marks is linked by a second esbuild pass, which resolves
 * any import form. Either way a bundle is linked and imported once per
 * process and digest; the checks before it stay the caller's, per load.
 *
 * What a bundle exports (any of):
 * - `upgrades`: an array of actor versions (`export const upgrades = [counterV2]`);
 * - the service (`export default defineService(…)` or `export const service`),
 *   whose types' versions are all offered;
 * - any named export that is an actor version;
 * - `schedules`: custom scheduling functions by name
 *   (`export const schedules = { myRollout: machine }`), used when the
 *   descriptor's schedule names one of them.
 *
 * @module
 */
import { createHash, randomBytes } from 'node:crypto';
import { isBuiltin } from 'node:module';
import { basename, dirname, resolve as resolvePath, sep } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { existsSync } from 'node:fs';
import type { BuildOptions, BuildResult, Plugin } from 'esbuild';
import { ErrorCode, MoltError } from '../errors.ts';
import { ActorVersion, type AnyActorVersion } from '../define/version.ts';
import type { ServiceDefinition } from '../define/service.ts';

/** Packages a bundle shares with the node instead of carrying its own copy. */
export const SHARED_PACKAGES = ['molt', 'xstate', 'ts-pattern'] as const;

/**
 * The root of Molt's code in this process: the package root when it runs from
 * its TypeScript sources, `dist/` when it runs compiled. Its `runtime/` and
 * `actors/` are shared with bundles, never copied into them.
 */
const packageRoot = dirname(dirname(dirname(fileURLToPath(import.meta.url)))) + sep;
/** `.ts` from sources, `.js` compiled; `molt/…` specifiers in bundles always name the `.ts` file, whichever built them. */
const codeExtension = import.meta.url.endsWith('.ts') ? '.ts' : '.js';
/**
 * Where a module being bundled may import Molt's files from: this process's
 * own code, and — when it runs compiled from a checkout's `dist/` — the
 * sources beside it, which a module of the checkout imports by path (the
 * benchmarks' fixtures do). Either way the bundle links to this process's copy.
 */
const moltRoots = codeExtension === '.js' && basename(packageRoot) === 'dist' ? [packageRoot, dirname(packageRoot) + sep] : [packageRoot];
const sharedDirs = ['runtime', 'actors'];
/** The package's doors (its `exports`): specifier → file. */
const doors: Readonly<Record<string, string>> = {
  molt: 'runtime/doors/molt.ts',
  'molt/node': 'runtime/doors/node.ts',
  'molt/upgrades': 'runtime/doors/upgrades.ts',
  'molt/schedules': 'runtime/doors/schedules.ts',
  'molt/testing': 'runtime/testing.ts',
  'molt/internal': 'runtime/internal.ts',
};

/** esbuild, loaded by the first build or link (a node that never receives an upgrade, and `molt --help`, never load it). */
async function build(options: BuildOptions & { write: false }): Promise<BuildResult<BuildOptions & { write: false }>> {
  const esbuild = await import('esbuild');
  return esbuild.build(options);
}

/**
 * The shared specifier of a Molt source file, if `absPath` is one: a door
 * (`molt`, `molt/node`, …) for a door's file, or `molt/<path in the package>`
 * for any other file of `runtime/` or `actors/` (e.g. the built-in schedules
 * a custom SF builds on).
 */
function moltSpecifierOf(absPath: string): string | undefined {
  const root = moltRoots.find((r) => absPath.startsWith(r));
  if (root === undefined) return undefined;
  const inner = absPath.slice(root.length).split(sep).join('/').replace(/\.js$/, '.ts');
  if (!sharedDirs.some((d) => inner.startsWith(`${d}/`))) return undefined;
  const door = Object.keys(doors).find((name) => doors[name] === inner);
  return door ?? `molt/${inner}`;
}

/** The file URL in this process of a shared `molt…` specifier, or undefined if there is no such file. */
function moltFileOf(specifier: string): string | undefined {
  const inner = doors[specifier] ?? specifier.slice('molt/'.length);
  if (!sharedDirs.some((d) => inner.startsWith(`${d}/`)) || inner.includes('..')) return undefined;
  const file = packageRoot + inner.replace(/\.ts$/, codeExtension).split('/').join(sep);
  return existsSync(file) ? pathToFileURL(file).href : undefined;
}

function sharedPackageOf(specifier: string): string | undefined {
  return SHARED_PACKAGES.find((p) => specifier === p || specifier.startsWith(`${p}/`));
}

/** sha256 of `bytes`, lower-case hex. */
export function sha256Hex(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/**
 * Keeps shared packages external, and Molt's own source files as `molt…`
 * imports; each is written as `"molt-link-<mark>:<specifier>"`, the form the
 * node links without parsing the bundle (see {@link linkByMarks}).
 */
function externalsOnBuild(mark: string): Plugin {
  const marked = (specifier: string) => ({ path: `${LINK_PREFIX}${mark}:${specifier}`, external: true });
  return {
    name: 'molt-externals',
    setup(b) {
      b.onResolve({ filter: /.*/ }, async (args) => {
        if (args.kind === 'entry-point' || (args.pluginData as { molt?: boolean } | undefined)?.molt) return undefined;
        if (sharedPackageOf(args.path)) return marked(args.path);
        if (!args.path.startsWith('.') && !args.path.startsWith('/')) return undefined;
        const resolved = await b.resolve(args.path, { kind: args.kind, resolveDir: args.resolveDir, importer: args.importer, pluginData: { molt: true } });
        if (resolved.errors.length > 0) return { errors: resolved.errors };
        const shared = moltSpecifierOf(resolved.path);
        if (shared) return marked(shared);
        return { path: resolved.path, namespace: resolved.namespace, sideEffects: resolved.sideEffects };
      });
    },
  };
}

/**
 * How a bundle names the packages it shares with the node. Its first line is
 * `// molt-link <mark>` and every shared import is the string
 * `"molt-link-<mark>:<specifier>"` (static, re-exported or dynamic). The mark
 * is 32 hex digits derived from the bundle itself: a string of the user's code
 * cannot contain it by accident (it would have to contain a hash of itself),
 * and the same module builds to the same bytes (a re-signature recognises its
 * bundle by digest). Bundles without the first line — built before the mark
 * existed — are linked by a second esbuild pass instead.
 */
const LINK_BANNER = '// molt-link ';
const LINK_PREFIX = 'molt-link-';
const MARK_LENGTH = 32;

/** Replaces the build's random placeholder by the mark: the first 32 hex digits of the sha256 of the output with the placeholder zeroed. */
function sealLinkMarks(text: string, placeholder: string): Uint8Array {
  const mark = createHash('sha256').update(text.replaceAll(placeholder, '0'.repeat(MARK_LENGTH))).digest('hex').slice(0, MARK_LENGTH);
  return new TextEncoder().encode(text.replaceAll(placeholder, mark));
}

/** The bundle's mark if its first line declares one (`// molt-link <32 hex>`), else undefined. */
function linkMarkOf(text: string): string | undefined {
  if (!text.startsWith(LINK_BANNER)) return undefined;
  const mark = text.slice(LINK_BANNER.length, LINK_BANNER.length + MARK_LENGTH);
  const after = text.charAt(LINK_BANNER.length + MARK_LENGTH);
  return /^[0-9a-f]{32}$/.test(mark) && (after === '\n' || after === '\r') ? mark : undefined;
}

/** How both esbuild passes (the publisher's build, the link of an unmarked bundle) write: one ES module for Node, in memory. */
const ESBUILD_FOR_NODE = { bundle: true, format: 'esm', platform: 'node', target: 'node20', write: false, logLevel: 'silent' } as const;

/**
 * Builds the bundle of a user module (TypeScript or JavaScript).
 * Throws `InvalidDefinition` with esbuild's messages if it does not build.
 */
export async function buildBundle(entry: string): Promise<Uint8Array> {
  const file = resolvePath(entry);
  // Random for this build only; replaced below by a mark derived from the output (see sealLinkMarks).
  const placeholder = randomBytes(16).toString('hex');
  try {
    const result = await build({
      ...ESBUILD_FOR_NODE,
      entryPoints: [file],
      absWorkingDir: dirname(file),
      legalComments: 'none',
      banner: { js: `${LINK_BANNER}${placeholder}` },
      plugins: [externalsOnBuild(placeholder)],
    });
    const out = result.outputFiles[0];
    if (!out) throw new Error('esbuild produced no output');
    return sealLinkMarks(out.text, placeholder);
  } catch (e) {
    const errors = (e as { errors?: Array<{ text: string; location?: { file: string; line: number } | null }> }).errors;
    const detail = errors?.length
      ? errors.map((x) => (x.location ? `${x.location.file}:${x.location.line}: ${x.text}` : x.text)).join('\n  ')
      : (e as Error).message;
    throw new MoltError(ErrorCode.InvalidDefinition, `cannot bundle ${entry}:\n  ${detail}`, { cause: e });
  }
}

/**
 * The URL in this process of a package a bundle shares (`molt…`, `xstate…`,
 * `ts-pattern…`), or the reason it has none. Found once per specifier (every
 * bundle names the same few); refusals are not kept.
 */
function sharedUrlOf(specifier: string): { url: string } | { error: string } {
  const known = sharedUrls.get(specifier);
  if (known) return { url: known };
  const found = resolveShared(specifier);
  if ('url' in found) sharedUrls.set(specifier, found.url);
  return found;
}
const sharedUrls = new Map<string, string>();

function resolveShared(specifier: string): { url: string } | { error: string } {
  const pkg = sharedPackageOf(specifier);
  if (pkg === 'molt') {
    const file = moltFileOf(specifier);
    if (file) return { url: file };
    return { error: `the bundle imports '${specifier}', which this node's Molt does not have: run a Molt version at least as new as the publisher's` };
  }
  if (pkg) {
    try {
      return { url: import.meta.resolve(specifier) };
    } catch (e) {
      return { error: `the bundle imports '${specifier}', which this node cannot resolve: ${(e as Error).message}` };
    }
  }
  return { error: `the bundle imports '${specifier}', which it does not carry: bundles must be self-contained except for ${SHARED_PACKAGES.join(', ')} and node built-ins` };
}

/** Points shared imports at this process's copies; refuses any other unresolved import. */
function linkOnLoad(): Plugin {
  return {
    name: 'molt-link',
    setup(b) {
      b.onResolve({ filter: /.*/ }, (args) => {
        if (args.kind === 'entry-point') return undefined;
        if (isBuiltin(args.path)) return { path: args.path, external: true };
        const shared = sharedUrlOf(args.path);
        return 'url' in shared ? { path: shared.url, external: true } : { errors: [{ text: shared.error }] };
      });
    },
  };
}

/**
 * Links a marked bundle: each `"molt-link-<mark>:<specifier>"` string becomes
 * the URL of the node's own copy (a JSON string literal, as esbuild wrote the
 * original). No parse and no second esbuild run: the marks are exactly the
 * shared imports the publisher's build wrote. Throws the reasons of the
 * specifiers this node cannot provide.
 */
function linkByMarks(text: string, mark: string): string {
  const errors: string[] = [];
  const linked = text.replace(new RegExp(`"${LINK_PREFIX}${mark}:([^"\\\\]*)"`, 'g'), (_match, specifier: string) => {
    const shared = sharedUrlOf(specifier);
    if ('url' in shared) return JSON.stringify(shared.url);
    errors.push(shared.error);
    return '""';
  });
  if (errors.length > 0) throw new Error([...new Set(errors)].join('; '));
  return linked;
}

/** What a loaded bundle offers. */
export interface LoadedBundle {
  /** Every actor version the bundle exports (see the module comment for the forms). */
  readonly versions: readonly AnyActorVersion[];
  /** Custom scheduling functions by name. */
  readonly schedules: Readonly<Record<string, unknown>>;
  /** The version of `type` numbered `version`, if the bundle has it. */
  version(type: string, version: number): AnyActorVersion | undefined;
}

function isActorVersion(value: unknown): value is AnyActorVersion {
  return value instanceof ActorVersion;
}

function isService(value: unknown): value is ServiceDefinition {
  return typeof value === 'object' && value !== null && typeof (value as ServiceDefinition).name === 'string' && Array.isArray((value as ServiceDefinition).types);
}

/** Collects the actor versions and schedules a bundle module exports. */
export function bundleExports(mod: Record<string, unknown>): LoadedBundle {
  const found = new Map<string, AnyActorVersion>();
  const offer = (v: unknown) => {
    if (isActorVersion(v) && !found.has(`${v.type}@${v.version}`)) found.set(`${v.type}@${v.version}`, v);
  };
  if (Array.isArray(mod.upgrades)) mod.upgrades.forEach(offer);
  for (const candidate of [mod.default, mod.service]) {
    if (isService(candidate)) for (const t of candidate.types) t.versions.forEach(offer);
  }
  for (const value of Object.values(mod)) offer(value);
  const schedules = typeof mod.schedules === 'object' && mod.schedules !== null ? (mod.schedules as Record<string, unknown>) : {};
  const versions = [...found.values()];
  return {
    versions,
    schedules,
    version: (type, version) => found.get(`${type}@${version}`),
  };
}

/**
 * Imports a bundle. Call it only on bytes whose signature and digest were
 * verified: importing runs the bundle's top-level code with the node's rights.
 */
export function importBundle(bytes: Uint8Array): Promise<LoadedBundle> {
  const digest = sha256Hex(bytes);
  let loaded = importedByDigest.get(digest);
  if (!loaded) {
    loaded = linkAndImport(bytes);
    importedByDigest.set(digest, loaded);
    loaded.catch(() => importedByDigest.delete(digest));
  }
  return loaded;
}

/**
 * Bundles imported in this process, by the sha256 of their bytes. A memo of a
 * pure function of the bytes — like Node's own module cache, which already
 * keeps one instance per `data:` URL — so many nodes in one process (tests,
 * benchmarks) link a bundle once instead of once each. It holds no
 * configuration and no trust decision: callers verify before calling.
 */
const importedByDigest = new Map<string, Promise<LoadedBundle>>();

async function linkAndImport(bytes: Uint8Array): Promise<LoadedBundle> {
  let linked: string;
  const text = new TextDecoder().decode(bytes);
  const mark = linkMarkOf(text);
  try {
    linked = mark ? linkByMarks(text, mark) : await linkByEsbuild(text);
  } catch (e) {
    const errors = (e as { errors?: Array<{ text: string }> }).errors;
    // esbuild's errors (an unmarked bundle's link), or linkByMarks' message.
    const detail = errors?.map((x) => x.text).join('; ') ?? (e as Error).message;
    throw new MoltError(ErrorCode.UpgradeRejected, `the bundle cannot be linked: ${detail}`, {
      retryable: false,
      data: { reason: 'bundle-invalid' },
      cause: e,
    });
  }
  let mod: Record<string, unknown>;
  try {
    mod = (await import(`data:text/javascript;base64,${Buffer.from(linked).toString('base64')}`)) as Record<string, unknown>;
  } catch (e) {
    throw new MoltError(ErrorCode.UpgradeRejected, `the bundle failed while loading: ${(e as Error).message}`, { retryable: false, data: { reason: 'bundle-invalid' }, cause: e });
  }
  return bundleExports(mod);
}

/** The link of a bundle without marks (built before them): a second esbuild pass resolves every import. */
async function linkByEsbuild(text: string): Promise<string> {
  const result = await build({
    ...ESBUILD_FOR_NODE,
    stdin: { contents: text, loader: 'js', sourcefile: 'bundle.mjs' },
    plugins: [linkOnLoad()],
  });
  return result.outputFiles[0]!.text;
}
