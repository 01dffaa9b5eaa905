/**
 * Test support for placement on a real NATS KV: a suite with its own
 * nats-server and connection (every placement a test adds is stopped after
 * it), and placements with a test's timing and a minimal node record.
 */
import { suite, type Test } from 'uvu';
import type { KV } from '@nats-io/kv';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { Placement } from '../../runtime/internal.ts';
import { silentLogger, systemClock } from '../../runtime/index.ts';
import type { PlacementOptions } from '../../runtime/host/placement.ts';
import { startEmbeddedNats, type EmbeddedNats } from './nats.ts';

export interface PlacementContext {
  nats: EmbeddedNats;
  nc: NatsConnection;
  placements: Placement[];
}

export function placementSuite(name: string): Test<PlacementContext> {
  const test = suite<PlacementContext>(name);
  test.before(async (ctx) => {
    ctx.nats = await startEmbeddedNats();
    ctx.nc = await connect({ servers: ctx.nats.url });
    ctx.placements = [];
  });
  test.after(async (ctx) => {
    for (const p of ctx.placements) await p.stop({ leave: false });
    await ctx.nc?.close();
    await ctx.nats?.stop();
  });
  return test;
}

/**
 * A placement of node `id` on `kv` (not started), whose record says only that
 * the node runs; `options` gives the timing and anything else to set.
 */
export function testPlacement(kv: KV, id: string, options: Pick<PlacementOptions, 'shards' | 'heartbeatMs' | 'leaseMs'> & Partial<PlacementOptions>): Placement {
  return new Placement({
    kv,
    nodeId: id,
    incarnation: `${id}-1`,
    recordRevision: 0,
    clock: systemClock,
    logger: silentLogger,
    record: () => ({ id, service: 'placement-test', host: 'test', pid: process.pid, versions: {}, status: 'running', startedAt: 0, heartbeatAt: Date.now() }),
    onOwnedChange: () => undefined,
    ...options,
  });
}
