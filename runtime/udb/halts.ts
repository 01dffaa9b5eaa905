/**
 * A node's halt of a rollout, and the control in force on a rollout.
 *
 * A node halts a rollout when it sees transform failures of the version it
 * upgraded to. It used to write the operator's own key, `control.<rollout>`
 * — so every node needed the operator's permission, and a compromised node
 * could resume, abort or roll back any rollout. Now it writes a key of its
 * own, `control.<rollout>.<node>`, in the same family (one watch delivers
 * both in the order they were written), which permissions can grant to that
 * node alone (docs/permissions.md). Such a key counts only as what a node may
 * do: a `pause` signed `node <node>`; anything else there is ignored.
 *
 * The control in force is the latest record of the family, by UDB revision
 * (never by the writers' clocks): a halt after a `resume` pauses again, a
 * `resume` after a halt lifts it. `abort` and `rollback` are final: no halt
 * written after them replaces them.
 *
 * @module
 */
import type { KvEntry } from '@nats-io/kv';
import { parseRecord, UdbPrefix, udbShapes, type ControlRecord } from './records.ts';

/** What a node writes when it halts a rollout (its `control.<rollout>.<node>` key). */
export function haltRecord(rolloutId: string, nodeId: string, reason: string, at: number): ControlRecord {
  return { rolloutId, command: 'pause', reason, by: haltAuthor(nodeId), at };
}

function haltAuthor(nodeId: string): string {
  return `node ${nodeId}`;
}

/**
 * The control record an entry of the `control.` family stands for, or
 * undefined if it stands for none (deleted, malformed, or a node's key holding
 * anything but that node's pause of that rollout).
 */
export function controlOf(entry: Pick<KvEntry, 'key' | 'value' | 'operation'>): ControlRecord | undefined {
  if (entry.operation !== 'PUT' || !entry.key.startsWith(UdbPrefix.control)) return undefined;
  const record = parseRecord(entry.value, udbShapes.control);
  if (!record) return undefined;
  const tokens = entry.key.slice(UdbPrefix.control.length).split('.');
  if (tokens[0] !== record.rolloutId) return undefined;
  if (tokens.length === 1) return record;
  if (tokens.length !== 2) return undefined;
  return record.command === 'pause' && record.by === haltAuthor(tokens[1]!) ? record : undefined;
}

/** True if `next`, written after `current`, is the control in force after it. */
export function replaces(current: ControlRecord | undefined, next: ControlRecord): boolean {
  return current === undefined || (current.command !== 'abort' && current.command !== 'rollback') || next.command === current.command;
}

/** The control in force on each rollout, from entries of the `control.` family (any order). */
export function controlsInForce(entries: ReadonlyArray<Pick<KvEntry, 'key' | 'value' | 'operation' | 'revision'>>): Map<string, ControlRecord> {
  const out = new Map<string, ControlRecord>();
  for (const entry of [...entries].sort((a, b) => a.revision - b.revision)) {
    const record = controlOf(entry);
    if (record && replaces(out.get(record.rolloutId), record)) out.set(record.rolloutId, record);
  }
  return out;
}
