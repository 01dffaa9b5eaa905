/**
 * Where actor state lives: one record per actor, written with compare-and-set
 * on the revision. JetStream KV for durable types; memory for volatile ones.
 *
 * @module
 */
import type { KV } from '@nats-io/kv';
import type { Msg, MsgHdrs, NatsConnection, Subscription } from '@nats-io/transport-node';
import { ErrorCode, MoltError } from '../errors.ts';
import { inboxPrefixOf } from '../nats/connect.ts';
import { createIdGenerator, systemClock, type Clock, type IdGenerator, type TimerHandle } from '../env.ts';
import { encodedLength } from '../wire/codec.ts';
import { preEncodedHeaders } from '../nats/internals.ts';

/** A stored record and its revision (0 = absent). */
export interface StoredRecord {
  bytes: Uint8Array | undefined;
  revision: number;
}

/** Thrown by `save` when the revision is stale: another writer got there first. */
export class RevisionConflict extends Error {
  override readonly name = 'RevisionConflict';
}

/** Per-actor storage with compare-and-set. */
export interface StateStore {
  load(key: string): Promise<StoredRecord>;
  /** Writes `bytes` if the stored revision is still `revision` (0: must not exist); returns the new revision. */
  save(key: string, bytes: Uint8Array, revision: number): Promise<number>;
  /** Lists stored keys starting with `prefix` (for tools and tests). */
  keys?(prefix: string): Promise<string[]>;
}

/** How long a state write waits for JetStream's acknowledgement unless told otherwise. */
export const DEFAULT_WRITE_TIMEOUT_MS = 5000;

/** Options of {@link createKvStore}. */
export interface KvStoreOptions {
  /** How long a write waits for JetStream's acknowledgement before failing with `OutcomeUnknown` (default 5000 ms). */
  writeTimeoutMs?: number;
  /** Timers and the monotonic clock deadlines are measured on (default: the system clock). */
  clock?: Clock;
  /** Where the acknowledgement inbox's unique token comes from (default: random). */
  ids?: IdGenerator;
}

/**
 * Stores state in a JetStream KV bucket.
 *
 * Reads go through the KV client. Writes — the hot path: one per committed
 * batch of every durable actor — are published straight to the key's subject
 * with the `Nats-Expected-Last-Subject-Sequence` header, exactly the message
 * `kv.update` sends, and their acknowledgements are matched on one shared
 * inbox. The durability and the compare-and-set are JetStream's, unchanged;
 * what goes is the client's per-write reply subscription entry, timer, random
 * token and stack-captured error object, which cost more CPU than the rest of
 * a durable call (see docs/performance.md).
 */
export function createKvStore(kv: KV, nc: NatsConnection, options: KvStoreOptions = {}): StateStore & { close(): void; readonly ackInbox: string } {
  const writer = new AckedPublisher(nc, options.writeTimeoutMs ?? DEFAULT_WRITE_TIMEOUT_MS, options.clock ?? systemClock, options.ids ?? createIdGenerator());
  const subjectOf = keySubjects(kv);
  return {
    ackInbox: writer.inbox,
    async load(key) {
      const entry = await kv.get(key);
      if (!entry || entry.operation !== 'PUT') return { bytes: undefined, revision: entry ? entry.revision : 0 };
      return { bytes: entry.value, revision: entry.revision };
    },
    async save(key, bytes, revision) {
      const ack = await writer.publish(subjectOf(key), bytes, expectedLastSequence(revision));
      switch (ack.outcome) {
        case 'stored':
          return ack.seq;
        case 'refused':
          if (ack.errCode === WRONG_LAST_SEQUENCE) throw new RevisionConflict(`revision ${revision} of '${key}' is stale`);
          throw new MoltError(ErrorCode.Unavailable, `could not write actor state '${key}': ${ack.description}; nothing was written`, { data: { key } });
        case 'too-large':
          throw new MoltError(
            ErrorCode.StateTooLarge,
            `the actor's state would be ${bytes.length} bytes, more than the NATS server accepts in one message (max_payload ${ack.limit}); the call was not applied`,
            { data: { key, size: bytes.length, limit: ack.limit } },
          );
        case 'unknown':
          throw new MoltError(ErrorCode.OutcomeUnknown, `the write of actor state '${key}' was sent but ${ack.description}: the call may or may not have been applied`, { data: { key } });
        default:
          return unreachable(ack);
      }
    },
    async keys(prefix) {
      const out: string[] = [];
      for await (const k of await kv.keys(`${prefix}>`)) out.push(k);
      return out;
    },
    close() {
      writer.close();
    },
  };
}

/** JetStream's error code for a failed compare-and-set (also: create of an existing key). */
export const WRONG_LAST_SEQUENCE = 10071;

/** True for a failed compare-and-set as nats.js reports it (a JetStream API error 10071). */
export function isWrongLastSequence(e: unknown): boolean {
  const err = e as { name?: unknown; code?: unknown; message?: unknown } | null;
  return (err?.name === 'JetStreamApiError' && err.code === WRONG_LAST_SEQUENCE) || /wrong last sequence/i.test(String(err?.message ?? ''));
}

function unreachable(value: never): never {
  throw new Error(`unexpected value ${JSON.stringify(value)}`);
}

/**
 * The subject a write of `key` is published to: the bucket's own mapping
 * (`$KV.<bucket>.<key>`), taken from the KV client so a bucket it maps
 * differently is written where the client would write it.
 */
function keySubjects(kv: KV): (key: string) => string {
  const impl = kv as KV & { subjectForKey?: (key: string, edit?: boolean) => string; bucket?: string };
  if (typeof impl.subjectForKey === 'function') return (key) => impl.subjectForKey!(key, true);
  return (key) => `$KV.${impl.bucket}.${key}`;
}

/**
 * The header block `kv.update(key, value, revision)` sends (`kv.create` when
 * revision is 0: the subject must hold nothing yet), built as bytes: nats.js
 * publishes a header object by calling its `encode()`, and this block is the
 * same bytes a `headers()` with that one entry encodes to.
 */
export function expectedLastSequence(revision: number): MsgHdrs {
  return preEncodedHeaders(Buffer.from(`NATS/1.0\r\nNats-Expected-Last-Subject-Sequence: ${revision}\r\n\r\n`, 'latin1'));
}

/**
 * How a write ended: `stored`; `refused` by JetStream or never sent (nothing
 * was stored); `too-large` for the server (not sent); or `unknown` — sent,
 * but no acknowledgement came, so it may or may not have been stored.
 */
type PubAck =
  | { outcome: 'stored'; seq: number }
  | { outcome: 'refused'; errCode: number | undefined; description: string }
  | { outcome: 'too-large'; limit: number }
  | { outcome: 'unknown'; description: string };

interface PendingAck {
  resolve(ack: PubAck): void;
  deadline: number;
  subject: string;
}

/**
 * Publishes messages to JetStream and resolves with their acknowledgement,
 * matched by a sequence number in the reply subject of one shared inbox
 * subscription. A write unanswered within the timeout resolves as a failure
 * whose outcome is unknown (it may have been stored): the caller must reload
 * before writing again, as it must after any failed write.
 */
class AckedPublisher {
  readonly inbox: string;
  private readonly pending = new Map<number, PendingAck>();
  private readonly subscription: Subscription;
  private sweep: TimerHandle | undefined;
  private closed = false;
  private next = 0;

  constructor(
    private readonly nc: NatsConnection,
    private readonly timeoutMs: number,
    private readonly clock: Clock,
    ids: IdGenerator,
  ) {
    // Under the connection's own inbox prefix (a node's is `_MOLT_NODE.<id>`), where
    // docs/permissions.md lets no caller and no other node publish.
    this.inbox = `${inboxPrefixOf(nc)}.molt-kv.${ids.next()}`;
    this.subscription = nc.subscribe(`${this.inbox}.*`, {
      callback: (err, msg) => {
        if (!err) this.onAck(msg);
      },
    });
    this.scheduleSweep();
  }

  publish(subject: string, data: Uint8Array, headers: MsgHdrs): Promise<PubAck> {
    // nats.js refuses a message over the server's max_payload by throwing; say
    // so as what it is, a permanent refusal, not a passing unavailability.
    const limit = this.nc.info?.max_payload;
    if (limit !== undefined && data.length + encodedLength(headers) > limit) return Promise.resolve({ outcome: 'too-large', limit });
    const id = this.next++;
    return new Promise<PubAck>((resolve) => {
      this.pending.set(id, { resolve, deadline: this.clock.monotonic() + this.timeoutMs, subject });
      try {
        this.nc.publish(subject, data, { reply: `${this.inbox}.${id}`, headers });
      } catch (e) {
        this.pending.delete(id);
        resolve({ outcome: 'refused', errCode: undefined, description: `cannot publish to NATS: ${(e as Error).message}` });
      }
    });
  }

  private onAck(msg: Msg): void {
    const id = Number(msg.subject.slice(this.inbox.length + 1));
    const waiting = this.pending.get(id);
    if (!waiting) return; // timed out already
    this.pending.delete(id);
    if (msg.data.length === 0) {
      // A status message: 503 when no stream listens on the subject (the
      // bucket is gone, or its stream has no leader right now).
      const code = msg.headers?.code ?? 0;
      waiting.resolve({ outcome: 'refused', errCode: undefined, description: code === 503 ? `no JetStream stream answered on ${waiting.subject} (no responders)` : `JetStream answered status ${code} ${msg.headers?.description ?? ''}`.trim() });
      return;
    }
    let ack: { seq?: unknown; error?: { err_code?: number; description?: string } };
    try {
      ack = JSON.parse(decoder.decode(msg.data)) as typeof ack;
    } catch {
      waiting.resolve({ outcome: 'unknown', description: 'JetStream sent an acknowledgement that is not JSON' });
      return;
    }
    if (ack.error) waiting.resolve({ outcome: 'refused', errCode: ack.error.err_code, description: ack.error.description ?? `JetStream error ${ack.error.err_code}` });
    else if (typeof ack.seq === 'number') waiting.resolve({ outcome: 'stored', seq: ack.seq });
    else waiting.resolve({ outcome: 'unknown', description: 'JetStream sent an acknowledgement without a sequence' });
  }

  /** One coarse timer for every deadline instead of one per write. */
  private scheduleSweep(): void {
    this.sweep = this.clock.setTimeout(() => {
      this.expire(this.clock.monotonic());
      if (!this.closed) this.scheduleSweep();
    }, Math.min(250, Math.max(10, this.timeoutMs / 10)));
  }

  private expire(now: number): void {
    for (const [id, waiting] of this.pending) {
      if (now < waiting.deadline) continue;
      this.pending.delete(id);
      waiting.resolve({ outcome: 'unknown', description: `no acknowledgement came from JetStream within ${this.timeoutMs} ms` });
    }
  }

  close(): void {
    this.closed = true;
    if (this.sweep !== undefined) this.clock.clearTimeout(this.sweep);
    this.subscription.unsubscribe();
    this.expire(Number.POSITIVE_INFINITY);
  }
}

const decoder = new TextDecoder();

/** Stores state in memory (volatile types): lost when the process exits. */
export function createMemoryStore(): StateStore {
  const data = new Map<string, { bytes: Uint8Array; revision: number }>();
  return {
    async load(key) {
      const r = data.get(key);
      return r ? { bytes: r.bytes, revision: r.revision } : { bytes: undefined, revision: 0 };
    },
    async save(key, bytes, revision) {
      const r = data.get(key);
      if ((r?.revision ?? 0) !== revision) throw new RevisionConflict(`revision ${revision} of '${key}' is stale`);
      const next = revision + 1;
      data.set(key, { bytes, revision: next });
      return next;
    },
    async keys(prefix) {
      return [...data.keys()].filter((k) => k.startsWith(prefix));
    },
  };
}
