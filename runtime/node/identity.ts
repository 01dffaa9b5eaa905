/**
 * One process per node id. A node's id names its UDB record, its shards and
 * its claims: two live processes under one id would both heartbeat one record,
 * claim the same shards and serve the same actors.
 *
 * @module
 */
import { hostname } from 'node:os';
import type { KV, KvEntry } from '@nats-io/kv';
import { ErrorCode, MoltError } from '../errors.ts';
import type { Clock } from '../env.ts';
import { NODE_PREFIX } from '../host/placement.ts';
import type { NodeRecord } from '../udb/records.ts';

/** A node id's last record, parsed; undefined when absent, deleted or malformed. */
export function readNodeRecord(entry: KvEntry | null): NodeRecord | undefined {
  if (!entry || entry.operation !== 'PUT') return undefined;
  try {
    return entry.json<NodeRecord>();
  } catch {
    return undefined; // a malformed record belongs to nobody
  }
}

/**
 * Refuses to start a second process under a node id that a live process is
 * using, and otherwise waits until an earlier process under the id can no
 * longer be serving.
 *
 * A record that is absent, deleted or marked stopped belongs to nobody. A
 * record written by a process on this host that no longer exists belongs to
 * nobody either (a restart after a crash starts at once). Any other record may
 * belong to a live process — or to one that is paused (SIGSTOP, a frozen VM)
 * and will resume — so it is watched for a whole lease: if it moves, its owner
 * is alive and this process refuses to start; if it does not, the owner's lease
 * has run out by its own clock too, and this process may take the id over.
 * A paused owner that resumes later finds its record written by another
 * incarnation and stops for good (host/placement.ts).
 *
 * @returns the id's record as last read: heartbeats write on from its revision.
 */
export async function ensureIdFree(udb: KV, nodeId: string, previous: KvEntry | null, timing: { heartbeatMs: number; leaseMs: number; clock: Clock }): Promise<KvEntry | null> {
  const record = readNodeRecord(previous);
  if (!record || !previous || record.status === 'stopped') return previous;
  if (record.host === hostname() && typeof record.pid === 'number' && !processExists(record.pid)) return previous;
  const { heartbeatMs, leaseMs, clock } = timing;
  const deadline = clock.monotonic() + leaseMs;
  while (clock.monotonic() < deadline) {
    await new Promise<void>((resolve) => clock.setTimeout(resolve, Math.min(heartbeatMs, Math.max(1, deadline - clock.monotonic()))));
    const now = await udb.get(`${NODE_PREFIX}${nodeId}`).catch(() => null);
    if (!now || now.revision === previous.revision) continue;
    const current = readNodeRecord(now);
    // Deleted or stopped meanwhile: the earlier process left.
    if (!current || current.status === 'stopped') return now;
    throw new MoltError(
      ErrorCode.OperationRefused,
      `node id '${nodeId}' is in use: process ${current.pid} on host '${current.host}' is running under it and heartbeating its record. Stop that process, or start this one with another id (--id)`,
      { retryable: false, data: { nodeId, pid: current.pid, host: current.host } },
    );
  }
  return previous;
}

/** True if a process with this pid exists on this host (signal 0 checks without sending). */
function processExists(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}
