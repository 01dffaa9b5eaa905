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
 * shared imports are pointed at the node's own copies (absolute URLs, by a
 * second esbuild pass, so it works for any import form), and the result is
 * imported from a `data:` URL — nothing is written to disk.
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
import { createHash } from 'node:crypto';
import { isBuiltin } from 'node:module';
import { dirname, resolve as resolvePath, sep } from 'node:path';
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
  if (!absPath.startsWith(packageRoot)) return undefined;
  const inner = absPath.slice(packageRoot.length).split(sep).join('/').replace(/\.js$/, '.ts');
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

/** Keeps shared packages external, and Molt's own source files as `molt…` imports. */
const externalsOnBuild: Plugin = {
  name: 'molt-externals',
  setup(b) {
    b.onResolve({ filter: /.*/ }, async (args) => {
      if (args.kind === 'entry-point' || (args.pluginData as { molt?: boolean } | undefined)?.molt) return undefined;
      if (sharedPackageOf(args.path)) return { path: args.path, external: true };
      if (!args.path.startsWith('.') && !args.path.startsWith('/')) return undefined;
      const resolved = await b.resolve(args.path, { kind: args.kind, resolveDir: args.resolveDir, importer: args.importer, pluginData: { molt: true } });
      if (resolved.errors.length > 0) return { errors: resolved.errors };
      const shared = moltSpecifierOf(resolved.path);
      if (shared) return { path: shared, external: true };
      return { path: resolved.path, namespace: resolved.namespace, sideEffects: resolved.sideEffects };
    });
  },
};

/**
 * Builds the bundle of a user module (TypeScript or JavaScript).
 * Throws `InvalidDefinition` with esbuild's messages if it does not build.
 */
export async function buildBundle(entry: string): Promise<Uint8Array> {
  const file = resolvePath(entry);
  try {
    const result = await build({
      entryPoints: [file],
      absWorkingDir: dirname(file),
      bundle: true,
      format: 'esm',
      platform: 'node',
      target: 'node20',
      write: false,
      logLevel: 'silent',
      legalComments: 'none',
      plugins: [externalsOnBuild],
    });
    const out = result.outputFiles[0];
    if (!out) throw new Error('esbuild produced no output');
    return out.contents;
  } catch (e) {
    const errors = (e as { errors?: Array<{ text: string; location?: { file: string; line: number } | null }> }).errors;
    const detail = errors?.length
      ? errors.map((x) => (x.location ? `${x.location.file}:${x.location.line}: ${x.text}` : x.text)).join('\n  ')
      : (e as Error).message;
    throw new MoltError(ErrorCode.InvalidDefinition, `cannot bundle ${entry}:\n  ${detail}`, { cause: e });
  }
}

/** Points shared imports at this process's copies; refuses any other unresolved import. */
function linkOnLoad(): Plugin {
  return {
    name: 'molt-link',
    setup(b) {
      b.onResolve({ filter: /.*/ }, (args) => {
        if (args.kind === 'entry-point') return undefined;
        if (isBuiltin(args.path)) return { path: args.path, external: true };
        const pkg = sharedPackageOf(args.path);
        if (pkg === 'molt') {
          const file = moltFileOf(args.path);
          if (file) return { path: file, external: true };
          return { errors: [{ text: `the bundle imports '${args.path}', which this node's Molt does not have: run a Molt version at least as new as the publisher's` }] };
        }
        if (pkg) {
          try {
            return { path: import.meta.resolve(args.path), external: true };
          } catch (e) {
            return { errors: [{ text: `the bundle imports '${args.path}', which this node cannot resolve: ${(e as Error).message}` }] };
          }
        }
        return { errors: [{ text: `the bundle imports '${args.path}', which it does not carry: bundles must be self-contained except for ${SHARED_PACKAGES.join(', ')} and node built-ins` }] };
      });
    },
  };
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
  try {
    const result = await build({
      stdin: { contents: new TextDecoder().decode(bytes), loader: 'js', sourcefile: 'bundle.mjs' },
      bundle: true,
      format: 'esm',
      platform: 'node',
      target: 'node20',
      write: false,
      logLevel: 'silent',
      plugins: [linkOnLoad()],
    });
    linked = result.outputFiles[0]!.text;
  } catch (e) {
    const errors = (e as { errors?: Array<{ text: string }> }).errors;
    throw new MoltError(ErrorCode.UpgradeRejected, `the bundle cannot be linked: ${errors?.map((x) => x.text).join('; ') ?? (e as Error).message}`, {
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
