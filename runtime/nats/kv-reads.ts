/**
 * Reads of a KV bucket that nats.js's KV API makes only through a consumer,
 * made here without one — or with one that is deleted when the read ends.
 *
 * nats.js's `kv.keys()` creates an ordered push consumer and, when the
 * listing ends, unsubscribes from it without deleting it: nats-server keeps
 * it for the ordered consumer's idle threshold, five minutes, and wakes it on
 * every message stored under its filter meanwhile. A node lists keys when it
 * starts and on every full reconciliation (once a minute): through
 * `kv.keys()`, a fleet would keep several abandoned consumers per node on the
 * server at all times, each made through the JetStream meta leader — which a
 * read should not need: under a partition the meta leader may be the server
 * cut off.
 *
 * Keys are listed two ways, by the size of what is listed:
 * - {@link listSubjectKeys}: one stream info request with a subject filter,
 *   answered by the stream's leader, no consumer at all. It lists every key
 *   with a message in the stream, deleted keys included (their delete marker
 *   is a message): the caller reads each key anyway and skips what it finds
 *   deleted. For the upgrade database and the descriptors, whose keys are
 *   bounded by the fleet and by `molt prune`.
 * - {@link listLiveKeys}: `kv.keys()`'s consumer (the last message of each
 *   key, headers only, deleted keys left out), deleted as soon as the listing
 *   ends. For the actors' state buckets, which may hold millions of keys (a
 *   stream info reply with every subject would exceed a message's size).
 *
 * @module
 */
import type { Bucket, KV } from '@nats-io/kv';
import { DeliverPolicy, type JsMsg } from '@nats-io/jetstream';

/**
 * The revision (stream sequence) of the newest message under `filter` (a KV
 * key filter such as `control.>`), deletes included; 0 if there is none. One
 * message get answered by the stream's leader: what a watch of `filter` must
 * deliver sooner or later, so a watch that has not delivered it long after
 * it was stored has stalled (manager/watch.ts).
 */
export async function lastRevision(kv: KV, filter: string): Promise<number> {
  const bucket = kv as Bucket;
  const message = await bucket.jsm.streams.getMessage(bucket.stream, { last_by_subj: bucket.fullKeyName(filter) });
  return message?.seq ?? 0;
}

/** How long a key listing waits for its last key before it fails. */
const LISTING_TIMEOUT_MS = 30_000;

/** The header nats.js's KV marks deletes and purges with. */
const OPERATION_HEADER = 'KV-Operation';

/**
 * The keys matching `filter` (a KV key filter such as `nodes.>`) that have a
 * message in the bucket's stream, deleted ones included. One request to the
 * stream's leader; the client pages through a long answer.
 */
export async function listSubjectKeys(kv: KV, filter: string): Promise<string[]> {
  const bucket = kv as Bucket;
  const info = await bucket.jsm.streams.info(bucket.stream, { subjects_filter: bucket.fullKeyName(filter) });
  const subjects = info.state.subjects ? Object.keys(info.state.subjects) : [];
  return subjects.map((subject) => bucket.decodeKey(subject.substring(bucket.prefixLen)));
}

/**
 * The keys matching `filter` whose latest value is not a delete or purge, as
 * `kv.keys()` lists them, with the listing's consumer deleted once it ends.
 */
export async function listLiveKeys(kv: KV, filter: string): Promise<string[]> {
  const bucket = kv as Bucket;
  const keys = new Set<string>();
  await readLastOfEach(kv, filter, { headersOnly: true, timeoutMs: LISTING_TIMEOUT_MS, what: 'listing' }, (m) => {
    const operation = m.headers?.get(OPERATION_HEADER);
    // A Set: an ordered consumer that restarted under concurrent writes may deliver a key twice.
    if (operation !== 'DEL' && operation !== 'PURGE') keys.add(bucket.decodeKey(m.subject.substring(bucket.prefixLen)));
  });
  return [...keys];
}

/**
 * Hands `onMessage` the last message of every key matching `filter` (deletes
 * and purges too), through one consumer deleted as soon as the read ends.
 * Fails if the read has not ended within `timeoutMs`.
 */
export async function readLastOfEach(
  kv: KV,
  filter: string,
  options: { headersOnly?: boolean; timeoutMs: number; what: string },
  onMessage: (m: JsMsg) => void,
): Promise<void> {
  const bucket = kv as Bucket;
  const consumer = await bucket.js.consumers.getPushConsumer(bucket.stream, {
    filter_subjects: bucket.fullKeyName(filter),
    deliver_policy: DeliverPolicy.LastPerSubject,
    ...(options.headersOnly ? { headers_only: true } : {}),
  });
  try {
    if ((await consumer.info(true)).num_pending === 0) return;
    const messages = await consumer.consume({
      callback: (m) => {
        onMessage(m);
        if (m.info.pending === 0) messages.stop();
      },
    });
    const timer = setTimeout(() => messages.stop(new Error(`the ${options.what} of '${filter}' did not end within ${options.timeoutMs} ms`)), options.timeoutMs);
    const ended = await messages.closed().finally(() => clearTimeout(timer));
    if (ended instanceof Error) throw ended;
  } finally {
    // Gone at once rather than after the server's idle threshold for ordered consumers (minutes).
    await consumer.delete().catch(() => undefined);
  }
}
