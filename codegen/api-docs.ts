/**
 * Generates docs/api.md: every export of each of the package's doors
 * (`molt`, `molt/node`, `molt/upgrades`, `molt/schedules`, `molt/testing`),
 * one line each, from its TSDoc, grouped by door and by the module that
 * defines it. A test runs it with `--check`, so a change to the public
 * surface shows in review as a change of docs/api.md.
 *
 *   node --import tsx codegen/api-docs.ts            writes docs/api.md
 *   node --import tsx codegen/api-docs.ts --check    exits 1 if docs/api.md is stale
 *
 * @module
 */
import { readFileSync, writeFileSync, existsSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Node, Project, type ExportedDeclarations, type JSDoc, type SourceFile } from 'ts-morph';

const root = fileURLToPath(new URL('..', import.meta.url)).replace(/\/$/, '');

/** One documented export. */
export interface ApiEntry {
  name: string;
  /** function, class, interface, type, const, … (several when a name is both a value and a type). */
  kind: string;
  /** The first sentence of its TSDoc, or '' if it has none. */
  summary: string;
  /** Only a type (erased at run time). */
  typeOnly: boolean;
}

/** The exports of one module of the entry, in the entry's order. */
export interface ApiGroup {
  /** Where they are defined: a path relative to the package root, or a package name. */
  source: string;
  /** The first sentence of that module's `@module` TSDoc. */
  about: string;
  entries: ApiEntry[];
}

function firstSentence(text: string): string {
  const paragraph = text.trim().split(/\n\s*\n/)[0] ?? '';
  const flat = paragraph.replace(/\s+/g, ' ').trim();
  // Up to the first full stop that ends a sentence (not `e.g.` or a file name).
  const m = /^(.*?[.!?])(?=\s+[A-Z`(]|$)/.exec(flat);
  return (m ? m[1]! : flat).replace(/\{@link\s+([^}|\s]+)(?:\s*\|\s*([^}]+))?\}/g, (_, target: string, label?: string) => `\`${label ?? target}\``);
}

function docsOf(node: Node): JSDoc[] {
  if (Node.isVariableDeclaration(node)) return node.getVariableStatement()?.getJsDocs() ?? [];
  if (Node.isJSDocable(node)) return node.getJsDocs();
  return [];
}

function kindOf(node: ExportedDeclarations): string {
  if (Node.isFunctionDeclaration(node)) return 'function';
  if (Node.isClassDeclaration(node)) return 'class';
  if (Node.isInterfaceDeclaration(node)) return 'interface';
  if (Node.isTypeAliasDeclaration(node)) return 'type';
  if (Node.isEnumDeclaration(node)) return 'enum';
  if (Node.isVariableDeclaration(node)) return node.getVariableStatement()?.getDeclarationKind() ?? 'const';
  if (Node.isModuleDeclaration(node) || Node.isSourceFile(node)) return 'namespace';
  return node.getKindName();
}

function moduleAbout(file: SourceFile): string {
  // The module's header is the first comment of the file, marked `@module`.
  const first = file.getStatements()[0];
  for (const range of first?.getLeadingCommentRanges() ?? []) {
    const text = range.getText();
    if (!text.startsWith('/**') || !text.includes('@module')) continue;
    const body = text
      .replace(/^\/\*\*|\*\/$/g, '')
      .split('\n')
      .map((line) => line.replace(/^\s*\* ?/, ''))
      .join('\n');
    return firstSentence(body.split(/^@/m)[0] ?? '');
  }
  return '';
}

/** Summaries of names re-exported from other packages, whose TSDoc is not ours to write. */
const externalSummaries: Record<string, string> = {
  P: 'The pattern builders of ts-pattern (`P.number`, `P.string`, `P.array(…)`, `P.union(…)`, …), with which message schemas are written.',
};

/** The package's public doors: the specifier users import, and the file behind it (package.json `exports`). */
export const doors: ReadonlyArray<{ specifier: string; file: string }> = [
  { specifier: 'molt', file: 'runtime/doors/molt.ts' },
  { specifier: 'molt/node', file: 'runtime/doors/node.ts' },
  { specifier: 'molt/upgrades', file: 'runtime/doors/upgrades.ts' },
  { specifier: 'molt/schedules', file: 'runtime/doors/schedules.ts' },
  { specifier: 'molt/testing', file: 'runtime/testing.ts' },
  { specifier: 'molt/verify', file: 'runtime/verify/index.ts' },
];

/** One door and what it exports. */
export interface ApiDoor {
  specifier: string;
  file: string;
  /** The first sentence of the door's `@module` TSDoc. */
  about: string;
  groups: ApiGroup[];
}

let shared: Project | undefined;
function project(): Project {
  shared ??= new Project({ tsConfigFilePath: join(root, 'tsconfig.json'), skipAddingFilesFromTsConfig: true });
  return shared;
}

/** Reads every door. */
export function readDoors(): ApiDoor[] {
  return doors.map(({ specifier, file }) => {
    const path = join(root, file);
    return { specifier, file, about: moduleAbout(project().addSourceFileAtPath(path)), groups: readApi(path) };
  });
}

/** Reads the exports of `entry` (default the package root's door) and their TSDoc. */
export function readApi(entry = join(root, doors[0]!.file)): ApiGroup[] {
  const index = project().addSourceFileAtPath(entry);
  const exported = index.getExportedDeclarations();
  const groups = new Map<string, ApiGroup>();
  for (const decl of index.getExportDeclarations()) {
    const target = decl.getModuleSpecifierSourceFile();
    const spec = decl.getModuleSpecifierValue() ?? '';
    const inPackage = target && !target.isInNodeModules() && !target.isDeclarationFile();
    const source = inPackage ? relative(root, target.getFilePath()) : spec;
    let group = groups.get(source);
    if (!group) {
      group = { source, about: inPackage ? moduleAbout(target) : `re-exported from the \`${spec}\` package`, entries: [] };
      groups.set(source, group);
    }
    for (const named of decl.getNamedExports()) {
      const name = named.getAliasNode()?.getText() ?? named.getName();
      const nodes = exported.get(name) ?? [];
      const kinds = [...new Set(nodes.map(kindOf))];
      const doc = nodes.flatMap(docsOf).map((d) => d.getDescription()).find((d) => d.trim() !== '') ?? '';
      const typeOnly = decl.isTypeOnly() || named.isTypeOnly() || nodes.every((n) => Node.isInterfaceDeclaration(n) || Node.isTypeAliasDeclaration(n));
      group.entries.push({ name, kind: kinds.join(' + ') || 'unknown', summary: firstSentence(doc) || (inPackage ? '' : (externalSummaries[name] ?? '')), typeOnly });
    }
  }
  // A door declared with its own exports (molt/testing) rather than re-exports.
  if (groups.size === 0) {
    const group: ApiGroup = { source: relative(root, entry), about: moduleAbout(index), entries: [] };
    for (const [name, nodes] of exported) {
      const doc = nodes.flatMap(docsOf).map((d) => d.getDescription()).find((d) => d.trim() !== '') ?? '';
      const typeOnly = nodes.every((n) => Node.isInterfaceDeclaration(n) || Node.isTypeAliasDeclaration(n));
      group.entries.push({ name, kind: [...new Set(nodes.map(kindOf))].join(' + ') || 'unknown', summary: firstSentence(doc), typeOnly });
    }
    groups.set(group.source, group);
  }
  return [...groups.values()];
}

/** The table of one module's exports. */
function renderGroup(group: ApiGroup, level: string, out: string[]): void {
  out.push(`${level} \`${group.source}\``, '');
  if (group.about) out.push(group.about, '');
  out.push('| export | kind | |', '|---|---|---|');
  for (const e of group.entries) {
    const summary = e.summary ? e.summary.replace(/\|/g, '\\|') : '*(no TSDoc yet)*';
    out.push(`| \`${e.name}\` | ${e.kind} | ${summary} |`);
  }
  out.push('');
}

/** The Markdown of one door's exports alone (groups by defining module). */
export function renderApi(groups: ApiGroup[]): string {
  const out = ['# API reference', '', '<!-- Generated by `node --import tsx codegen/api-docs.ts` from the TSDoc in the sources: edit those, not this file. -->', ''];
  for (const group of groups) renderGroup(group, '##', out);
  return out.join('\n');
}

/** The Markdown of docs/api.md: every door, then its exports by defining module. */
export function renderDoors(list: ApiDoor[]): string {
  const count = list.reduce((n, d) => n + d.groups.reduce((m, g) => m + g.entries.length, 0), 0);
  const out = [
    '# API reference',
    '',
    `Every export of the package, by door: ${list.map((d) => `\`${d.specifier}\``).join(', ')}; ${count} names, one line each,`,
    'from their TSDoc. Types are erased at run time; everything else is a value you can import.',
    'A name some doors share (the NATS connection helpers) is listed under each. Internals for tools',
    'and tests are in `molt/internal` and are not listed here.',
    '',
    '<!-- Generated by `node --import tsx codegen/api-docs.ts` from the TSDoc in the sources: edit those, not this file. -->',
    '',
  ];
  for (const door of list) {
    out.push(`## \`${door.specifier}\``, '');
    if (door.about) out.push(`${door.about} (\`${door.file}\`)`, '');
    for (const group of door.groups) renderGroup(group, '###', out);
  }
  return out.join('\n');
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const target = join(root, 'docs', 'api.md');
  const list = readDoors();
  const text = renderDoors(list);
  if (process.argv.includes('--check')) {
    const current = existsSync(target) ? readFileSync(target, 'utf8') : '';
    if (current !== text) {
      process.stderr.write('docs/api.md is out of date: run `node --import tsx codegen/api-docs.ts`\n');
      process.exit(1);
    }
    process.stdout.write('docs/api.md is up to date\n');
  } else {
    writeFileSync(target, text);
    const missing = list.flatMap((d) => d.groups.flatMap((g) => g.entries.filter((e) => !e.summary).map((e) => `${d.specifier}:${e.name}`)));
    process.stdout.write(`wrote docs/api.md${missing.length ? `; exports without TSDoc: ${missing.join(', ')}` : ''}\n`);
  }
}
