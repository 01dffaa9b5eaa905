/**
 * One process per node id. A node's id names its UDB record, its shards and
 * its claims: two live processes under one id would both heartbeat one record,
 * claim the same shards and serve the same actors.
 *
 * @module
 */
import type { KV, KvEntry } from '@nats-io/kv';
import { ErrorCode, MoltError } from '../errors.ts';
import type { Clock } from '../env.ts';
import { NODE_PREFIX, type NodeRecord } from '../host/placement.ts';

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
 * using. A record recent enough to belong to a live process is watched for a
 * few of its heartbeats; if it moves, its owner is alive. A node restarted
 * right after a crash waits those heartbeats once, then starts.
 */
export async function ensureIdFree(udb: KV, nodeId: string, previous: KvEntry | null, timing: { heartbeatMs: number; leaseMs: number; clock: Clock }): Promise<void> {
  const record = readNodeRecord(previous);
  if (!record || !previous) return;
  const { heartbeatMs, leaseMs, clock } = timing;
  if (record.status === 'stopped' || clock.now() - record.heartbeatAt > leaseMs) return;
  await new Promise<void>((resolve) => clock.setTimeout(resolve, Math.ceil(heartbeatMs * 2.5)));
  const now = await udb.get(`${NODE_PREFIX}${nodeId}`).catch(() => null);
  if (!now || now.revision === previous.revision) return;
  const current = readNodeRecord(now);
  if (!current || current.status === 'stopped') return;
  throw new MoltError(
    ErrorCode.OperationRefused,
    `node id '${nodeId}' is in use: process ${current.pid} on host '${current.host}' is running under it and heartbeating its record. Stop that process, or start this one with another id (--id)`,
    { retryable: false, data: { nodeId, pid: current.pid, host: current.host } },
  );
}
