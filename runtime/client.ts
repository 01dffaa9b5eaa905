/**
 * The typed client: call any actor of a service, speaking one interface
 * version of its type. `client.actor(counterV1, 'a')` gives an object with one
 * method per message of counter@1 — calling a message that version does not
 * have, or with the wrong payload, does not compile.
 *
 * All calls of a client share one reply subscription and match replies by
 * correlation id (one NATS request per call would be 2–4× slower).
 *
 * Replies say which node answered. Once the client knows the node that owns a
 * shard, the keyed calls it has for that node in one tick go to the node in
 * one message (wire/batch.ts), and come back in as few; a call the node no
 * longer owns is sent again to its shard's subject. `batching: false` sends
 * every call alone.
 *
 * @module
 */
import { headers as natsHeaders, type Msg, type MsgHdrs, type NatsConnection, type Subscription } from '@nats-io/transport-node';
import { ErrorCode, MoltError } from './errors.ts';
import type { ActorInterface, CallArgs } from './define/version.ts';
import type { AskSpec, MessageSpecs, ReplyOf } from './define/messages.ts';
import { createSuperjsonCodec, encodedLength, fixedHeaders, type Codec } from './wire/codec.ts';
import { HeaderBlock } from './wire/header-block.ts';
import { preEncodedHeaders } from './nats/internals.ts';
import { batchSubject, callSubject, DEFAULT_SHARDS, encodeKey, Header, IDEMPOTENCY_KEY_PATTERN, PROTOCOL_VERSION } from './wire/protocol.ts';
import { BATCH_FORMAT, batchedCallSize, decodeAnswer, encodeBatch, MAX_BATCH_CALLS, type BatchedCall } from './wire/batch.ts';
import { headerBytes } from './nats/internals.ts';
import { createIdGenerator, systemClock, type Clock, type IdGenerator, type TimerHandle } from './env.ts';
import { inboxPrefixOf, resolveConnection, type NatsTarget } from './nats/connect.ts';
import { context, SpanStatusCode, type Span, type TracerProvider } from '@opentelemetry/api';
import { clientTraceparent, startClientSpan, tracerOf } from './observe/trace.ts';

/** Options of one call. */
export interface CallOptions {
  /**
   * The call's idempotency key (1–128 visible ASCII characters): a
   * state-changing call sent again with the same key, to the same actor, is
   * answered with the first one's reply and not applied again. Give your own
   * (an order id, a request id) to make your retries safe; by default the
   * client gives every call a fresh one, which makes its own retries safe.
   */
  idempotencyKey?: string;
}

/** A typed reference to one actor, speaking one interface version. */
export type ActorRef<TMessages extends MessageSpecs> = {
  readonly [K in keyof TMessages & string]: (
    ...args: [...CallArgs<TMessages[K]>, options?: CallOptions]
  ) => Promise<TMessages[K] extends AskSpec ? ReplyOf<TMessages[K]> : void>;
};

/** Options of {@link createClient}. Only `service` and `nats` are required. */
export interface ClientOptions {
  /** The service whose actors to call. */
  service: string;
  /** A NATS connection, or where to connect (then the client owns and closes it). */
  nats: NatsTarget;
  /** Must equal the service's shard count (default 64). */
  shards?: number;
  /** How long to wait for a reply (default 5000 ms). */
  timeoutMs?: number;
  /**
   * How long to keep retrying calls that reached no node (none running, a shard
   * moving between nodes) before failing with `Unavailable`, and calls a busy
   * node refused unrun (`Overloaded`), with backoff (default: the timeout).
   */
  retryUnavailableMs?: number;
  /**
   * Give every call an idempotency key of its own unless the caller gives one
   * (default true). Without a key, a call whose outcome is unknown cannot be
   * retried safely, and the client does not retry it.
   */
  idempotency?: boolean;
  /**
   * How many times a call that carries an idempotency key is sent again, with
   * the same key, when its outcome is unknown (`Timeout`, `OutcomeUnknown`),
   * each attempt with a fresh timeout (default 2). The node applies it at most
   * once, so the caller gets the reply of the one attempt that ran.
   */
  uncertainRetries?: number;
  /**
   * Where the client's spans go (default: the provider registered with
   * `@opentelemetry/api`, a no-op unless the application registers an SDK).
   * Each call starts a span under the active one and sends its trace context
   * in `traceparent`; see docs/observability.md.
   */
  tracerProvider?: TracerProvider;
  /**
   * Send the keyed calls made in one tick for one node as one message to that
   * node, once replies have said which node owns their shards (default true;
   * docs/protocol.md, "Batched calls"). A batch of one goes as a single call.
   * False sends every call alone, to its shard's subject.
   */
  batching?: boolean;
  codec?: Codec;
  clock?: Clock;
  ids?: IdGenerator;
}

/** A client of one service: typed actor references, and an untyped `call` for tools. */
export interface MoltClient {
  /** A typed reference to actor `key` of `iface.type`, speaking `iface.version`. */
  actor<TType extends string, TVersion extends number, TMessages extends MessageSpecs>(
    iface: ActorInterface<TType, TVersion, TMessages>,
    key: string,
  ): ActorRef<TMessages>;
  /** Untyped call, for tools and other languages' parity tests. */
  call(type: string, version: number, key: string, message: string, request?: unknown, options?: CallOptions): Promise<unknown>;
  close(): Promise<void>;
}

/** How old a resend is: the headers `Molt-Resend-Age` and `Molt-First-Sent` (docs/protocol.md). */
interface Resend {
  /** Milliseconds since the first attempt was sent (monotonic clock). */
  ageMs: number;
  /** When it was sent, by the wall clock (Unix ms): what a node goes by if the resend is held up on its way. */
  firstSentMs: number;
}

interface Pending {
  resolve(value: unknown): void;
  reject(error: MoltError): void;
  /** The call's recording span, ended as the call settles (a field, not closures wrapping resolve and reject). */
  span: Span | undefined;
  deadline: number;
  subject: string;
  body: Uint8Array;
  headers: MsgHdrs;
  retryUntil: number;
  /** Times the call was refused as `Overloaded` and sent again. */
  attempts: number;
  /** A "did not run it here" reply, kept while the shard's owner may still answer. */
  provisional?: MoltError;
  /** The call's idempotency key, if it has one: only then may an uncertain outcome be retried. */
  key: string | undefined;
  /** The header block of a resend of a keyed call, given how old it is. */
  resendHeaders: ((resend: Resend) => MsgHdrs) | undefined;
  /** When the first attempt was sent (monotonic ms). */
  firstSentAt: number;
  /** Retries left for an uncertain outcome. */
  uncertainLeft: number;
  /** What left an earlier attempt's outcome unknown, once one did: a later refusal cannot say "not applied". */
  uncertainSince?: MoltError;
}

/** A batch sent and not yet fully answered. */
interface SentBatch {
  readonly node: string;
  /** Ids of its calls not answered yet. */
  readonly ids: Set<string>;
  readonly sentAt: number;
  readonly expiresAt: number;
  /** Whether it still counts against {@link BATCHES_IN_FLIGHT}: until its node first answers it. */
  holdsSlot: boolean;
}

/**
 * Batches to one node that may wait for their first answer at once. The calls
 * made meanwhile for that node wait for the next batch, sent as soon as one of
 * these is answered: so batches grow with the load (as Nagle's algorithm grows
 * TCP segments). With 128 calls in flight a batch holds about 64, answered in
 * one message (see node/edge.ts), which costs nats-server and the node less
 * per call than the batches of whatever one answer released
 * (docs/performance.md). With one batch unanswered a slot is free, so under
 * light load no call waits; two keep the node busy while an answer travels.
 */
const BATCHES_IN_FLIGHT = 2;

/**
 * The longest a batch holds its slot unanswered. A node answers as calls
 * finish, so only a batch whose every call waits (all held through an
 * upgrade of their type, say) holds one long: past this, calls for that node
 * stop waiting for it.
 */
const BATCH_SLOT_MS = 5;

/** The shard token of a call subject (`molt.<service>.<type>.<shard>.<key>`), as text. */
function shardToken(subject: string): string {
  const a = subject.indexOf('.', subject.indexOf('.', subject.indexOf('.') + 1) + 1);
  return subject.slice(a + 1, subject.indexOf('.', a + 1));
}

/** Creates a client for one service. */
export async function createClient(options: ClientOptions): Promise<MoltClient> {
  const { nc, owned } = await resolveConnection(options.nats);
  return createClientOn(nc, options, owned);
}

/** Reply tokens of batches start with this; call ids (base 36) never do. */
const BATCH_ID_PREFIX = '_b';

/**
 * How long a keyed call that a node did not run (the shard was moving) waits
 * for the new owner's reply before it is sent again. Short: the owner answers
 * a message it received within moments, and the resend's age must stay well
 * inside what a busy actor can vouch for (its last `limit` keyed changes; see
 * docs/protocol.md, "Idempotent calls"), or it is refused as forgotten.
 */
const PROVISIONAL_RESEND_MS = 25;

function createClientOn(nc: NatsConnection, options: ClientOptions, ownsConnection: boolean): MoltClient {
  const codec = options.codec ?? createSuperjsonCodec();
  const clock = options.clock ?? systemClock;
  const ids = options.ids ?? createIdGenerator();
  const shards = options.shards ?? DEFAULT_SHARDS;
  const timeoutMs = options.timeoutMs ?? 5000;
  const retryUnavailableMs = options.retryUnavailableMs ?? timeoutMs;
  const autoKeys = options.idempotency ?? true;
  const uncertainRetries = options.uncertainRetries ?? 2;
  const tracer = tracerOf(options.tracerProvider);
  const batching = options.batching ?? true;
  // Under the connection's inbox prefix (`nats.inboxPrefix`), which nodes must accept as a caller's.
  const inbox = `${inboxPrefixOf(nc)}.molt.${ids.next()}`;
  const pending = new Map<string, Pending>();
  let seq = 0;
  let closed = false;

  // Guarded: the NATS client runs this inside its socket reader, where
  // anything thrown (say, by nats.js's accessors on a hostile frame) would
  // stop it.
  const sub: Subscription = nc.subscribe(`${inbox}.*`, {
    callback: (err, msg) => {
      if (err) return;
      try {
        const id = msg.subject.slice(inbox.length + 1);
        if (id.startsWith(BATCH_ID_PREFIX)) onAnswer(id, msg);
        else onReply(id, HeaderBlock.of(msg), msg.data);
      } catch {
        // An unreadable reply is dropped; its call ends with Timeout.
      }
    },
  });

  // ---- batches (wire/batch.ts) ----------------------------------------------
  /** The node that last answered for each shard (by its subject token). */
  const owners = new Map<string, string>();
  /** Calls waiting for this tick's flush, per node. */
  const queued = new Map<string, string[]>();
  let flushQueued = false;
  const batches = new Map<string, SentBatch>();
  let batchSeq = 0;
  /** Slots taken per node (see BATCHES_IN_FLIGHT). */
  const slotsTaken = new Map<string, number>();
  /** Set while calls wait for a slot: frees the slots of batches unanswered for BATCH_SLOT_MS. */
  let slotTimer: TimerHandle | undefined;
  const batchHeaders = fixedHeaders([[Header.Batch, BATCH_FORMAT]]);

  /** Sends a call's first attempt: in its owner's batch when the owner is known, else alone. */
  function sendFirst(id: string, p: Pending): void {
    const node = batching && p.key !== undefined ? owners.get(shardToken(p.subject)) : undefined;
    if (node === undefined) {
      nc.publish(p.subject, p.body, { reply: `${inbox}.${id}`, headers: p.headers });
      return;
    }
    let ids = queued.get(node);
    if (!ids) queued.set(node, (ids = []));
    ids.push(id);
    scheduleFlush();
  }

  function scheduleFlush(): void {
    if (flushQueued) return;
    flushQueued = true;
    queueMicrotask(flushBatches);
  }

  /** A batch's first answer came (or it will get none): a call waiting for its node may go. */
  function freeSlot(batch: SentBatch): void {
    if (!batch.holdsSlot) return;
    batch.holdsSlot = false;
    slotsTaken.set(batch.node, slotsTaken.get(batch.node)! - 1);
    if (queued.has(batch.node)) scheduleFlush();
  }

  function freeStaleSlots(): void {
    slotTimer = undefined;
    const stale = clock.monotonic() - BATCH_SLOT_MS;
    for (const batch of batches.values()) if (batch.holdsSlot && batch.sentAt <= stale) freeSlot(batch);
    // Calls still waiting (their node's slots were taken again since this was set) get a timer of their own.
    if (queued.size > 0) scheduleFlush();
  }

  function flushBatches(): void {
    flushQueued = false;
    const limit = (nc.info?.max_payload ?? 1024 * 1024) - 1024;
    for (const [node, ids] of queued) {
      if ((slotsTaken.get(node) ?? 0) >= BATCHES_IN_FLIGHT) {
        if (slotTimer === undefined && !closed) slotTimer = clock.setTimeout(freeStaleSlots, BATCH_SLOT_MS);
        continue;
      }
      queued.delete(node);
      let calls: BatchedCall[] = [];
      let batchIds: string[] = [];
      let size = 2;
      const send = () => {
        if (batchIds.length === 1) publishAlone(batchIds[0]!);
        else if (batchIds.length > 1) publishBatch(node, calls, batchIds);
        calls = [];
        batchIds = [];
        size = 2;
      };
      for (const id of ids) {
        const p = pending.get(id);
        if (!p) continue;
        const headers = headerBytes(p.headers);
        if (headers === undefined) {
          publishAlone(id);
          continue;
        }
        // The call's id is its token: the answer names it as its reply subject would.
        const bytes = batchedCallSize(p.subject, id, headers, p.body);
        if (batchIds.length > 0 && (size + bytes > limit || batchIds.length >= MAX_BATCH_CALLS)) send();
        calls.push({ subject: p.subject, token: id, headers, body: p.body });
        batchIds.push(id);
        size += bytes;
      }
      send();
    }
  }

  function publishAlone(id: string): void {
    const p = pending.get(id);
    if (!p) return;
    try {
      nc.publish(p.subject, p.body, { reply: `${inbox}.${id}`, headers: p.headers });
    } catch {
      // The connection is closing: the deadline ends the call.
    }
  }

  function publishBatch(node: string, calls: BatchedCall[], ids: string[]): void {
    const batchId = `${BATCH_ID_PREFIX}${(batchSeq++).toString(36)}`;
    const now = clock.monotonic();
    batches.set(batchId, { node, ids: new Set(ids), sentAt: now, expiresAt: now + timeoutMs, holdsSlot: true });
    slotsTaken.set(node, (slotsTaken.get(node) ?? 0) + 1);
    try {
      nc.publish(batchSubject(options.service, node), encodeBatch(calls), { reply: `${inbox}.${batchId}`, headers: batchHeaders });
    } catch {
      // The connection is closing: the deadlines end the calls.
    }
  }

  /** Forgets `node` as the owner of every shard it was known to own. */
  function forgetNode(node: string): void {
    for (const [shard, owner] of owners) if (owner === node) owners.delete(shard);
  }

  /** An answer to a batch: replies to some of its calls, or a refusal of all of them. */
  function onAnswer(batchId: string, msg: Msg): void {
    const h = HeaderBlock.of(msg);
    const batch = batches.get(batchId);
    if (batch !== undefined) freeSlot(batch);
    if (h?.get(Header.Batch) !== undefined) {
      // Each reply names its call: it is taken as long as the call waits,
      // however late (a resend may be waiting for the first attempt's answer).
      for (const r of decodeAnswer(msg.data)) {
        batch?.ids.delete(r.token);
        onReply(r.token, HeaderBlock.fromBytes(r.headers), r.body);
      }
      if (batch?.ids.size === 0) batches.delete(batchId);
      return;
    }
    if (!batch) return;
    batches.delete(batchId);
    if (h && h.code === 503) {
      // Nobody listens on that node's subject (it stopped): nothing was
      // delivered, so each call goes alone to its shard's subject.
      forgetNode(batch.node);
      for (const id of batch.ids) publishAlone(id);
      return;
    }
    // The node could not read the batch at all: that single reply is every call's.
    for (const id of batch.ids) onReply(id, h, msg.data);
  }

  function onReply(id: string, h: HeaderBlock | undefined, data: Uint8Array): void {
    const p = pending.get(id);
    if (!p) return;
    if (h && h.code === 503) {
      // No node is subscribed to this shard right now (none running, or the
      // shard is moving): the call was not delivered, so resending is safe.
      if (clock.monotonic() < p.retryUntil) {
        resend(id, p, 50);
        return;
      }
      pending.delete(id);
      fail(p, new MoltError(ErrorCode.Unavailable, `no node of service '${options.service}' answered on ${p.subject}: is a node running?`, { data: { subject: p.subject } }));
      return;
    }
    pending.delete(id);
    if (batching && h !== undefined) {
      const node = h.get(Header.Node);
      if (node !== undefined) {
        const shard = shardToken(p.subject);
        if (owners.get(shard) !== node) owners.set(shard, node);
      }
    }
    let body: unknown;
    try {
      body = data.length === 0 ? undefined : codec.decode(data);
    } catch (e) {
      fail(p, new MoltError(ErrorCode.Internal, `undecodable reply on ${p.subject}: ${(e as Error).message}`));
      return;
    }
    if (h?.get(Header.Status) !== 'error') {
      p.span?.end();
      p.resolve(body);
      return;
    }
    const error = MoltError.fromWire(body);
    // A node a batch went to that does not own the call's shard (any more):
    // it ran nothing, and no other node saw the batch, so the call goes alone
    // to its shard's subject.
    if (error.code === ErrorCode.Unavailable && error.data.reason === 'not-owner' && error.data.ran === false) {
      owners.delete(shardToken(p.subject));
      pending.set(id, p);
      publishAlone(id);
      return;
    }
    // A node that did not run the call because the shard may have moved: the
    // new owner may have received the same message and will answer it. Wait
    // for that answer; this one stands only if none comes by the deadline.
    // A keyed call is also sent again soon: the new owner may have subscribed
    // only after the message went out, and a repeat it already ran is
    // answered from what the actor remembers.
    if (error.code === ErrorCode.OutcomeUnknown && error.data.ran === false && error.data.forgotten !== true) {
      p.provisional = error;
      pending.set(id, p);
      if (p.key !== undefined) {
        clock.setTimeout(() => {
          if (pending.get(id) !== p || p.provisional !== error) return;
          pending.delete(id);
          if (!retryUncertain(id, p, error)) pending.set(id, p);
        }, PROVISIONAL_RESEND_MS);
      }
      return;
    }
    // Ran, but its write was never acknowledged: with a key, sending it again
    // is safe — unless the actor says it may have forgotten the key.
    if (error.code === ErrorCode.OutcomeUnknown && error.data.forgotten !== true && retryUncertain(id, p, error)) return;
    // Refused unrun by a busy node or actor: nothing changed, so sending the
    // very same call again is safe; back off while the retry window lasts.
    if (error.code === ErrorCode.Overloaded && clock.monotonic() < p.retryUntil) {
      pending.set(id, p);
      p.attempts++;
      resend(id, p, Math.min(1000, 25 * 2 ** p.attempts));
      return;
    }
    fail(p, error);
  }

  /**
   * Ends a call with `error` — unless an earlier attempt's outcome was
   * unknown: that attempt may have been applied, so whatever a later attempt
   * was refused with, the caller learns that the outcome is unknown.
   */
  function fail(p: Pending, error: MoltError): void {
    const earlier = p.uncertainSince;
    if (earlier === undefined || error.code === ErrorCode.OutcomeUnknown || error.code === ErrorCode.Timeout) {
      rejectPending(p, error);
      return;
    }
    rejectPending(
      p,
      new MoltError(ErrorCode.OutcomeUnknown, `an attempt of this call ended without a known outcome (${earlier.code}: ${earlier.message}), so it may have been applied; sent again, it was refused: ${error.code}: ${error.message}`, {
        data: { retryError: error.code, ...(p.key !== undefined ? { key: p.key } : {}) },
        cause: error,
      }),
    );
  }

  /**
   * Sends a call whose outcome is unknown again, with the same idempotency
   * key and a fresh deadline, if it has a key and retries left.
   */
  function retryUncertain(id: string, p: Pending, cause: MoltError): boolean {
    if (p.key === undefined || p.uncertainLeft <= 0 || closed) return false;
    p.uncertainSince ??= cause;
    p.uncertainLeft--;
    p.provisional = undefined;
    p.deadline = clock.monotonic() + timeoutMs;
    pending.set(id, p);
    resend(id, p, 0);
    return true;
  }

  /**
   * Sends a pending call again after `delayMs`, unless it ended meanwhile. A
   * keyed call says how long ago its first attempt went out, so an actor that
   * may have forgotten the key since refuses to run it twice.
   */
  function resend(id: string, p: Pending, delayMs: number): void {
    clock.setTimeout(() => {
      if (pending.get(id) !== p) return;
      try {
        let headers = p.headers;
        if (p.resendHeaders) {
          const ageMs = Math.max(0, Math.ceil(clock.monotonic() - p.firstSentAt));
          headers = p.resendHeaders({ ageMs, firstSentMs: Math.max(0, Math.floor(clock.now()) - ageMs) });
        }
        nc.publish(p.subject, p.body, { reply: `${inbox}.${id}`, headers });
      } catch {
        // The connection is closing: the deadline ends the call.
      }
    }, delayMs);
  }

  // One coarse timer for all deadlines: cheaper than a timer per call.
  let sweep: TimerHandle | undefined;
  const expire = () => {
    const now = clock.monotonic();
    for (const [batchId, batch] of batches) {
      if (now < batch.expiresAt) continue;
      batches.delete(batchId);
      freeSlot(batch);
    }
    for (const [id, p] of pending) {
      if (now >= p.deadline) {
        pending.delete(id);
        const timedOut = p.provisional ?? new MoltError(ErrorCode.Timeout, `no reply on ${p.subject} within ${timeoutMs} ms; the call may or may not have been applied`, { data: { subject: p.subject, timeoutMs } });
        if (retryUncertain(id, p, timedOut)) continue;
        fail(p, timedOut);
      }
    }
    if (!closed) sweep = clock.setTimeout(expire, Math.min(100, Math.max(10, timeoutMs / 10)));
  };
  sweep = clock.setTimeout(expire, Math.min(100, Math.max(10, timeoutMs / 10)));

  // The headers of a call depend only on (version, message): one shared,
  // pre-encoded block per pair instead of building and encoding one per call.
  // Bounded, since untyped callers may use any message name.
  const callHeaders = new Map<string, MsgHdrs>();
  function headersFor(version: number, message: string): MsgHdrs {
    const cacheKey = `${version} ${message}`;
    let h = callHeaders.get(cacheKey);
    if (!h) {
      h = fixedHeaders([
        [Header.Version, String(version)],
        [Header.Message, message],
        [Header.Protocol, String(PROTOCOL_VERSION)],
      ]);
      if (callHeaders.size < 1024) callHeaders.set(cacheKey, h);
    }
    return h;
  }

  /** The encoded header block of a call, up to the headers of this one call: its version, message and protocol (message visible ASCII). */
  function callHeadersStart(version: number, message: string): string {
    return `NATS/1.0\r\n${Header.Version}: ${version}\r\n${Header.Message}: ${message}\r\n${Header.Protocol}: ${PROTOCOL_VERSION}\r\n`;
  }

  // The start of a keyed call's header block, up to its key's value: the same for every call of (version, message).
  const keyedPrefixes = new Map<string, Uint8Array | undefined>();
  function keyedPrefixFor(version: number, message: string): Uint8Array | undefined {
    const cacheKey = `${version} ${message}`;
    let prefix = keyedPrefixes.get(cacheKey);
    if (prefix === undefined && !keyedPrefixes.has(cacheKey)) {
      // A message name that is not visible ASCII goes through nats.js's own header checks instead.
      prefix = /^[\x20-\x7e]+$/.test(message)
        ? Buffer.from(`${callHeadersStart(version, message)}${Header.IdempotencyKey}: `, 'latin1')
        : undefined;
      if (keyedPrefixes.size < 1024) keyedPrefixes.set(cacheKey, prefix);
    }
    return prefix;
  }

  function call(type: string, version: number, key: string, message: string, request: unknown = {}, callOptions?: CallOptions): Promise<unknown> {
    return send(() => callSubject(options.service, type, encodeKey(key), shards), type, version, message, request, callOptions);
  }

  /**
   * The header block of a call with an idempotency key (and, on a resend,
   * its age) or a trace context: built per call, as bytes. The key is visible ASCII (checked), and so is a
   * `traceparent` (made here); a message name that is not goes through
   * nats.js's own header checks instead (no line breaks can smuggle in
   * another header).
   */
  function perCallHeaders(version: number, message: string, key: string | undefined, traceparent: string | undefined, resend?: Resend): MsgHdrs {
    if (key !== undefined && traceparent === undefined && resend === undefined) {
      const prefix = keyedPrefixFor(version, message);
      if (prefix !== undefined) {
        // The block of (version, message) up to the key's value, copied; then the key (visible ASCII, checked) and the block's end.
        const bytes = Buffer.allocUnsafe(prefix.length + key.length + 4);
        bytes.set(prefix, 0);
        let at = prefix.length + bytes.write(key, prefix.length, 'latin1');
        bytes[at++] = 13;
        bytes[at++] = 10;
        bytes[at++] = 13;
        bytes[at++] = 10;
        return preEncodedHeaders(new Uint8Array(bytes.buffer, bytes.byteOffset, at));
      }
    }
    if (!/^[\x20-\x7e]+$/.test(message)) {
      const h = natsHeaders();
      h.set(Header.Version, String(version));
      h.set(Header.Message, message);
      h.set(Header.Protocol, String(PROTOCOL_VERSION));
      if (key !== undefined) h.set(Header.IdempotencyKey, key);
      if (key !== undefined && resend !== undefined) {
        h.set(Header.ResendAge, String(resend.ageMs));
        h.set(Header.FirstSent, String(resend.firstSentMs));
      }
      if (traceparent !== undefined) h.set(Header.Traceparent, traceparent);
      return h;
    }
    const keyLine = key === undefined ? '' : `${Header.IdempotencyKey}: ${key}\r\n`;
    const ageLine = key === undefined || resend === undefined ? '' : `${Header.ResendAge}: ${resend.ageMs}\r\n${Header.FirstSent}: ${resend.firstSentMs}\r\n`;
    const traceLine = traceparent === undefined ? '' : `${Header.Traceparent}: ${traceparent}\r\n`;
    return preEncodedHeaders(
      Buffer.from(`${callHeadersStart(version, message)}${keyLine}${ageLine}${traceLine}\r\n`, 'utf8'),
    );
  }

  /** Sends one call; `subjectOf` may throw (an unencodable key) and the call then rejects with that error. */
  function send(subjectOf: () => string, type: string, version: number, message: string, request: unknown = {}, callOptions?: CallOptions): Promise<unknown> {
    if (closed) return Promise.reject(new MoltError(ErrorCode.Unavailable, 'this client is closed'));
    const key = callOptions?.idempotencyKey ?? (autoKeys ? ids.next() : undefined);
    if (key !== undefined && !IDEMPOTENCY_KEY_PATTERN.test(key)) {
      return Promise.reject(new MoltError(ErrorCode.InvalidHeader, `an idempotency key must be 1 to 128 visible ASCII characters (no spaces); got ${JSON.stringify(key.slice(0, 40))}`, { data: { length: key.length } }));
    }
    // A span under the active one (see observe/trace.ts).
    const span = startClientSpan(tracer, options.service, type, message, version, context.active());
    const traceparent = clientTraceparent(span);
    let subject: string;
    let body: Uint8Array;
    let h: MsgHdrs;
    try {
      subject = subjectOf();
      body = codec.encode(request);
      h = key === undefined && traceparent === undefined ? headersFor(version, message) : perCallHeaders(version, message, key, traceparent);
    } catch (e) {
      span.end();
      return Promise.reject(e);
    }
    const resendHeaders = key === undefined ? undefined : (resend: Resend) => perCallHeaders(version, message, key, traceparent, resend);
    return sendBytes(subject, body, h, key, resendHeaders, span.isRecording() ? span : undefined);
  }

  /** Sends an encoded call and waits for its reply; a keyed call's resends are built by `resendHeaders`. */
  function sendBytes(subject: string, body: Uint8Array, h: MsgHdrs, key: string | undefined, resendHeaders: ((resend: Resend) => MsgHdrs) | undefined, span: Span | undefined): Promise<unknown> {
    // nats.js would refuse it by throwing at publish; it can never be sent, so say that.
    const limit = nc.info?.max_payload;
    if (limit !== undefined && body.length + encodedLength(h) > limit) {
      return rejectTraced(
        span,
        new MoltError(ErrorCode.PayloadTooLarge, `the call's body is ${body.length} bytes, more than the NATS server accepts in one message (max_payload ${limit}); it was not sent`, {
          data: { size: body.length, limit },
        }),
      );
    }
    const id = (seq++).toString(36);
    return new Promise((resolve, reject) => {
      // A traced call ends its span as it settles (no promise chained for it, see rejectPending).
      const now = clock.monotonic();
      const p: Pending = {
        resolve,
        reject,
        span,
        deadline: now + timeoutMs,
        retryUntil: now + retryUnavailableMs,
        subject,
        body,
        headers: h,
        attempts: 0,
        key,
        uncertainLeft: key === undefined ? 0 : uncertainRetries,
        resendHeaders,
        firstSentAt: now,
      };
      pending.set(id, p);
      try {
        sendFirst(id, p);
      } catch (e) {
        pending.delete(id);
        rejectPending(p, new MoltError(ErrorCode.Unavailable, `cannot send to NATS: ${(e as Error).message}`, { cause: e }));
      }
    });
  }

  /** Rejects a call, ending its span (if it has one) with the error first. */
  function rejectPending(p: Pending, error: MoltError): void {
    if (p.span !== undefined) endWithError(p.span, error);
    p.reject(error);
  }

  /** Ends a client span with a failed call's error. */
  function endWithError(span: Span, e: unknown): void {
    if (e instanceof MoltError) span.setAttribute('molt.error_code', e.code);
    span.setStatus({ code: SpanStatusCode.ERROR, message: e instanceof Error ? e.message : String(e) });
    span.end();
  }

  function rejectTraced(span: Span | undefined, e: MoltError): Promise<never> {
    if (span !== undefined) endWithError(span, e);
    return Promise.reject(e);
  }

  return {
    actor(iface, key) {
      // The subject is computed on the first call and kept: a ref calls one actor.
      let subject: string | undefined;
      const subjectOf = () => (subject ??= callSubject(options.service, iface.type, encodeKey(key), shards));
      const ref: Record<string, (request?: unknown, callOptions?: CallOptions) => Promise<unknown>> = {};
      for (const message of Object.keys(iface.messages)) {
        const isAsk = iface.messages[message]!.kind === 'ask';
        ref[message] = isAsk
          ? (request, callOptions) => send(subjectOf, iface.type, iface.version, message, request, callOptions)
          : async (request, callOptions) => {
              await send(subjectOf, iface.type, iface.version, message, request, callOptions);
            };
      }
      return ref as unknown as ActorRef<typeof iface.messages>;
    },
    call,
    async close() {
      closed = true;
      if (sweep !== undefined) clock.clearTimeout(sweep);
      if (slotTimer !== undefined) clock.clearTimeout(slotTimer);
      sub.unsubscribe();
      batches.clear();
      queued.clear();
      for (const [id, p] of pending) {
        pending.delete(id);
        fail(p, new MoltError(ErrorCode.Unavailable, 'client closed before the reply arrived'));
      }
      if (ownsConnection) await nc.drain();
    },
  };
}
