/**
 * The compatibility matrix of an actor type, computed from its definitions:
 * for every message of every version (the caller's interface), how a node
 * running each version serves it — natively, through the past SO or a chain
 * of past SOs down to the caller's version, the future SO or a chain of two
 * future SOs — or refuses it (a standing `disallow(...)`) or cannot serve it
 * at all.
 *
 * The route comes from the upgrade layer's own `routeFor`, so the matrix says
 * what a node does, not what this file believes it does. A handler that is a
 * function counts as served even if it may `disallow` at run time (or an SO
 * further along the chain may): only a handler that *is* a `disallow(...)` is
 * a standing refusal. The first SO of a chain is the one the caller's message
 * reaches (after any `compatible` steps, which pass it on unchanged); what the
 * SOs behind it are asked depends on its code.
 *
 * Pure: no I/O. `molt compat` loads the service and prints these.
 *
 * @module
 */
import { match, P } from 'ts-pattern';
import { isDisallow, routeFor, type ActorType, type Route, type TypeVersions } from '../runtime/internal.ts';

/** How a node serves one message of one caller version. */
export type Support =
  /** The node's own object, at the caller's version. */
  | 'native'
  /** The node's object, newer, declared compatible (at every step): it serves the old messages itself. */
  | 'compatible'
  /** The past SO of the version after the caller's, chained through the past SOs of every version up to the node's. */
  | 'past'
  /** The future SO of the caller's version (once the node has learned of it), chained onto the one before it if the caller is two ahead. */
  | 'future'
  /** The SO the message reaches refuses it: its handler is a standing `disallow(...)`. */
  | 'disallowed'
  /** The node cannot serve this version at all (too far ahead, retired, or the chain of SOs is broken): `VersionUnsupported`. */
  | 'unsupported';

/** One cell: a message of a caller version, on a node at `node`. */
export interface CompatCell {
  node: number;
  support: Support;
  /** For calls served through SOs or compatible versions: how many versions the call crosses (2 or more: a chain). */
  steps?: number;
  /** The disallow reason, for `disallowed`. */
  reason?: string;
}

/** One row: a message of one caller version, across node versions. */
export interface CompatRow {
  /** The caller's interface version. */
  version: number;
  message: string;
  kind: 'ask' | 'tell';
  /** One cell per node version, in the order of `CompatMatrix.versions`. */
  cells: CompatCell[];
}

/** The matrix of one actor type. Plain data: `JSON.stringify` gives the `--json` form. */
export interface CompatMatrix {
  type: string;
  /** Every version of the type, oldest first (the node versions, and the caller versions). */
  versions: number[];
  rows: CompatRow[];
}

/** What each kind of support means, for legends. */
export const supportMeaning: Readonly<Record<Support, string>> = {
  native: "the node's own object",
  compatible: "the node's object, declared compatible with the caller's version",
  past: 'the past SO of the version after the caller’s; "chain (n)": n past SOs, each calling the next, up to the node’s version',
  future: 'the future SO of the caller’s version (once the node has loaded it); "chain (2)": it calls the future SO of the version before',
  disallowed: 'refused: the SO’s handler is a standing disallow(...)',
  unsupported: 'fails with VersionUnsupported: the node does not serve that version',
};

function typeVersions(type: ActorType, current: number): TypeVersions {
  return { name: type.name, byVersion: new Map(type.versions.map((v) => [v.version, v])), current, retired: new Set() };
}

type CellSupport = Omit<CompatCell, 'node'>;

/** How `message` of `version` is served along `route` (and the routes after it). */
function supportAlong(types: TypeVersions, route: Route | undefined, message: string): CellSupport {
  if (route === undefined) return { support: 'unsupported' };
  return match(route)
    .returnType<CellSupport>()
    .with({ kind: 'native' }, () => ({ support: 'native' }))
    .with({ kind: 'compatible' }, (r) => {
      // The message goes on unchanged to the next version; what serves it there decides.
      const next = supportAlong(types, routeFor(types, r.target), message);
      return next.support === 'native' || next.support === 'compatible' ? { support: 'compatible', steps: r.steps } : { ...next, steps: r.steps };
    })
    .with({ kind: P.union('past', 'future') }, (r) => {
      const handler = (r.so.handlers as Record<string, unknown>)[message];
      // The layer answers UnknownMessage for a handler that is missing (only
      // possible in untyped code): the message cannot be served.
      if (handler === undefined) return { support: 'unsupported' };
      if (isDisallow(handler)) return { support: 'disallowed', reason: handler.reason };
      return { support: r.kind, steps: r.steps };
    })
    .exhaustive();
}

/** How a node at `node` serves `message` of version `caller`. */
export function cellFor(type: ActorType, caller: number, message: string, node: number): CompatCell {
  const types = typeVersions(type, node);
  return { node, ...supportAlong(types, routeFor(types, caller), message) };
}

/** The whole matrix of an actor type. */
export function compatMatrix(type: ActorType): CompatMatrix {
  const versions = type.versions.map((v) => v.version);
  const rows: CompatRow[] = [];
  for (const def of type.versions) {
    for (const [message, spec] of Object.entries(def.messages as Record<string, { kind: 'ask' | 'tell' }>)) {
      rows.push({ version: def.version, message, kind: spec.kind, cells: versions.map((node) => cellFor(type, def.version, message, node)) });
    }
  }
  return { type: type.name, versions, rows };
}

const label: Readonly<Record<Support, string>> = {
  native: 'native',
  compatible: 'compatible',
  past: 'past SO',
  future: 'future SO',
  disallowed: 'DISALLOWED',
  unsupported: '—',
};

/** A cell's text: a chain of several SOs says how many. */
function cellLabel(cell: CompatCell, disallowed = label.disallowed): string {
  if (cell.support === 'disallowed') return disallowed;
  const chain = (cell.support === 'past' || cell.support === 'future') && (cell.steps ?? 1) > 1;
  return chain ? `${label[cell.support]} chain (${cell.steps})` : label[cell.support];
}

function reasons(matrix: CompatMatrix): string[] {
  const out: string[] = [];
  for (const row of matrix.rows) {
    for (const cell of row.cells) {
      if (cell.support === 'disallowed') out.push(`${matrix.type}@${row.version} ${row.message} on a node at v${cell.node}: ${cell.reason}`);
    }
  }
  return out;
}

function usedSupports(matrix: CompatMatrix): Support[] {
  const used = new Set(matrix.rows.flatMap((r) => r.cells.map((c) => c.support)));
  return (Object.keys(supportMeaning) as Support[]).filter((s) => used.has(s));
}

/** The matrix as a plain-text table for a terminal. */
export function formatTable(matrix: CompatMatrix): string {
  const header = ['caller', 'message', ...matrix.versions.map((v) => `node v${v}`)];
  const body = matrix.rows.map((row, i) => [
    i > 0 && matrix.rows[i - 1]!.version === row.version ? '' : `${matrix.type}@${row.version}`,
    row.message,
    ...row.cells.map((c) => cellLabel(c)),
  ]);
  const widths = header.map((h, col) => Math.max(h.length, ...body.map((r) => r[col]!.length)));
  const line = (cells: string[]) => cells.map((c, col) => c.padEnd(widths[col]!)).join('  ').trimEnd();
  const out = [`${matrix.type}: how a node at each version (columns) serves each caller's messages (rows)`, '', line(header), line(widths.map((w) => '-'.repeat(w)))];
  body.forEach((r, i) => {
    if (i > 0 && r[0] !== '') out.push('');
    out.push(line(r));
  });
  out.push('');
  for (const s of usedSupports(matrix)) out.push(`${label[s].padEnd(15)} ${supportMeaning[s]}`);
  const why = reasons(matrix);
  if (why.length > 0) out.push('', 'Disallowed:', ...why.map((r) => `  ${r}`));
  return out.join('\n') + '\n';
}

function escapeCell(text: string): string {
  return text.replace(/\|/g, '\\|');
}

/** The matrix as a GitHub-flavoured Markdown table. */
export function formatMarkdown(matrix: CompatMatrix): string {
  const md = (s: Support) => (s === 'disallowed' ? '**disallowed**' : label[s]);
  const mdCell = (c: CompatCell) => cellLabel(c, '**disallowed**');
  const out = [
    `### \`${matrix.type}\``,
    '',
    `| caller | message | ${matrix.versions.map((v) => `node v${v}`).join(' | ')} |`,
    `|---|---|${matrix.versions.map(() => '---').join('|')}|`,
  ];
  for (const row of matrix.rows) {
    out.push(`| ${matrix.type}@${row.version} | \`${row.message}\` | ${row.cells.map(mdCell).join(' | ')} |`);
  }
  out.push('');
  for (const s of usedSupports(matrix)) out.push(`- ${md(s)}: ${supportMeaning[s]}`);
  const why = reasons(matrix);
  if (why.length > 0) out.push('', 'Disallowed:', '', ...why.map((r) => `- ${escapeCell(r)}`));
  return out.join('\n') + '\n';
}
