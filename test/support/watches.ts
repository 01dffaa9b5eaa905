/**
 * Test support: what a dying nats-server does to the membership watches of
 * the counters service, done on purpose — their consumers deleted — and the
 * wait for every key to be served again.
 */
import { connect } from '@nats-io/transport-node';
import { jetstreamManager } from '@nats-io/jetstream';
import { isMoltError, type MoltClient } from '../../runtime/index.ts';

const UDB_STREAM = 'KV_molt_counters_udb';

/**
 * Deletes the consumers behind every watch of `nodes.>` in the counters
 * service's upgrade database; returns how many. Their watchers are not told:
 * they deliver nothing more, as when the consumer's server dies.
 */
export async function deleteNodeWatches(url: string): Promise<number> {
  const nc = await connect({ servers: url });
  try {
    const jsm = await jetstreamManager(nc);
    const names: string[] = [];
    for await (const ci of jsm.consumers.list(UDB_STREAM)) {
      if (ci.config.filter_subject === '$KV.molt_counters_udb.nodes.>') names.push(ci.name);
    }
    // One may go away between the listing and its deletion (its watcher restarted): nothing to delete then.
    for (const name of names) await jsm.consumers.delete(UDB_STREAM, name).catch(() => undefined);
    return names.length;
  } finally {
    await nc.close();
  }
}

/**
 * Calls `get` on every counter in `keys` until each has answered once, or
 * until `deadline` (ms since the epoch); returns the keys that never did and
 * the last error seen.
 */
export async function untilEveryKeyAnswers(client: MoltClient, keys: readonly string[], deadline: number): Promise<{ unanswered: string[]; lastError: string }> {
  const pending = new Set(keys);
  let lastError = '';
  while (pending.size > 0 && Date.now() < deadline) {
    for (const key of [...pending]) {
      try {
        await client.call('counter', 1, key, 'get', {});
        pending.delete(key);
      } catch (e) {
        lastError = isMoltError(e) ? `${e.code}: ${e.message}` : String(e);
      }
    }
    if (pending.size > 0) await new Promise((r) => setTimeout(r, 100));
  }
  return { unanswered: [...pending], lastError };
}
