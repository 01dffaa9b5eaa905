/**
 * `molt version add <type>`: writes the next version of an actor type as a new
 * file next to the current one, and adds it to the type's version chain.
 *
 * Built on ts-morph (the TypeScript compiler's code model), never on regular
 * expressions over source text:
 *
 * 1. find the type's `defineActorType('<type>', [v1, …, vn])` call among the
 *    service module and the local modules it imports;
 * 2. follow `vn` to its declaration, `defineVersion({ … })` (possibly with
 *    `.from(…)`), in its own file;
 * 3. copy what that object literal needs — the message interface, the machine,
 *    the replies, and the module's private helpers they use; exported helpers
 *    are imported from the old file instead of copied — but not the old
 *    version's upgrade (its TF and SOs belong to the step before);
 * 4. rename what carries the version in its name (`v1Messages` → `v2Messages`),
 *    set `version: n + 1`, and add a TF stub typed from vn's persisted state
 *    to the new one's (identity by default) and past- and future-SO stubs,
 *    exhaustive over the other version's messages, each a call of the same
 *    message on the other version (or, with `forward: false`, a `disallow(…)`
 *    with a comment saying what to write);
 * 5. add the new version to the chain and import it there.
 *
 * @module
 */
import { existsSync } from 'node:fs';
import { basename, dirname, extname, join, relative, resolve } from 'node:path';
import {
  Node,
  Project,
  QuoteKind,
  SyntaxKind,
  TypeFormatFlags,
  ts,
  type ArrayLiteralExpression,
  type CallExpression,
  type Identifier,
  type ImportDeclaration,
  type ObjectLiteralExpression,
  type SourceFile,
  type Statement,
  type Symbol as MorphSymbol,
  type VariableDeclaration,
} from 'ts-morph';
import { ErrorCode, MoltError } from '../runtime/index.ts';

/** Options of {@link addVersion}. */
export interface AddVersionOptions {
  /** The actor type, e.g. `counter`. */
  type: string;
  /** The service module (default `src/service.ts`, relative to `cwd`). */
  service?: string;
  /** Resolves relative paths (default: the process's working folder). */
  cwd?: string;
  /** The tsconfig.json to read compiler options from (default: the nearest one above the service module). */
  tsconfig?: string;
  /**
   * SO handlers call the same message on the other version (the default):
   * a fresh copy with an identity TF is a correct upgrade, so the new version
   * passes `molt verify` the moment it is added, and `molt verify` catches
   * the edit that makes a forwarded message wrong. `false` writes a
   * `disallow(…)` stub per message instead, each refusing until written.
   */
  forward?: boolean;
  /**
   * Also write a `down` stub (state of the new version → state of the previous
   * one, what `molt rollback` runs). Generated as the identity, typed from the
   * new machine's state to the old one's, like the TF stub: right for the fresh
   * copy, and it stops compiling once the two states differ in shape. Off by
   * default: without `down`, `molt rollback` refuses the version (a clear
   * refusal); with a `down` nobody revisited, it would carry state back.
   */
  down?: boolean;
  /**
   * Declare `compatible: true` (the new version serves callers of the previous
   * one natively) instead of writing a past SO. Refused when the new version
   * lacks a message of the previous one.
   */
  compatible?: boolean;
  /** Compute everything, write nothing. */
  dryRun?: boolean;
}

/** What {@link addVersion} wrote (or would write). */
export interface AddVersionResult {
  type: string;
  /** The new version number. */
  version: number;
  /** Absolute path of the new version's file. */
  file: string;
  /** Its text. */
  text: string;
  /** The new version's export, e.g. `counterV2`. */
  exportName: string;
  /** The previous version's export, e.g. `counterV1`. */
  previousName: string;
  /** Absolute path of the file whose `defineActorType` call now lists the new version. */
  chainFile: string;
  /** The messages the SO stubs list (the same for both versions, since the new one starts as a copy). */
  messages: string[];
  /** True if a `down` stub was written ({@link AddVersionOptions.down}). */
  down: boolean;
  /** True if the new version declares `compatible: true` instead of a past SO ({@link AddVersionOptions.compatible}). */
  compatible: boolean;
}

function fail(message: string): MoltError {
  return new MoltError(ErrorCode.InvalidDefinition, message);
}

/** The name a symbol stands for, seeing through import aliases. */
function targetName(symbol: MorphSymbol | undefined): string | undefined {
  if (!symbol) return undefined;
  const aliased = symbol.getAliasedSymbol();
  return (aliased ?? symbol).getName();
}

function calleeIs(call: CallExpression, name: string): boolean {
  const callee = call.getExpression();
  return Node.isIdentifier(callee) && (callee.getText() === name || targetName(callee.getSymbol()) === name);
}

/** Where a version is declared: `export const counterV1 = defineVersion({ … })…`. */
interface VersionSite {
  declaration: VariableDeclaration;
  statement: Statement;
  file: SourceFile;
  /** The `defineVersion(...)` call. */
  call: CallExpression;
  /** Its object literal argument. */
  definition: ObjectLiteralExpression;
}

/** The declaration an identifier refers to, through imports. */
function declarationOf(id: Identifier): Node | undefined {
  const symbol = id.getSymbol();
  const target = symbol?.getAliasedSymbol() ?? symbol;
  return target?.getDeclarations()[0];
}

function versionSite(id: Identifier, type: string): VersionSite {
  const declaration = declarationOf(id);
  if (!declaration || !Node.isVariableDeclaration(declaration)) {
    throw fail(
      `the last version of '${type}', ${id.getText()}, is not declared as \`export const ${id.getText()} = defineVersion({ … })\` (optionally followed by \`.from(…)\`) at the top level of a module; ` +
        `molt version add copies that declaration, so declare the version that way (not as a function, class member or re-export of an expression)`,
    );
  }
  const initializer = declaration.getInitializer();
  const calls = initializer ? [initializer, ...initializer.getDescendants()].filter(Node.isCallExpression) : [];
  const call = calls.find((c) => calleeIs(c, 'defineVersion'));
  const definition = call?.getArguments()[0];
  if (!call || !definition || !Node.isObjectLiteralExpression(definition)) {
    throw fail(
      `${id.getText()} (${declaration.getSourceFile().getFilePath()}) is not \`defineVersion({ type, version, messages, machine, replies })\`; ` +
        `molt version add needs the definition as an object literal in the defineVersion call itself (write \`export const ${id.getText()} = defineVersion({ … })\`, not defineVersion(someObject))`,
    );
  }
  const statement = declaration.getFirstAncestorByKind(SyntaxKind.VariableStatement);
  if (!statement || statement.getParent() !== declaration.getSourceFile()) {
    throw fail(`${id.getText()} must be declared at the top level of its module`);
  }
  return { declaration, statement, file: declaration.getSourceFile(), call, definition };
}

/** The `defineActorType('<type>', [...])` call among the service module and the local modules it imports. */
function findChain(project: Project, serviceFile: SourceFile, type: string): { call: CallExpression; array: ArrayLiteralExpression } {
  const seen = new Set<SourceFile>();
  const queue = [serviceFile];
  const found: Array<{ call: CallExpression; array: ArrayLiteralExpression }> = [];
  while (queue.length > 0) {
    const file = queue.shift()!;
    if (seen.has(file)) continue;
    seen.add(file);
    for (const call of file.getDescendantsOfKind(SyntaxKind.CallExpression)) {
      if (!calleeIs(call, 'defineActorType')) continue;
      const [name, versions] = call.getArguments();
      if (name && Node.isStringLiteral(name) && name.getLiteralValue() === type) {
        if (!versions || !Node.isArrayLiteralExpression(versions)) {
          throw fail(`defineActorType('${type}', …) in ${file.getFilePath()} must list its versions in an array literal: defineActorType('${type}', [${type}V1, …])`);
        }
        found.push({ call, array: versions });
      }
    }
    for (const imported of file.getImportDeclarations()) {
      const target = imported.getModuleSpecifierSourceFile();
      if (target && !target.isInNodeModules() && !target.isDeclarationFile()) queue.push(target);
    }
  }
  void project;
  if (found.length === 0) {
    const names = new Set<string>();
    for (const file of seen) {
      for (const call of file.getDescendantsOfKind(SyntaxKind.CallExpression)) {
        const first = calleeIs(call, 'defineActorType') ? call.getArguments()[0] : undefined;
        if (first && Node.isStringLiteral(first)) names.add(first.getLiteralValue());
      }
    }
    throw fail(`no defineActorType('${type}', …) in ${serviceFile.getFilePath()} or the modules it imports; types found: ${[...names].join(', ') || 'none'}`);
  }
  if (found.length > 1) throw fail(`defineActorType('${type}', …) appears ${found.length} times; molt version add needs exactly one chain per type`);
  return found[0]!;
}

/** The statement at the top level of its file that contains `node`. */
function topLevelStatement(node: Node): Statement | undefined {
  let current: Node | undefined = node;
  while (current && current.getParent() && !Node.isSourceFile(current.getParent()!)) current = current.getParent();
  return current && Node.isStatement(current) ? current : undefined;
}

/** The symbols an identifier may stand for (a shorthand property stands for its value). */
function referencedSymbol(id: Identifier): MorphSymbol | undefined {
  const parent = id.getParent();
  if (parent && Node.isShorthandPropertyAssignment(parent)) return parent.getValueSymbol();
  return id.getSymbol();
}

/** A name imported by the old file and needed by the new one. */
interface NeededImport {
  declaration: ImportDeclaration;
  /** `default`, `*`, or the imported name. */
  imported: string;
  /** The local name. */
  local: string;
  typeOnly: boolean;
}

interface Closure {
  /** Statements of the old file to copy, in file order. */
  copy: Statement[];
  /** Names of the old file to import from it (exported helpers). */
  fromOld: Map<string, boolean /* type only */>;
  /** Imports of the old file the new one needs too. */
  imports: NeededImport[];
}

function isTypeOnlyStatement(s: Statement): boolean {
  return Node.isTypeAliasDeclaration(s) || Node.isInterfaceDeclaration(s);
}

function exportedNames(s: Statement): string[] {
  if (Node.isVariableStatement(s) && s.isExported()) return s.getDeclarations().map((d) => d.getName());
  if ((Node.isFunctionDeclaration(s) || Node.isClassDeclaration(s) || Node.isTypeAliasDeclaration(s) || Node.isInterfaceDeclaration(s) || Node.isEnumDeclaration(s)) && s.isExported()) {
    const name = s.getName();
    return name ? [name] : [];
  }
  return [];
}

/**
 * What the new file needs from the old one to rebuild `definition`: the
 * statements it references (transitively), except exported helpers, which it
 * imports, and except the version statement itself.
 */
function closureOf(site: VersionSite): Closure {
  const file = site.file;
  const copy = new Set<Statement>();
  const fromOld = new Map<string, boolean>();
  const imports = new Map<string, NeededImport>();
  // The version's own parts are copied even when exported: they are what the new version edits.
  const ownParts = new Set<Statement>();
  for (const prop of site.definition.getProperties()) {
    const value = Node.isShorthandPropertyAssignment(prop) ? prop.getNameNode() : Node.isPropertyAssignment(prop) ? prop.getInitializer() : undefined;
    if (value && Node.isIdentifier(value)) {
      const decl = referencedSymbol(value)?.getDeclarations()[0];
      const stmt = decl && decl.getSourceFile() === file ? topLevelStatement(decl) : undefined;
      if (stmt) ownParts.add(stmt);
    }
  }

  // Only names the module declares or imports can lead to its statements.
  // Filtering on them first also spares the type checker: resolving a
  // property name (`context.items`) would make it type the whole machine.
  const moduleNames = new Set<string>(file.getStatements().flatMap((st) => declaredNames(st)));
  for (const imp of file.getImportDeclarations()) {
    const clause = imp.getImportClause();
    if (clause?.getDefaultImport()) moduleNames.add(clause.getDefaultImport()!.getText());
    if (clause?.getNamespaceImport()) moduleNames.add(clause.getNamespaceImport()!.getText());
    for (const n of imp.getNamedImports()) moduleNames.add(n.getAliasNode()?.getText() ?? n.getName());
  }
  const isPropertyName = (id: Identifier): boolean => {
    const parent = id.getParent();
    if (!parent) return false;
    if (Node.isPropertyAccessExpression(parent) || Node.isQualifiedName(parent)) return parent.getLastChild() === id;
    if (Node.isPropertyAssignment(parent) || Node.isPropertySignature(parent) || Node.isMethodDeclaration(parent) || Node.isPropertyDeclaration(parent)) {
      return parent.getNameNode() === id;
    }
    return false;
  };
  const visit = (root: Node, inTypePosition: boolean) => {
    const ids = Node.isIdentifier(root) ? [root] : root.getDescendantsOfKind(SyntaxKind.Identifier);
    for (const id of ids) {
      if (!moduleNames.has(id.getText()) || isPropertyName(id)) continue;
      const symbol = referencedSymbol(id);
      for (const decl of symbol?.getDeclarations() ?? []) {
        if (decl.getSourceFile() !== file) continue;
        const importDecl = decl.getFirstAncestorByKind(SyntaxKind.ImportDeclaration);
        if (importDecl) {
          const local = id.getText();
          const typeOnly = importDecl.isTypeOnly() || (Node.isImportSpecifier(decl) && decl.isTypeOnly()) || inTypePosition || isTypePosition(id);
          const imported = Node.isImportSpecifier(decl) ? decl.getName() : Node.isNamespaceImport(decl) ? '*' : 'default';
          const key = `${importDecl.getModuleSpecifierValue()}\0${local}`;
          const prev = imports.get(key);
          imports.set(key, { declaration: importDecl, imported, local, typeOnly: prev ? prev.typeOnly && typeOnly : typeOnly });
          continue;
        }
        const stmt = topLevelStatement(decl);
        if (!stmt || stmt === site.statement || copy.has(stmt)) continue;
        const exported = exportedNames(stmt);
        if (exported.length > 0 && !ownParts.has(stmt)) {
          const name = id.getText();
          if (exported.includes(name)) {
            const typeOnly = isTypeOnlyStatement(stmt) || inTypePosition || isTypePosition(id);
            fromOld.set(name, (fromOld.get(name) ?? true) && typeOnly);
            continue;
          }
        }
        copy.add(stmt);
        visit(stmt, isTypeOnlyStatement(stmt));
      }
    }
  };
  visit(site.definition, false);
  const order = file.getStatements();
  return {
    copy: [...copy].sort((a, b) => order.indexOf(a) - order.indexOf(b)),
    fromOld,
    imports: [...imports.values()],
  };
}

/** True if an identifier is used as a type (so an import of it may be `type`-only). */
function isTypePosition(id: Identifier): boolean {
  let node: Node | undefined = id.getParent();
  while (node) {
    if (Node.isTypeNode(node) && !Node.isExpressionWithTypeArguments(node)) {
      // `typeof x` refers to a value.
      return !Node.isTypeQuery(node);
    }
    if (Node.isStatement(node) || Node.isExpression(node)) return false;
    node = node.getParent();
  }
  return false;
}

/** `v1Messages` → `v2Messages`, `counterV1` → `counterV2`; undefined if the name carries no version. */
export function bumpName(name: string, from: number, to: number): string | undefined {
  const upper = new RegExp(`V${from}(?![0-9])`);
  const lower = new RegExp(`^v${from}(?![0-9a-z])`);
  if (upper.test(name)) return name.replace(upper, `V${to}`);
  if (lower.test(name)) return name.replace(lower, `v${to}`);
  return undefined;
}

/** The file name of the next version: `v1.ts` → `v2.ts`, `counter.ts` → `counter-v2.ts`. */
export function nextFileName(file: string, from: number, to: number): string {
  const ext = extname(file);
  const base = basename(file, ext);
  const bumped = base.replace(new RegExp(`(^|[^0-9A-Za-z])v${from}$`), `$1v${to}`);
  return join(dirname(file), `${bumped !== base ? bumped : `${base}-v${to}`}${ext}`);
}

/** A relative module specifier from one file to another, in the style the project uses (`.ts` or `.js`). */
function specifier(fromFile: string, toFile: string, extension: string): string {
  let rel = relative(dirname(fromFile), toFile).split('\\').join('/');
  if (!rel.startsWith('.')) rel = `./${rel}`;
  return rel.replace(/\.ts$/, extension);
}

/** The extension relative imports use in `file`, or undefined if it has none. */
function importExtension(file: SourceFile): string | undefined {
  for (const imp of file.getImportDeclarations()) {
    const spec = imp.getModuleSpecifierValue();
    if (spec.startsWith('.')) {
      const ext = extname(spec);
      return ext === '.js' || ext === '.ts' ? ext : '';
    }
  }
  return undefined;
}

/** Removes `indentation` from the start of every line but the first (code moved out of a nested position). */
function dedent(text: string, indentation: string): string {
  if (!indentation) return text;
  return text
    .split('\n')
    .map((line, i) => (i > 0 && line.startsWith(indentation) ? line.slice(indentation.length) : line))
    .join('\n');
}

function quoteOf(file: SourceFile): string {
  const first = file.getImportDeclarations()[0]?.getModuleSpecifier().getText();
  return first?.startsWith('"') ? '"' : "'";
}

function lowerCamel(type: string): string {
  return type.replace(/-([a-z0-9])/g, (_, c: string) => c.toUpperCase());
}

/** Copies a statement with its comments, minus a leading file header (a comment followed by a blank line at the top of the file). */
function statementText(stmt: Statement, from: string, to: string): string {
  const code = stmt.getText(false);
  // The first statement's leading comments are the old file's header: not copied.
  const comments = stmt.getSourceFile().getStatements()[0] === stmt ? '' : stmt.getFullText().slice(0, stmt.getStart() - stmt.getPos()).replace(/^\s*\n/, '');
  // Comments about the copied code now describe the new version.
  return comments.split(from).join(to) + code;
}

/** A compact TypeScript rendering of a type, for comments: `{ by: number; }` → `{ by: number }`. */
function compactType(text: string): string {
  return text.replace(/\s+/g, ' ').replace(/; }/g, ' }').replace(/;(?= [A-Za-z_$"'[])/g, ',');
}

interface MessageInfo {
  name: string;
  kind: 'ask' | 'tell';
  request: string;
  reply: string;
  /** True when the request has no required field (call it with no argument). */
  noArgs: boolean;
}

/**
 * The messages of a version with their request and reply types, computed by
 * the type checker through `RequestOf`/`ReplyOf` of the module that provides
 * `defineVersion`. The probe goes into the old file (in memory only, removed
 * after) so it can name the messages object directly: going through the
 * version's own type would make the checker infer its whole machine.
 */
function messageInfo(site: VersionSite, messagesExpr: string, moltSpecifier: string): MessageInfo[] {
  const file = site.file;
  const probeStart = file.getStatements().length;
  const [names] = file.addStatements(`type __MoltProbeMessages = ${messagesExpr};`);
  try {
    const keys = (names as Statement & { getType(): import('ts-morph').Type }).getType().getProperties().map((p) => p.getName());
    if (keys.length === 0) throw fail(`${messagesExpr} has no messages; declare at least one with ask(…) or tell(…)`);
    const m = `import(${JSON.stringify(moltSpecifier)})`;
    const probes = file.addStatements(
      keys.flatMap((k, i) => {
        const spec = `__MoltProbeMessages[${JSON.stringify(k)}]`;
        return [`type __MoltQ${i} = ${m}.RequestOf<${spec}>;`, `type __MoltA${i} = ${m}.ReplyOf<${spec}>;`, `type __MoltK${i} = ${spec}['kind'];`];
      }),
    );
    const flags = TypeFormatFlags.NoTruncation | TypeFormatFlags.UseSingleQuotesForStringLiteralType;
    const typeOf = (i: number) => (probes[i] as Statement & { getType(): import('ts-morph').Type }).getType();
    return keys.map((name, i) => {
      const request = typeOf(3 * i);
      return {
        name,
        kind: typeOf(3 * i + 2).getText(file, flags).includes('tell') ? 'tell' : 'ask',
        request: compactType(request.getText(file, flags)),
        reply: compactType(typeOf(3 * i + 1).getText(file, flags)),
        noArgs: request.getProperties().every((p) => p.isOptional()),
      };
    });
  } finally {
    for (const stmt of file.getStatements().slice(probeStart).reverse()) stmt.remove();
  }
}

/** The handler and its comment in an SO stub, for one message of the interface the SO serves. */
function handlerLines(m: MessageInfo, reason: string, forward: boolean, indent: string): string[] {
  const call = m.noArgs ? `({ target }) => target.${m.name}()` : `({ request, target }) => target.${m.name}(request)`;
  if (forward) return [`${indent}${m.name}: ${call},`];
  const signature = `${m.name}(${m.noArgs ? '' : m.request})${m.kind === 'ask' ? ` → ${m.reply}` : ''}`;
  return [`${indent}// ${signature}`, `${indent}// e.g. ${call}`, `${indent}${m.name}: disallow('${reason}'),`];
}

/** Writes the next version of `options.type`. */
export function addVersion(options: AddVersionOptions): AddVersionResult {
  const cwd = options.cwd ?? process.cwd();
  const servicePath = resolve(cwd, options.service ?? 'src/service.ts');
  if (!existsSync(servicePath)) throw fail(`no service module at ${servicePath}: pass --service <file> (the module that exports defineService(…))`);
  const tsconfig = options.tsconfig ? resolve(cwd, options.tsconfig) : findUp(dirname(servicePath), 'tsconfig.json');
  const project = tsconfig
    ? new Project({ tsConfigFilePath: tsconfig, skipAddingFilesFromTsConfig: true })
    : new Project({ compilerOptions: { strict: true, allowImportingTsExtensions: true, noEmit: true, module: ts.ModuleKind.NodeNext, moduleResolution: ts.ModuleResolutionKind.NodeNext } });
  const serviceFile = project.addSourceFileAtPath(servicePath);
  project.resolveSourceFileDependencies();

  const { type } = options;
  const chain = findChain(project, serviceFile, type);
  const elements = chain.array.getElements();
  const last = elements[elements.length - 1];
  if (!last || !Node.isIdentifier(last)) throw fail(`the versions of '${type}' must be listed by name, e.g. defineActorType('${type}', [${lowerCamel(type)}V1])`);
  const from = elements.length;
  const to = from + 1;
  const site = versionSite(last, type);
  const versionProp = site.definition.getProperty('version');
  const declared = versionProp && Node.isPropertyAssignment(versionProp) ? Number(versionProp.getInitializer()?.getText()) : NaN;
  if (!Number.isNaN(declared) && declared !== from) {
    throw fail(`${last.getText()} declares version ${declared} but is number ${from} in the chain of '${type}'; fix the chain first`);
  }
  const chainFile = chain.call.getSourceFile();
  if (chainFile === site.file) {
    throw fail(
      `${last.getText()} is declared in the same module as defineActorType('${type}', …) (${site.file.getFilePath()}); ` +
        `move each version to its own module (e.g. src/${type}/v${from}.ts) so the new one can import it without an import cycle`,
    );
  }

  const previousName = last.getText();
  const exportName = bumpName(previousName, from, to) ?? `${lowerCamel(type)}V${to}`;
  const oldPath = site.file.getFilePath();
  const newPath = nextFileName(oldPath, from, to);
  if (existsSync(newPath) || project.getSourceFile(newPath)) throw fail(`${relative(cwd, newPath)} already exists; remove it or add the version by hand`);
  // Relative imports end the way the project writes them (`.ts`, `.js` or nothing).
  const ext = [site.file, chainFile, serviceFile].map(importExtension).find((e) => e !== undefined) ?? '.ts';
  const q = quoteOf(site.file);

  // The module that provides defineVersion (usually 'molt'): the helpers come from there too.
  const defineVersionImport = site.file
    .getImportDeclarations()
    .find((d) => d.getNamedImports().some((n) => n.getName() === 'defineVersion' || n.getAliasNode()?.getText() === 'defineVersion'));
  const moltSpecifier = defineVersionImport?.getModuleSpecifierValue() ?? 'molt';

  const closure = closureOf(site);

  // The version's messages and machine, by name: the stubs' types refer to them.
  const taken = new Set(closure.copy.flatMap((s) => declaredNames(s)));
  const parts = new Map<'messages' | 'machine', { local: string; hoist?: string }>();
  for (const name of ['messages', 'machine'] as const) {
    const prop = site.definition.getProperty(name);
    if (Node.isShorthandPropertyAssignment(prop)) parts.set(name, { local: name });
    else if (Node.isPropertyAssignment(prop)) {
      const init = prop.getInitializerOrThrow();
      // Inline in the old definition: the new file gives it a name.
      parts.set(name, Node.isIdentifier(init) ? { local: init.getText() } : { local: unique(name, taken), hoist: dedent(init.getText(), prop.getIndentationText()) });
    } else throw fail(`${previousName} needs '${name}' as a plain property of its definition`);
  }
  const messagesPart = parts.get('messages')!;
  const machinePart = parts.get('machine')!;
  const messages = messageInfo(site, messagesPart.hoist ? `(typeof ${previousName})['messages']` : `typeof ${messagesPart.local}`, moltSpecifier);
  // `compatible: true` needs every message of the previous version in the new
  // one. The skeleton starts as a copy of those messages, so it holds here;
  // what guards later edits is the type of UpgradeSpec.compatible (`never`
  // once a message of the previous version is missing: the file stops
  // compiling) and defineService, which refuses such a chain at startup.
  const compatible = options.compatible === true;
  const down = options.down === true;

  // ---- imports --------------------------------------------------------------
  type Named = { imported: string; local: string; typeOnly: boolean };
  const importLines: string[] = [];
  const byDecl = new Map<ImportDeclaration, NeededImport[]>();
  for (const imp of closure.imports) byDecl.set(imp.declaration, [...(byDecl.get(imp.declaration) ?? []), imp]);
  const extraMolt: Named[] = [
    { imported: 'defineVersion', local: 'defineVersion', typeOnly: false },
    ...(options.forward !== false ? [] : [{ imported: 'disallow', local: 'disallow', typeOnly: false }]),
    { imported: 'SimulationObject', local: 'SimulationObject', typeOnly: true },
    { imported: 'TransformFunction', local: 'TransformFunction', typeOnly: true },
    ...(down ? [{ imported: 'VersionState', local: 'VersionState', typeOnly: true }] : []),
  ];
  const namedList = (items: Named[], wholeTypeOnly: boolean) =>
    items.map((i) => `${i.typeOnly && !wholeTypeOnly ? 'type ' : ''}${i.imported === i.local ? i.local : `${i.imported} as ${i.local}`}`).join(', ');
  let moltWritten = false;
  for (const decl of site.file.getImportDeclarations()) {
    const needed = byDecl.get(decl) ?? [];
    const spec = decl.getModuleSpecifierValue();
    const isMolt = spec === moltSpecifier && !decl.isTypeOnly() && !moltWritten;
    if (needed.length === 0 && !isMolt) continue;
    const defaultImport = needed.find((n) => n.imported === 'default');
    const namespace = needed.find((n) => n.imported === '*');
    // In the old file's order, then what the stubs need that it did not import.
    const order = decl.getNamedImports().map((n) => n.getAliasNode()?.getText() ?? n.getName());
    const list: Named[] = needed.filter((n) => n.imported !== 'default' && n.imported !== '*');
    if (isMolt) {
      moltWritten = true;
      for (const extra of extraMolt) if (!list.some((n) => n.local === extra.local)) list.push(extra);
    }
    const rank = (n: Named) => (order.includes(n.local) ? order.indexOf(n.local) : order.length + extraMolt.findIndex((e) => e.local === n.local));
    list.sort((a, b) => rank(a) - rank(b));
    // Relative imports keep pointing at the same module (the new file sits beside the old one).
    const target = decl.getModuleSpecifierSourceFile();
    const moduleText = spec.startsWith('.') && target ? specifier(newPath, target.getFilePath(), ext) : spec;
    const wholeTypeOnly = decl.isTypeOnly() || (list.length > 0 && list.every((n) => n.typeOnly) && !defaultImport && !namespace);
    const clause = [defaultImport?.local, namespace ? `* as ${namespace.local}` : undefined, list.length > 0 ? `{ ${namedList(list, wholeTypeOnly)} }` : undefined].filter(Boolean);
    importLines.push(`import ${wholeTypeOnly ? 'type ' : ''}${clause.join(', ')} from ${q}${moduleText}${q};`);
  }
  if (!moltWritten) importLines.push(`import { ${namedList(extraMolt, false)} } from ${q}${moltSpecifier}${q};`);
  const fromOld: Named[] = [...closure.fromOld.entries()].map(([name, typeOnly]) => ({ imported: name, local: name, typeOnly }));
  fromOld.unshift({ imported: previousName, local: previousName, typeOnly: false });
  importLines.push(`import { ${namedList(fromOld, false)} } from ${q}${specifier(newPath, oldPath, ext)}${q};`);

  // ---- the stubs ------------------------------------------------------------
  const tfName = unique('transform', taken);
  const pastName = unique('past', taken);
  const futureName = unique('future', taken);
  const downName = down ? unique('down', taken) : 'down';
  const pastState = unique('PastState', taken);
  const futureState = unique('FutureState', taken);
  const newRef = `${type}@${to}`;
  const oldRef = `${type}@${from}`;
  const forward = options.forward !== false;
  const soHelp = (serves: string, through: string) =>
    forward
      ? [
          `  // Each handler calls the same message on ${through}: right while both`,
          `  // versions mean the same by it, as a fresh copy does. Change a message`,
          `  // and rewrite its handler (or refuse it with disallow(…)); \`molt verify\``,
          `  // finds a handler that no longer answers as ${serves} would.`,
        ]
      : [
          `  // One handler per message of ${serves}: answer as ${serves} would, through`,
          `  // \`target\` (${through}), or refuse with disallow(…): the caller gets a`,
          `  // Disallowed error, never a wrong answer. Each refuses until you write it;`,
          `  // \`state\` and \`setState\` hold what this SO must remember itself.`,
        ];

  const header = [
    `/**`,
    ` * ${type}, version ${to}: written by \`molt version add ${type}\` as a copy of version ${from}.`,
    ` * Change its messages, machine and replies; then make the transform function and the`,
    ` * simulation objects below carry ${oldRef} over.`,
    ` */`,
  ].join('\n');

  const stubs = [
    compatible
      ? `/** What a past SO would keep per actor: nothing, since ${newRef} serves ${oldRef} callers itself (compatible). */`
      : `/** What the past SO keeps per actor, beside the ${newRef} object's state: nothing yet. */`,
    `type ${pastState} = undefined;`,
    '',
    `/** What the future SO keeps per actor on a node still at ${oldRef}: nothing yet. */`,
    `type ${futureState} = undefined;`,
    '',
    `/**`,
    ` * Carries each actor's persisted state from ${oldRef} to ${newRef}, when its node upgrades or`,
    ` * when it is next loaded. \`future\` is what the future SO kept for the actor; return \`past\``,
    ` * to seed the past SO's state. It may run again after a crash: keep it a pure function of its`,
    ` * input. The identity is right as long as both versions keep the same state.`,
    ` */`,
    `const ${tfName}: TransformFunction<typeof ${previousName}.machine, typeof ${machinePart.local}, ${futureState}, ${pastState}> = ({ value, context }) => ({`,
    `  value,`,
    `  context,`,
    `});`,
    '',
    ...(down
      ? [
          `/**`,
          ` * Carries each actor's state from ${newRef} back to ${oldRef} when \`molt rollback ${newRef}\` runs.`,
          ` * Keep what ${oldRef} can represent, drop the rest. The identity is right as long as both`,
          ` * versions keep the same state; typed to ${oldRef}'s state, it stops compiling when they differ`,
          ` * in shape — but not when they differ only in meaning (units, say): then rewrite it, or delete it`,
          ` * (without \`down\`, molt rollback refuses this version instead of carrying state back).`,
          ` */`,
          `const ${downName}: (state: VersionState<typeof ${machinePart.local}>) => VersionState<typeof ${previousName}.machine> = ({ value, context }) => ({`,
          `  value,`,
          `  context,`,
          `});`,
          '',
        ]
      : []),
    ...(compatible
      ? [
          `// No past SO: ${newRef} declares itself compatible (\`compatible: true\` below), so it serves`,
          `// callers of ${oldRef} natively — every message of ${oldRef} must stay in ${newRef} with the same`,
          `// meaning. Remove one and this file stops compiling; then write a past SO instead.`,
          '',
        ]
      : [
          `/** Serves callers of ${oldRef} on a node that runs ${newRef}. */`,
          `const ${pastName}: SimulationObject<typeof ${previousName}.messages, typeof ${messagesPart.local}, ${pastState}> = {`,
          ...soHelp(oldRef, `the ${newRef} object`),
          `  handlers: {`,
          ...messages.flatMap((m) => handlerLines(m, `the past SO of ${newRef} does not serve it yet`, forward, '    ')),
          `  },`,
          `};`,
          '',
        ]),
    `/**`,
    ` * Serves callers of ${newRef} on a node still at ${oldRef}. To also see the calls ${oldRef} callers`,
    ` * make to that object (an interceptor SO), add \`observe\`.`,
    ` */`,
    `const ${futureName}: SimulationObject<typeof ${messagesPart.local}, typeof ${previousName}.messages, ${futureState}> = {`,
    ...soHelp(newRef, `the ${oldRef} object`),
    `  handlers: {`,
    ...messages.flatMap((m) => handlerLines(m, `the future SO of ${newRef} does not serve it yet`, forward, '    ')),
    `  },`,
    `};`,
  ].join('\n');

  const entry = (key: string, local: string) => (key === local ? key : `${key}: ${local}`);
  const upgrade = `{ ${[
    entry('transform', tfName),
    compatible ? 'compatible: true' : entry('past', pastName),
    entry('future', futureName),
    ...(down ? [entry('down', downName)] : []),
  ].join(', ')} }`;
  const versionStatement = `export const ${exportName} = defineVersion(${site.definition.getText()}).from(${previousName}, ${upgrade});`;
  const hoisted = [...parts.values()].filter((p) => p.hoist).map((p) => `const ${p.local} = ${p.hoist};`);
  const copied = closure.copy.map((stmt) => statementText(stmt, oldRef, newRef));
  const text = [header, importLines.join('\n'), ...copied, ...hoisted, stubs, versionStatement].join('\n\n') + '\n';

  const newFile = project.createSourceFile(newPath, text, { overwrite: false });
  // In the copied definition: the new version number, and the names of hoisted parts.
  const newCall = newFile.getVariableDeclarationOrThrow(exportName).getDescendantsOfKind(SyntaxKind.CallExpression).find((c) => calleeIs(c, 'defineVersion'))!;
  const newDefinition = newCall.getArguments()[0] as ObjectLiteralExpression;
  const versionNode = newDefinition.getProperty('version');
  if (versionNode && Node.isPropertyAssignment(versionNode)) versionNode.setInitializer(String(to));
  else newDefinition.addPropertyAssignment({ name: 'version', initializer: String(to) });
  for (const [name, part] of parts) {
    const prop = newDefinition.getProperty(name);
    if (part.hoist && prop && Node.isPropertyAssignment(prop)) prop.replaceWithText(part.local === name ? name : `${name}: ${part.local}`);
  }

  // ---- rename what carries the old version number, in the new file only ------
  for (const stmt of newFile.getStatements()) {
    if (stmt === newFile.getVariableStatement(exportName)) continue;
    for (const name of declaredNames(stmt)) {
      const bumped = bumpName(name, from, to);
      if (!bumped || newFile.getLocals().some((l) => l.getName() === bumped)) continue;
      const node = declarationNameNode(stmt, name);
      node?.rename(bumped, { renameInComments: false, renameInStrings: false });
    }
  }

  // ---- wire the chain ---------------------------------------------------------
  appendToChain(chain.array, exportName);
  const prevImport = chainFile.getImportDeclarations().find((d) => d.getNamedImports().some((n) => (n.getAliasNode()?.getText() ?? n.getName()) === previousName));
  const at = prevImport ? prevImport.getChildIndex() + 1 : chainFile.getImportDeclarations().length;
  // In the quotes the file already uses.
  project.manipulationSettings.set({ quoteKind: quoteOf(chainFile) === '"' ? QuoteKind.Double : QuoteKind.Single });
  chainFile.insertImportDeclaration(at, { namedImports: [exportName], moduleSpecifier: specifier(chainFile.getFilePath(), newPath, importExtension(chainFile) ?? ext) });

  const finalText = newFile.getFullText();
  if (!options.dryRun) {
    newFile.saveSync();
    chainFile.saveSync();
  }
  return { type, version: to, file: newPath, text: finalText, exportName, previousName, chainFile: chainFile.getFilePath(), messages: messages.map((m) => m.name), down, compatible };
}

/**
 * Adds `name` at the end of a version chain in the way it is written: one per
 * line if it is written one per line, and keeping a trailing comma.
 */
function appendToChain(array: ArrayLiteralExpression, name: string): void {
  const elements = array.getElements();
  const last = elements[elements.length - 1]!;
  const comma = last.getNextSiblingIfKind(SyntaxKind.CommaToken);
  const multiline = array.getText().includes('\n');
  if (!multiline && !comma) {
    array.addElement(name);
    return;
  }
  const file = array.getSourceFile();
  const text = file.getFullText();
  const indentation = /^[ \t]*/.exec(text.slice(text.lastIndexOf('\n', last.getStart()) + 1))![0];
  const separator = multiline ? `\n${indentation}` : ' ';
  if (comma) file.insertText(comma.getEnd(), `${separator}${name},`);
  else file.insertText(last.getEnd(), `,${separator}${name}`);
}

function declaredNames(stmt: Statement): string[] {
  if (Node.isVariableStatement(stmt)) return stmt.getDeclarations().flatMap((d) => (Node.isIdentifier(d.getNameNode()) ? [d.getName()] : []));
  if (Node.isFunctionDeclaration(stmt) || Node.isClassDeclaration(stmt) || Node.isTypeAliasDeclaration(stmt) || Node.isInterfaceDeclaration(stmt) || Node.isEnumDeclaration(stmt)) {
    const name = stmt.getName();
    return name ? [name] : [];
  }
  return [];
}

function declarationNameNode(stmt: Statement, name: string): Identifier | undefined {
  if (Node.isVariableStatement(stmt)) {
    const decl = stmt.getDeclarations().find((d) => d.getName() === name);
    const node = decl?.getNameNode();
    return node && Node.isIdentifier(node) ? node : undefined;
  }
  if (Node.isFunctionDeclaration(stmt) || Node.isClassDeclaration(stmt) || Node.isTypeAliasDeclaration(stmt) || Node.isInterfaceDeclaration(stmt) || Node.isEnumDeclaration(stmt)) {
    return stmt.getNameNode();
  }
  return undefined;
}

function unique(name: string, taken: Set<string>): string {
  let candidate = name;
  for (let i = 2; taken.has(candidate); i++) candidate = `${name}${i}`;
  taken.add(candidate);
  return candidate;
}

function findUp(dir: string, name: string): string | undefined {
  for (let current = dir; ; current = dirname(current)) {
    if (existsSync(join(current, name))) return join(current, name);
    if (dirname(current) === current) return undefined;
  }
}
