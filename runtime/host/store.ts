/**
 * Where actor state lives: one record per actor, written with compare-and-set
 * on the revision. JetStream KV for durable types; memory for volatile ones.
 *
 * @module
 */
import { Bucket, type KV } from '@nats-io/kv';
import type { Msg, MsgHdrs, NatsConnection, Subscription } from '@nats-io/transport-node';
import { ErrorCode, MoltError } from '../errors.ts';
import { inboxPrefixOf } from '../nats/connect.ts';
import { createIdGenerator, systemClock, type Clock, type IdGenerator, type TimerHandle } from '../env.ts';
import { encodedLength } from '../wire/codec.ts';
import { preEncodedHeaders } from '../nats/internals.ts';
import { listLiveKeys } from '../nats/kv-reads.ts';

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
  /** How long a write waits for JetStream's acknowledgement before failing with `OutcomeUnknown`, and a read for its answer before failing with `Unavailable` (default 5000 ms). */
  writeTimeoutMs?: number;
  /** Timers and the monotonic clock deadlines are measured on (default: the system clock). */
  clock?: Clock;
  /** Where the acknowledgement inbox's unique token comes from (default: random). */
  ids?: IdGenerator;
}

/**
 * Stores state in a JetStream KV bucket.
 *
 * Writes — the hot path: one per committed batch of every durable actor — are
 * published straight to the key's subject with the
 * `Nats-Expected-Last-Subject-Sequence` header, exactly the message
 * `kv.update` sends; reads — one per actor loaded, 100,000 in a row when a
 * type upgrades in place — are the request `kv.get` makes (a direct get, or
 * the stream's message get when the bucket does not allow direct gets). Both
 * are answered on one shared inbox. The durability, the compare-and-set and
 * what a read returns are JetStream's, unchanged; what goes is the client's
 * per-request reply entry, timer, random token and stack-captured error
 * object (nats.js makes one for every request, answered or not), which cost
 * more CPU than the rest of a durable call (see docs/performance.md).
 */
export function createKvStore(kv: KV, nc: NatsConnection, options: KvStoreOptions = {}): StateStore & { close(): void; readonly ackInbox: string } {
  const timeoutMs = options.writeTimeoutMs ?? DEFAULT_WRITE_TIMEOUT_MS;
  const inbox = new SharedInbox(nc, timeoutMs, options.clock ?? systemClock, options.ids ?? createIdGenerator());
  const subjectOf = keySubjects(kv);
  const read = lastValueReader(kv, inbox, timeoutMs);
  const readAck = ackReader(timeoutMs);
  return {
    ackInbox: inbox.inbox,
    load:
      read ??
      (async (key) => {
        const entry = await kv.get(key);
        if (!entry || entry.operation !== 'PUT') return { bytes: undefined, revision: entry ? entry.revision : 0 };
        return { bytes: entry.value, revision: entry.revision };
      }),
    async save(key, bytes, revision) {
      const ack = await publishAcked(inbox, subjectOf(key), bytes, expectedLastSequence(revision), readAck);
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
    keys: (prefix) => listLiveKeys(kv, `${prefix}>`),
    close() {
      inbox.close();
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

/**
 * Reads what came back for a request: its reply message, a description of why
 * it could not be sent, or undefined when no reply came in time. An `Error`
 * returned rejects the request's promise; a {@link Tentative} one waits a
 * little for a better reply first. Called in the subscription's callback: it
 * returns its errors rather than throw them.
 */
type ReadReply<T> = (reply: Msg | string | undefined, subject: string) => T | Error | Tentative;

/**
 * A refusal that another server may contradict. Every server of a cluster
 * receives a JetStream API request, and a server that cannot tell who leads
 * the stream right now — one that has just rejoined its cluster after a
 * partition, still catching up — answers at once that JetStream is
 * temporarily unavailable, while the stream's leader, elsewhere, answers the
 * request properly a moment later. The local refusal, being nearest, comes
 * first; taken as the answer, it would fail every actor read of the rejoined
 * server's nodes for seconds after a partition heals.
 */
class Tentative {
  constructor(readonly error: Error) {}
}

/** How long a request answered with a {@link Tentative} refusal waits for another answer (within its own deadline). */
const TENTATIVE_GRACE_MS = 500;

/** JetStream's error code for "JetStream system temporarily unavailable" (no meta or stream leader known to the answering server). */
const CLUSTER_NOT_AVAILABLE = 10008;

interface PendingReply {
  resolve(value: unknown): void;
  reject(error: Error): void;
  read: ReadReply<unknown>;
  subject: string;
  deadline: number;
  /** The refusal to end with if no better answer comes by the deadline. */
  tentative?: Error;
}

/**
 * Sends requests whose replies come to one shared inbox subscription,
 * matched by a sequence number in the reply subject, and settles each with
 * what its `read` makes of the reply — or of no reply, once the timeout has
 * passed or the inbox is closed. One promise per request and one coarse timer
 * for every deadline.
 */
class SharedInbox {
  readonly inbox: string;
  private readonly pending = new Map<number, PendingReply>();
  private readonly subscription: Subscription;
  private sweep: TimerHandle | undefined;
  private closed = false;
  private next = 0;

  constructor(
    readonly nc: NatsConnection,
    readonly timeoutMs: number,
    private readonly clock: Clock,
    ids: IdGenerator,
  ) {
    // Under the connection's own inbox prefix (a node's is `_MOLT_NODE.<id>`), where
    // docs/permissions.md lets no caller and no other node publish.
    this.inbox = `${inboxPrefixOf(nc)}.molt-kv.${ids.next()}`;
    this.subscription = nc.subscribe(`${this.inbox}.*`, {
      callback: (err, msg) => {
        if (!err) this.onReply(msg);
      },
    });
    this.scheduleSweep();
  }

  request<T>(subject: string, data: Uint8Array, headers: MsgHdrs | undefined, read: ReadReply<T>): Promise<T> {
    const id = this.next++;
    return new Promise<T>((resolve, reject) => {
      const waiting: PendingReply = { resolve: resolve as (value: unknown) => void, reject, read, subject, deadline: this.clock.monotonic() + this.timeoutMs };
      this.pending.set(id, waiting);
      try {
        this.nc.publish(subject, data, headers ? { reply: `${this.inbox}.${id}`, headers } : { reply: `${this.inbox}.${id}` });
      } catch (e) {
        this.pending.delete(id);
        settle(waiting, `cannot publish to NATS: ${(e as Error).message}`);
      }
    });
  }

  private onReply(msg: Msg): void {
    const id = Number(msg.subject.slice(this.inbox.length + 1));
    const waiting = this.pending.get(id);
    if (!waiting) return; // timed out already
    const outcome = readOutcome(waiting, msg);
    if (outcome instanceof Tentative) {
      // Keep listening: the server that knows may still answer.
      waiting.tentative = outcome.error;
      waiting.deadline = Math.min(waiting.deadline, this.clock.monotonic() + TENTATIVE_GRACE_MS);
      return;
    }
    this.pending.delete(id);
    finish(waiting, outcome);
  }

  /** One coarse timer for every deadline instead of one per request. */
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
      if (waiting.tentative !== undefined) finish(waiting, waiting.tentative);
      else settle(waiting, undefined);
    }
  }

  close(): void {
    this.closed = true;
    if (this.sweep !== undefined) this.clock.clearTimeout(this.sweep);
    this.subscription.unsubscribe();
    this.expire(Number.POSITIVE_INFINITY);
  }
}

/** What a request's reader makes of `reply`; a reader that throws anyway gives its error rather than throw in the subscription's callback. */
function readOutcome(waiting: PendingReply, reply: Msg | string | undefined): unknown {
  try {
    return waiting.read(reply, waiting.subject);
  } catch (e) {
    return e instanceof Error ? e : new Error(String(e));
  }
}

/** Ends a request with `outcome`: an error rejects it (so does a tentative one: there is nothing left to wait for). */
function finish(waiting: PendingReply, outcome: unknown): void {
  if (outcome instanceof Tentative) waiting.reject(outcome.error);
  else if (outcome instanceof Error) waiting.reject(outcome);
  else waiting.resolve(outcome);
}

/** Settles a request with what its reader makes of `reply`. */
function settle(waiting: PendingReply, reply: Msg | string | undefined): void {
  finish(waiting, readOutcome(waiting, reply));
}

/**
 * Publishes a message to JetStream and resolves with how its write ended. A
 * write unanswered within the timeout may have been stored: the caller must
 * reload before writing again, as it must after any failed write.
 */
function publishAcked(inbox: SharedInbox, subject: string, data: Uint8Array, headers: MsgHdrs, readAck: ReadReply<PubAck>): Promise<PubAck> {
  // nats.js refuses a message over the server's max_payload by throwing; say
  // so as what it is, a permanent refusal, not a passing unavailability.
  const limit = inbox.nc.info?.max_payload;
  if (limit !== undefined && data.length + encodedLength(headers) > limit) return Promise.resolve({ outcome: 'too-large', limit });
  return inbox.request(subject, data, headers, readAck);
}

/** Reads JetStream's acknowledgement of a write (its publish's reply). */
function ackReader(timeoutMs: number): ReadReply<PubAck> {
  return (reply, subject) => {
    if (reply === undefined) return { outcome: 'unknown', description: `no acknowledgement came from JetStream within ${timeoutMs} ms` };
    if (typeof reply === 'string') return { outcome: 'refused', errCode: undefined, description: reply };
    if (reply.data.length === 0) {
      // A status message: 503 when no stream listens on the subject (the
      // bucket is gone, or its stream has no leader right now).
      const code = reply.headers?.code ?? 0;
      return { outcome: 'refused', errCode: undefined, description: code === 503 ? `no JetStream stream answered on ${subject} (no responders)` : `JetStream answered status ${code} ${reply.headers?.description ?? ''}`.trim() };
    }
    let ack: { seq?: unknown; error?: { err_code?: number; description?: string } };
    try {
      ack = JSON.parse(decoder.decode(reply.data)) as typeof ack;
    } catch {
      return { outcome: 'unknown', description: 'JetStream sent an acknowledgement that is not JSON' };
    }
    if (ack.error) return { outcome: 'refused', errCode: ack.error.err_code, description: ack.error.description ?? `JetStream error ${ack.error.err_code}` };
    if (typeof ack.seq === 'number') return { outcome: 'stored', seq: ack.seq };
    return { outcome: 'unknown', description: 'JetStream sent an acknowledgement without a sequence' };
  };
}

/** JetStream's error code for "no message found" (a message get of a subject that holds nothing). */
const NO_MESSAGE_FOUND = 10037;

/**
 * Reads the last value of a key as `kv.get` does — a direct get
 * (`$JS.API.DIRECT.GET.<stream>.<subject>`, answered with the stored message)
 * when the bucket allows it, else the stream's message get (answered with
 * JSON) — through the shared inbox. Undefined for a KV object that is not
 * nats.js's bucket (its reads then go through its own `get`).
 */
function lastValueReader(kv: KV, inbox: SharedInbox, timeoutMs: number): ((key: string) => Promise<StoredRecord>) | undefined {
  if (!(kv instanceof Bucket)) return undefined;
  const api = kv.js.getOptions().apiPrefix ?? '$JS.API';
  const subjectOfKey = (key: string) => kv.subjectForKey(kv.encodeKey(key));
  const unavailable = (subject: string, why: string) => new MoltError(ErrorCode.Unavailable, `could not read actor state (${subject}): ${why}`, { data: { subject } });
  const unanswered = (reply: string | undefined, subject: string) => unavailable(subject, reply ?? `no reply from JetStream within ${timeoutMs} ms`);
  if (kv.direct) {
    const prefix = `${api}.DIRECT.GET.${kv.stream}.`;
    const readDirect: ReadReply<StoredRecord> = (reply, subject) => {
      if (reply === undefined || typeof reply === 'string') return unanswered(reply, subject);
      const h = reply.headers;
      const code = h?.code ?? 0;
      if (code === 404) return { bytes: undefined, revision: 0 };
      if (code !== 0 || !h) return unavailable(subject, code === 503 ? 'no JetStream stream answered (no responders)' : `JetStream answered status ${code} ${h?.description ?? ''}`.trim());
      const revision = Number(h.get('Nats-Sequence'));
      if (!Number.isSafeInteger(revision) || revision <= 0) return unavailable(subject, 'JetStream answered a direct get without a sequence');
      return isRemoval(h.get('KV-Operation')) ? { bytes: undefined, revision } : { bytes: reply.data, revision };
    };
    return (key) => inbox.request(`${prefix}${subjectOfKey(key)}`, EMPTY, undefined, readDirect);
  }
  const readMessageGet: ReadReply<StoredRecord> = (reply, subject) => {
    if (reply === undefined || typeof reply === 'string') return unanswered(reply, subject);
    if (reply.data.length === 0) return unavailable(subject, (reply.headers?.code ?? 0) === 503 ? 'no JetStream stream answered (no responders)' : `JetStream answered status ${reply.headers?.code ?? 0}`);
    let answer: { message?: { seq?: unknown; data?: string; hdrs?: string }; error?: { err_code?: number; description?: string } };
    try {
      answer = JSON.parse(decoder.decode(reply.data)) as typeof answer;
    } catch {
      return unavailable(subject, 'JetStream sent an answer that is not JSON');
    }
    if (answer.error?.err_code === NO_MESSAGE_FOUND) return { bytes: undefined, revision: 0 };
    if (answer.error) {
      const refused = unavailable(subject, answer.error.description ?? `JetStream error ${answer.error.err_code}`);
      return answer.error.err_code === CLUSTER_NOT_AVAILABLE ? new Tentative(refused) : refused;
    }
    const revision = answer.message?.seq;
    if (typeof revision !== 'number') return unavailable(subject, 'JetStream answered a message get without a sequence');
    const operation = answer.message?.hdrs ? /^KV-Operation:\s*(\S+)/im.exec(Buffer.from(answer.message.hdrs, 'base64').toString('latin1'))?.[1] : undefined;
    if (isRemoval(operation)) return { bytes: undefined, revision };
    return { bytes: answer.message?.data ? new Uint8Array(Buffer.from(answer.message.data, 'base64')) : new Uint8Array(0), revision };
  };
  const messageGet = `${api}.STREAM.MSG.GET.${kv.stream}`;
  return (key) => inbox.request(messageGet, Buffer.from(JSON.stringify({ last_by_subj: subjectOfKey(key) })), undefined, readMessageGet);
}

/** True for the `KV-Operation` of a deleted or purged key (a put has none). */
function isRemoval(operation: string | null | undefined): boolean {
  return operation === 'DEL' || operation === 'PURGE';
}

const EMPTY = new Uint8Array(0);

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
