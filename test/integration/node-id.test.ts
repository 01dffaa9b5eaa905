/**
 * One process per node id: a second process started under the id of a live
 * node is refused (both would claim the same shards), while a node restarted
 * under the id of a crashed one — its record fresh, its heartbeats stopped —
 * starts after watching the record for a lease, and one started while the
 * earlier process leaves starts as soon as it has left.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { hostname } from 'node:os';
import { Kvm } from '@nats-io/kv';
import { connectNats, createNode, isMoltError, silentLogger, type MoltNode } from '../../runtime/index.ts';
import { bucketNames, NODE_PREFIX, type NodeRecord } from '../../runtime/internal.ts';
import service from '../fixtures/counter.ts';
import { startEmbeddedNats, type EmbeddedNats } from '../support/nats.ts';

const test = suite<{ nats: EmbeddedNats }>('node id');

test.before(async (ctx) => {
  ctx.nats = await startEmbeddedNats();
});

test.after(async (ctx) => {
  await ctx.nats?.stop();
});

const start = (url: string, nodeId: string): Promise<MoltNode> => createNode({ service, nats: { servers: url }, nodeId, logger: silentLogger, heartbeatMs: 200, leaseMs: 1500 });

test('node id - a second process under the id of a live node is refused with the owner named', async ({ nats }) => {
  const first = await start(nats.url, 'twin');
  try {
    await start(nats.url, 'twin').then(
      (second) => {
        void second.stop();
        assert.unreachable('the second node must not start');
      },
      (e) => {
        assert.ok(isMoltError(e) && e.code === 'OperationRefused', String(e));
        assert.match(e.message, /node id 'twin' is in use/);
        assert.match(e.message, new RegExp(`process ${process.pid}`));
        assert.match(e.message, /--id/);
      },
    );
    // The live node is untouched and keeps serving.
    assert.ok(first.ownedShards().length > 0);
  } finally {
    await first.stop();
  }
  // Once it has stopped, the id is free again, at once.
  const t0 = Date.now();
  const again = await start(nats.url, 'twin');
  assert.ok(Date.now() - t0 < 1500, 'a cleanly stopped id is free without waiting');
  await again.stop();
});

test('node id - a node restarted under the id of a crashed one starts once the record stays still', async ({ nats }) => {
  // What a SIGKILLed node leaves behind: its record, heartbeat fresh, no process behind it.
  const nc = await connectNats({ servers: nats.url });
  try {
    const udb = await new Kvm(nc).open(bucketNames(service.name).udb);
    const orphan: NodeRecord = { id: 'phoenix', service: service.name, host: 'gone', pid: 999_999, versions: { counter: 1, cache: 1 }, status: 'running', startedAt: Date.now() - 10_000, heartbeatAt: Date.now() };
    await udb.put(`${NODE_PREFIX}phoenix`, JSON.stringify(orphan));
    const t0 = Date.now();
    const node = await start(nats.url, 'phoenix');
    const waited = Date.now() - t0;
    assert.ok(waited >= 500, `watched the record for a few heartbeats first (waited ${waited} ms)`);
    assert.is(node.id, 'phoenix');
    await node.stop();
  } finally {
    await nc.close();
  }
});

test('node id - a node started while the process under its id leaves starts once it has left', async ({ nats }) => {
  // A record of a live process (this one) on this host: the new node must wait.
  const nc = await connectNats({ servers: nats.url });
  try {
    const udb = await new Kvm(nc).open(bucketNames(service.name).udb);
    const leaving: NodeRecord = { id: 'relay', service: service.name, host: hostname(), pid: process.pid, versions: { counter: 1, cache: 1 }, status: 'running', startedAt: Date.now() - 10_000, heartbeatAt: Date.now() };
    await udb.put(`${NODE_PREFIX}relay`, JSON.stringify(leaving));
    const starting = start(nats.url, 'relay');
    await new Promise((r) => setTimeout(r, 300));
    await udb.delete(`${NODE_PREFIX}relay`); // what a process that stops does
    const node = await starting;
    try {
      await new Promise((r) => setTimeout(r, 1000));
      assert.ok(node.ownedShards().length > 0, 'it serves: its heartbeats write on from the deletion');
    } finally {
      await node.stop();
    }
  } finally {
    await nc.close();
  }
});

test.run();
