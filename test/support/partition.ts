/**
 * Test support for partitions between the servers of a NATS cluster: a suite
 * whose servers' routes run through proxies the test controls, the Molt
 * nodes, clients and loads it starts (all stopped after it, whatever
 * happened), and a counter node started on one server.
 */
import { suite, type Test } from 'uvu';
import type { MoltClient } from '../../runtime/index.ts';
import { spawnScript, type ChildNode } from './nats.ts';
import { startNatsCluster, type NatsCluster } from './cluster.ts';

/** The streams of the counters service's actor state and upgrade database. */
export const STATE_STREAM = 'KV_molt_counters_state';
export const UDB_STREAM = 'KV_molt_counters_udb';

/** The error codes a call may get while a partition heals: retryable, never a wrong answer. */
export const RETRYABLE = new Set(['Timeout', 'Unavailable', 'OutcomeUnknown']);

export interface PartitionContext {
  cluster: NatsCluster;
  nodes: ChildNode[];
  clients: MoltClient[];
  stopLoads: Array<() => Promise<void>>;
}

/** A uvu suite on a partitionable 3-server cluster; what a test adds to the context is stopped after it. */
export function partitionSuite(name: string): Test<PartitionContext> {
  const test = suite<PartitionContext>(name);
  test.before(async (ctx) => {
    ctx.nodes = [];
    ctx.clients = [];
    ctx.stopLoads = [];
    ctx.cluster = await startNatsCluster({ partitionable: true });
  });
  test.after(async (ctx) => {
    for (const stop of ctx.stopLoads) await stop().catch(() => undefined);
    for (const c of ctx.clients) await c.close().catch(() => undefined);
    await Promise.all(ctx.nodes.map((n) => n.kill('SIGKILL')));
    await ctx.cluster?.stop();
  });
  return test;
}

/** `molt node` serving test/fixtures/counter.ts through the server at `url` alone, R3. */
export function startCounterNode(url: string, id: string, o: { leaseMs: number; heartbeatMs: number; log: 'warn' | 'info' }): ChildNode {
  return spawnScript('bin/molt.js', ['node', 'test/fixtures/counter.ts', '--nats', url, '--id', id, '--replicas', '3', '--lease', String(o.leaseMs), '--heartbeat', String(o.heartbeatMs)], { MOLT_LOG: o.log });
}
