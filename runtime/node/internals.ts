/**
 * The node's upgrade verbs that only the upgrade manager uses: its UDB
 * bucket, publishing a status, rolling a type back, ending a rollback. They
 * are kept off the public `MoltNode` (a user of a node has no business with
 * them) and reached through {@link nodeInternals}.
 *
 * @module
 */
import type { KV, KvEntry } from '@nats-io/kv';
import { ErrorCode, MoltError } from '../errors.ts';
import type { NodeRecord } from '../udb/records.ts';

/** What the upgrade manager may do to the node it runs on. */
export interface NodeInternals {
  /** The upgrade database bucket. */
  readonly udb: KV;
  /** Sets the status published in this node's UDB record. */
  setStatus(status: NodeRecord['status'], lastError?: string): Promise<void>;
  /**
   * Rolls a type back in place to `version` (current − 1), through the current
   * version's `down` transform. On a node already at `version`, only marks the
   * type rolled back, so state written by the newer version is carried down when loaded.
   */
  downgrade(type: string, version: number): Promise<{ transformed: number; failed: number }>;
  /** Forgets that a type was rolled back (its newer version was published again). */
  clearRollback(type: string): void;
  /**
   * Which newer versions may still arrive, as the manager knows from the
   * published upgrades (undefined: assume any may): a caller of a version
   * nobody published is told so, not to retry.
   */
  expectUpgrades(predicate: ((type: string, version: number) => boolean) | undefined): void;
  /**
   * Follows the node records (`nodes.>`) through the node's own placement
   * watch instead of a watch of one's own: `onEntry` gets every record it
   * delivers, from now on (read the current ones yourself). Placement restarts
   * its watch itself if it ends. Returns a function that stops following.
   */
  followNodeRecords(onEntry: (entry: KvEntry) => void): () => void;
}

const internals = new WeakMap<object, NodeInternals>();

/** @internal Registers the internals of a node created by createNode. */
export function attachInternals(node: object, handle: NodeInternals): void {
  internals.set(node, handle);
}

/** The upgrade verbs of a node made by `createNode`. */
export function nodeInternals(node: object): NodeInternals {
  const handle = internals.get(node);
  if (!handle) throw new MoltError(ErrorCode.InvalidDefinition, 'not a node made by createNode(): the upgrade manager runs only on a Molt node');
  return handle;
}
