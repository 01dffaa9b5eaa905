/**
 * Scaffolding a new service from a template in `templates/` (what `molt new`
 * runs). Templates ship inside the package, so scaffolding never touches the
 * network.
 *
 * A template is a folder holding a ready project plus a `template.json`
 * (description, actor types). Every file is copied as it is, except:
 * - `template.json` stays behind;
 * - `_gitignore` becomes `.gitignore` (npm drops files named `.gitignore` when
 *   it packs a package, so the template cannot ship one under that name);
 * - placeholders are replaced: `{{name}}` (the service name),
 *   `{{moltDependency}}` (how the project depends on Molt: by default its
 *   version when Molt is an installed package, a `file:` path to the
 *   checkout when it runs from the repository)
 *   and `{{version:<package>}}` (the exact version this package pins, so the
 *   project and Molt agree on xstate, TypeScript and the test tools).
 *
 * @module
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { basename, dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ErrorCode, MoltError } from '../runtime/errors.ts';

/**
 * The root of the Molt package: the nearest folder holding a package.json
 * above this file (from `codegen/` in a checkout, from `dist/codegen/` when
 * compiled).
 */
export const packageRoot: string = (() => {
  const start = dirname(fileURLToPath(import.meta.url));
  for (let dir = start; ; dir = dirname(dir)) {
    if (existsSync(join(dir, 'package.json'))) return dir;
    if (dirname(dir) === dir) return dirname(start);
  }
})();

/**
 * How a new project depends on this Molt by default: from a checkout of the
 * repository (its TypeScript sources are there), a `file:` path to it, for
 * contributors; from an installed package, its version.
 */
export function defaultMoltDependency(root: string = packageRoot): string {
  if (existsSync(join(root, 'runtime', 'index.ts'))) return `file:${root}`;
  return (JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { version: string }).version;
}

/** Where the templates live. */
export const templatesDir: string = join(packageRoot, 'templates');

/** What `template.json` says about a template. */
export interface TemplateInfo {
  /** The folder name, used with `--template`. */
  name: string;
  /** One line shown in `molt new --help` and the prompt. */
  description: string;
  /** The actor types the template defines. */
  types: string[];
}

/** The templates that ship with this package, by name. */
export function listTemplates(dir: string = templatesDir): TemplateInfo[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .filter((name) => existsSync(join(dir, name, 'template.json')))
    .sort()
    .map((name) => {
      const meta = JSON.parse(readFileSync(join(dir, name, 'template.json'), 'utf8')) as Partial<TemplateInfo>;
      return { name, description: meta.description ?? '', types: meta.types ?? [] };
    });
}

/** Service names as `defineService` accepts them. */
const serviceNamePattern = /^[a-z][a-z0-9-]{0,62}$/;

/** A valid service name derived from a folder name: `My Shop!` → `my-shop`. */
export function serviceNameFrom(dir: string): string {
  const slug = basename(resolve(dir))
    .toLowerCase()
    .replace(/[^a-z0-9-]+/g, '-')
    .replace(/^[^a-z]+/, '')
    .replace(/-+$/, '')
    .slice(0, 63);
  return slug || 'molt-service';
}

/** Throws InvalidDefinition unless `name` is a valid service name. */
export function checkServiceName(name: string): void {
  if (!serviceNamePattern.test(name)) {
    throw new MoltError(
      ErrorCode.InvalidDefinition,
      `service name '${name}' is not allowed: use lower-case letters, digits and '-', starting with a letter (at most 63); pass --name`,
    );
  }
}

/** What to scaffold, and where. */
export interface ScaffoldOptions {
  /** The folder to create (must not exist, or be empty unless `force`). */
  dir: string;
  /** Template name (a folder of `templatesDir`). */
  template: string;
  /** Service name (default: derived from the folder name). */
  name?: string;
  /**
   * The project's dependency on Molt, as written in its package.json
   * (default {@link defaultMoltDependency}).
   */
  moltDependency?: string;
  /** Write into a non-empty folder, replacing files of the same name. */
  force?: boolean;
  /** Where the templates are (default: this package's `templates/`). */
  templatesDir?: string;
}

/** What was scaffolded. */
export interface ScaffoldResult {
  dir: string;
  name: string;
  template: TemplateInfo;
  /** Files written, relative to `dir`, sorted. */
  files: string[];
}

function walk(dir: string, base = dir): string[] {
  const out: string[] = [];
  for (const entry of readdirSync(dir).sort()) {
    const path = join(dir, entry);
    if (entry === 'node_modules') continue;
    if (statSync(path).isDirectory()) out.push(...walk(path, base));
    else out.push(relative(base, path));
  }
  return out;
}

/** Versions pinned by this package, for `{{version:<package>}}`. */
function pinnedVersions(): Record<string, string> {
  const pkg = JSON.parse(readFileSync(join(packageRoot, 'package.json'), 'utf8')) as {
    version: string;
    dependencies?: Record<string, string>;
    devDependencies?: Record<string, string>;
  };
  return { ...pkg.devDependencies, ...pkg.dependencies, molt: pkg.version };
}

/** Replaces the placeholders of one template file. Unknown placeholders are an error in the template. */
export function fillPlaceholders(text: string, values: { name: string; moltDependency: string; versions: Record<string, string> }, file: string): string {
  return text.replace(/\{\{([a-zA-Z]+)(?::([^}]+))?\}\}/g, (whole, key: string, arg: string | undefined) => {
    if (key === 'name' && arg === undefined) return values.name;
    if (key === 'moltDependency' && arg === undefined) return values.moltDependency;
    if (key === 'version' && arg !== undefined) {
      const version = values.versions[arg];
      if (version === undefined) throw new MoltError(ErrorCode.Internal, `template file ${file} asks for the version of '${arg}', which Molt's package.json does not pin`);
      return version;
    }
    throw new MoltError(ErrorCode.Internal, `template file ${file} has an unknown placeholder ${whole}`);
  });
}

/** Writes a new project from a template. */
export function scaffold(options: ScaffoldOptions): ScaffoldResult {
  const root = options.templatesDir ?? templatesDir;
  const templates = listTemplates(root);
  const template = templates.find((t) => t.name === options.template);
  if (!template) {
    throw new MoltError(
      ErrorCode.InvalidDefinition,
      `there is no template '${options.template}'; choose one of: ${templates.map((t) => t.name).join(', ')}`,
    );
  }
  const dir = resolve(options.dir);
  const name = options.name ?? serviceNameFrom(dir);
  checkServiceName(name);
  if (existsSync(dir)) {
    if (!statSync(dir).isDirectory()) throw new MoltError(ErrorCode.InvalidDefinition, `${dir} exists and is not a folder; choose another place`);
    if (readdirSync(dir).length > 0 && !options.force) {
      throw new MoltError(ErrorCode.InvalidDefinition, `${dir} is not empty; choose a new folder, or pass --force to write into it anyway`);
    }
  }

  const values = { name, moltDependency: options.moltDependency ?? defaultMoltDependency(), versions: pinnedVersions() };
  const source = join(root, template.name);
  const files: string[] = [];
  for (const file of walk(source)) {
    if (file === 'template.json') continue;
    const target = join(dirname(file), basename(file) === '_gitignore' ? '.gitignore' : basename(file));
    const text = fillPlaceholders(readFileSync(join(source, file), 'utf8'), values, join(template.name, file));
    mkdirSync(dirname(join(dir, target)), { recursive: true });
    writeFileSync(join(dir, target), text);
    files.push(target);
  }
  return { dir, name, template, files: files.sort() };
}
