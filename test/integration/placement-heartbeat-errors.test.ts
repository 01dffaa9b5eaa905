/**
 * A heartbeat that fails in an unexpected way — here, the node's record
 * cannot be built — is a failed heartbeat like a refused write: it is logged,
 * the lease runs on from the last good one, and the next heartbeat is tried a
 * heartbeat later. It must not end the heartbeats for good (the node would
 * fence and never renew) nor escape as an unhandled rejection (which ends the
 * process).
 */
import * as assert from 'uvu/assert';
import { Kvm } from '@nats-io/kv';
import { silentLogger, type Logger } from '../../runtime/index.ts';
import type { NodeRecord } from '../../runtime/udb/records.ts';
import { placementSuite, testPlacement } from '../support/placement.ts';
import { sleep } from '../support/nats.ts';

const SHARDS = 8;
const LEASE_MS = 600;
const HEARTBEAT_MS = 100;

const test = placementSuite('placement: heartbeat errors');

test('placement - heartbeats go on after one whose record could not be built, and the lease is renewed', async (ctx) => {
  const kv = await new Kvm(ctx.nc).create('hberr_udb', { history: 1 });
  const unhandled: unknown[] = [];
  const onUnhandled = (e: unknown) => unhandled.push(e);
  process.on('unhandledRejection', onUnhandled);
  const warnings: string[] = [];
  const logger: Logger = { ...silentLogger, warn: (message, fields) => warnings.push(`${message} ${String(fields?.error ?? '')}`), child: () => logger };
  let builds = 0;
  /** Heartbeats 3 to 12 cannot build the record: longer than a lease. */
  const failing = (n: number) => n >= 3 && n <= 12;
  const p = testPlacement(kv, 'hb-a', {
    shards: SHARDS,
    heartbeatMs: HEARTBEAT_MS,
    leaseMs: LEASE_MS,
    logger,
    record: (): NodeRecord => {
      if (failing(++builds)) throw new Error('the record cannot be built');
      return { id: 'hb-a', service: 'hberr', host: 'test', pid: process.pid, versions: {}, status: 'running', startedAt: 0, heartbeatAt: Date.now() };
    },
  });
  ctx.placements.push(p);
  try {
    await p.start();
    // Through the failures (a lease and more without a heartbeat: the node fences), and past them.
    for (let waited = 0; builds <= 12 + 5; waited += 50) {
      assert.ok(waited < 20 * LEASE_MS, `heartbeats go on: ${builds} records built`);
      await sleep(50);
    }
    for (let waited = 0; p.ownedShards().size < SHARDS || !p.leaseValid(); waited += 50) {
      assert.ok(waited < 10 * LEASE_MS, 'the lease is renewed and every shard taken back');
      await sleep(50);
    }
    assert.equal(unhandled.map(String), [], 'no unhandled rejection');
    assert.ok(warnings.some((w) => /heartbeat failed.*the record cannot be built/.test(w)), `the failure is logged as a failed heartbeat: ${JSON.stringify(warnings.slice(0, 3))}`);
  } finally {
    process.off('unhandledRejection', onUnhandled);
  }
});

test.run();
