/**
 * JetStream storage runs out. The actor-state bucket is created with a size
 * limit below the server's storage (`stateMaxBytes`), so when actor state
 * fills it: writes fail with `Unavailable` (nothing written), the node keeps
 * its lease because heartbeats still have room, reads keep being answered,
 * and writes resume as soon as records are removed — without a restart.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { connect } from '@nats-io/transport-node';
import { jetstreamManager } from '@nats-io/jetstream';
import { createClient, createNode, isMoltError, silentLogger } from '../../runtime/index.ts';
import service, { counterV1 } from '../fixtures/counter.ts';
import { startEmbeddedNats } from '../support/nats.ts';

const LEASE_MS = 1500;
const test = suite('storage full');

test('storage full - writes fail without writing, reads and leases survive, writes resume once space is freed', async () => {
  const nats = await startEmbeddedNats({ config: 'jetstream { max_file_store: 524288 }\n' });
  const node = await createNode({ service, nats: { servers: nats.url }, stateMaxBytes: 192 * 1024, leaseMs: LEASE_MS, heartbeatMs: 300, logger: silentLogger });
  const client = await createClient({ service: 'counters', nats: { servers: nats.url }, timeoutMs: 3000 });
  const nc = await connect({ servers: nats.url });
  try {
    let written = 0;
    let refusal: unknown;
    for (; written < 20_000; written++) {
      try {
        await client.actor(counterV1, `fill-${written}`).increment({ by: 1 });
      } catch (e) {
        refusal = e;
        break;
      }
    }
    assert.ok(isMoltError(refusal, 'Unavailable'), String(refusal));
    assert.match(String(refusal), /nothing was written/);
    assert.is(await client.actor(counterV1, `fill-${written}`).get(), 0, 'the refused write left nothing behind');

    // Several leases later: still serving reads of state in memory and in the bucket.
    await new Promise((r) => setTimeout(r, 3 * LEASE_MS));
    assert.is(node.ownedShards().length, 64, 'the node kept its shards');
    for (const key of ['fill-0', `fill-${Math.floor(written / 2)}`, `fill-${written - 1}`]) assert.is(await client.actor(counterV1, key).get(), 1, key);

    // Free space by removing records, as an operator would (a stream purge adds nothing).
    const jsm = await jetstreamManager(nc);
    for (let i = 0; i < written / 2; i++) await jsm.streams.purge('KV_molt_counters_state', { filter: `$KV.molt_counters_state.counter.fill-${i}` });
    assert.is(await client.actor(counterV1, 'after-purge').increment({ by: 1 }), 1, 'writes resumed without a restart');
    assert.is(await client.actor(counterV1, `fill-${written - 1}`).increment({ by: 1 }), 2);
  } finally {
    await nc.close();
    await client.close();
    await node.stop();
    await nats.stop();
  }
});

test.run();
