/**
 * Node labels: `zone=a`, `group=g1`, `ring=17` — what an operator says about
 * where a node runs and what it belongs to. A node carries them in its UDB
 * record (`labels`), `molt status` shows them, and scheduling functions see
 * them in every node view, so a schedule can go zone by zone (`zones`), keep
 * a replica group's quorum (`groups`) or spare a ring's successors (`ring`).
 *
 * Labels are fixed for a process's life: they are configuration, not state.
 * Their form follows Kubernetes' labels, so the same names carry over.
 *
 * @module
 */
import { ErrorCode, MoltError } from '../errors.ts';

/** A node's labels: name → value. */
export type NodeLabels = Readonly<Record<string, string>>;

/** Most labels one node carries: its record is written every heartbeat. */
export const MAX_LABELS = 16;

const NAME = /^[a-z0-9]([a-z0-9._/-]{0,61}[a-z0-9])?$/;
const VALUE = /^([A-Za-z0-9]([A-Za-z0-9._-]{0,61}[A-Za-z0-9])?)?$/;

/**
 * Checks a node's labels and returns a frozen copy.
 *
 * @throws MoltError `InvalidDefinition` naming the label that is wrong and the form it must have.
 */
export function checkLabels(labels: Readonly<Record<string, unknown>> | undefined): NodeLabels {
  if (labels === undefined) return Object.freeze({});
  const entries = Object.entries(labels);
  if (entries.length > MAX_LABELS) {
    throw new MoltError(ErrorCode.InvalidDefinition, `a node carries at most ${MAX_LABELS} labels, got ${entries.length}`, { data: { labels: Object.keys(labels) } });
  }
  const out: Record<string, string> = {};
  for (const [name, value] of entries) {
    if (!NAME.test(name)) {
      throw new MoltError(
        ErrorCode.InvalidDefinition,
        `label name '${name}' must be 1 to 63 characters of lower-case letters, digits, '.', '_', '/' and '-', beginning and ending with a letter or digit (e.g. zone, group)`,
        { data: { label: name } },
      );
    }
    if (typeof value !== 'string' || !VALUE.test(value)) {
      throw new MoltError(
        ErrorCode.InvalidDefinition,
        `label '${name}' has value ${JSON.stringify(value)}: a value is a string of at most 63 letters, digits, '.', '_' and '-', beginning and ending with a letter or digit (e.g. zone=eu-west-1a)`,
        { data: { label: name } },
      );
    }
    out[name] = value;
  }
  return Object.freeze(out);
}

/**
 * Parses `--label` flags (`zone=a`, given once per label).
 *
 * @throws MoltError `InvalidDefinition` for a flag without `=`, a label given twice, or a bad name or value.
 */
export function parseLabelFlags(flags: readonly string[] | undefined): NodeLabels {
  const out: Record<string, string> = {};
  for (const flag of flags ?? []) {
    const eq = flag.indexOf('=');
    if (eq <= 0) throw new MoltError(ErrorCode.InvalidDefinition, `--label takes <name>=<value>, e.g. --label zone=a; got '${flag}'`);
    const name = flag.slice(0, eq);
    if (Object.hasOwn(out, name)) throw new MoltError(ErrorCode.InvalidDefinition, `--label ${name} is given twice ('${name}=${out[name]}' and '${flag}'); give each label once`);
    out[name] = flag.slice(eq + 1);
  }
  return checkLabels(out);
}

/** Labels as one short text: `group=g1,zone=a` (sorted by name), or '' for none. */
export function formatLabels(labels: NodeLabels | undefined): string {
  if (!labels) return '';
  return Object.keys(labels)
    .sort()
    .map((k) => `${k}=${labels[k]}`)
    .join(',');
}

/** The labels in a record read from the UDB: only string values are kept (a malformed record gives none). */
export function labelsOf(value: unknown): NodeLabels | undefined {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return undefined;
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(value)) if (typeof v === 'string') out[k] = v;
  return Object.keys(out).length > 0 ? out : undefined;
}
