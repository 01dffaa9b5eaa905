/**
 * The node's edge: every call a node receives passes through here. It reads
 * the call (wire/envelope.ts), hands it to the actor host of its type, and
 * sends the one reply — nothing else in the node touches a call message.
 *
 * The edge also counts the calls it has accepted and not yet answered, so a
 * shard handover (and shutdown) can wait until none is still running.
 *
 * Calls come one per message (the shard subjects) or several per message
 * (the node's batch subject, wire/batch.ts); each call of a batch is read
 * and run exactly as the message of its single form would be, and the
 * replies ready in one turn of the event loop go back in one message.
 *
 * @module
 */
import type { Msg, MsgHdrs } from '@nats-io/transport-node';
import { ErrorCode, MoltError } from '../errors.ts';
import type { Logger } from '../env.ts';
import type { Codec } from '../wire/codec.ts';
import { createReplyHeaders, parseCall, type CallEnvelope, type CallLimits, type ReplyMeta } from '../wire/envelope.ts';
import { HeaderBlock } from '../wire/header-block.ts';
import { Header } from '../wire/protocol.ts';
import { BATCH_FORMAT, batchedReplySize, decodeBatch, encodeAnswer, type BatchedReply } from '../wire/batch.ts';
import { fixedHeaders } from '../wire/codec.ts';
import { headerBytes } from '../nats/internals.ts';
import type { ActorHost } from '../host/actor-host.ts';
import type { CallDurations } from '../observe/metrics.ts';
import { endCallSpan, startCallSpan } from '../observe/trace.ts';
import type { Tracer } from '@opentelemetry/api';

export interface EdgeOptions {
  service: string;
  nodeId: string;
  hosts: ReadonlyMap<string, ActorHost>;
  shards: number;
  maxPayload: number;
  codec: Codec;
  logger: Logger;
  /** Most calls admitted and not yet answered; more are refused with `Overloaded`. */
  maxInflight: number;
  /** The hosts' mailbox bound, for the message of the refusal (hosts apply it). */
  mailboxLimit: number;
  /** Whether this node's placement lease is valid now. */
  leaseValid(): boolean;
  /** Whether this node may answer a call for `shard` now (host/placement.ts `serves`). */
  serves(shard: number): boolean;
  /** Whether this node may answer a call for `shard` sent to it alone, in a batch (host/placement.ts `owns`). */
  owns(shard: number): boolean;
  /**
   * Whether a call with this reply subject may be handled at all
   * (./reply-subject.ts): false drops it unrun and unanswered.
   */
  acceptsReply(subject: string, reply: string | undefined): boolean;
  /** Where call durations go when metrics are on; unset, the edge times nothing. */
  durations?: CallDurations | undefined;
  /** Starts the span of each call (a non-recording one, at no further cost, unless an SDK is registered). */
  tracer: Tracer;
}

export interface Edge {
  /** Handles one call message (the shard subscriptions' callback). Never throws. */
  receive(msg: Msg): void;
  /** Handles a batch of calls (the batch subscription's callback). Never throws. */
  receiveBatch(msg: Msg): void;
  /** Resolves once no accepted call is still running. */
  quiet(): Promise<void>;
}

/**
 * A call as the edge reads it: the message of the single form, or one call
 * of a batch. Either way it is answered once, through `respond`.
 */
interface IncomingCall {
  readonly subject: string;
  readonly headers: HeaderBlock | undefined;
  readonly data: Uint8Array;
  /** Someone waits for the answer (a single-form message without a reply subject is never answered). */
  readonly answerable: boolean;
  /**
   * Sent to this node alone (a batch), not to a shard subject: a call it does
   * not run was run by no node, and its caller may send it again.
   */
  readonly addressed: boolean;
  respond(bytes: Uint8Array, headers: MsgHdrs): void;
}

/** The message of a single-form call; `headers` is its header block, read by the caller (reading may throw on a hostile frame). */
function singleCall(msg: Msg, headers: HeaderBlock | undefined): IncomingCall {
  return {
    subject: msg.subject,
    headers,
    data: msg.data,
    answerable: msg.reply !== undefined && msg.reply !== '',
    addressed: false,
    respond: (bytes, headers) => msg.respond(bytes, { headers }),
  };
}

/**
 * How many calls of a batch run before the node yields to its event loop,
 * and how many replies go back in one answer at most. A batch run whole would
 * hold its callers (and the NATS socket) until its last call; in slices, the
 * first answers travel, and the callers' next calls arrive, while the rest run.
 * Molt's client sends batches of about 64 under load (two unanswered per node,
 * see client.ts): one slice each, answered in one message. Slices of 16 sent
 * up to four answers per batch, which cost the node, the server and the
 * client more per call than the overlap gained.
 */
const BATCH_SLICE = 64;

/**
 * The replies to one batch, sent back as they are ready: those ready in one
 * turn of the event loop go in one message (split where a message would
 * exceed `maxBytes`), so a slow call holds back no other.
 */
class BatchAnswer {
  private ready: BatchedReply[] = [];
  private readyBytes = 2;
  private scheduled = false;

  constructor(
    private readonly msg: Msg,
    private readonly headers: MsgHdrs,
    private readonly maxBytes: number,
    private readonly logger: Logger,
  ) {}

  add(token: string, headers: Uint8Array, body: Uint8Array): void {
    const size = batchedReplySize(token, headers, body);
    if (this.ready.length > 0 && this.readyBytes + size > this.maxBytes) this.flush();
    this.ready.push({ token, headers, body });
    this.readyBytes += size;
    // A slice's worth goes at once: its callers send their next calls while the rest run.
    if (this.ready.length >= BATCH_SLICE) return this.flush();
    if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(() => {
        this.scheduled = false;
        this.flush();
      });
    }
  }

  private flush(): void {
    if (this.ready.length === 0) return;
    const replies = this.ready;
    this.ready = [];
    this.readyBytes = 2;
    try {
      this.msg.respond(encodeAnswer(replies), { headers: this.headers });
    } catch (e) {
      this.logger.debug('could not send batch answer', { error: String(e) });
    }
  }
}

export function createEdge(options: EdgeOptions): Edge {
  const { hosts, codec, logger } = options;
  const replyHeaders = createReplyHeaders(options.nodeId);
  const answerHeaders = fixedHeaders([[Header.Batch, BATCH_FORMAT]]);
  const servicePrefix = `molt.${options.service}.`;
  const limits: CallLimits = {
    shards: options.shards,
    maxPayload: options.maxPayload,
    hasType: (type) => hosts.has(type),
    unknownType: (type) =>
      new MoltError(ErrorCode.UnknownType, `service '${options.service}' has no actor type '${type}'; it has: ${[...hosts.keys()].join(', ')}`, { data: { type } }),
  };

  // Calls accepted and not yet answered, and who waits for there to be none.
  let inflight = 0;
  let whenQuiet: Array<() => void> = [];

  function answered(): void {
    if (--inflight === 0 && whenQuiet.length > 0) {
      const waiting = whenQuiet;
      whenQuiet = [];
      for (const wake of waiting) wake();
    }
  }

  /** Sends the one reply of a call. An ok body that cannot be encoded becomes an ActorFailed error. */
  function reply(msg: IncomingCall, ok: boolean, body: unknown, meta: ReplyMeta): void {
    if (!msg.answerable) return;
    let bytes: Uint8Array;
    try {
      bytes = codec.encode(body);
    } catch (e) {
      ok = false;
      bytes = codec.encode(new MoltError(ErrorCode.ActorFailed, `the reply could not be encoded: ${(e as Error).message}`).toWire());
    }
    replyBytes(msg, ok, bytes, meta);
  }

  function replyBytes(msg: IncomingCall, ok: boolean, bytes: Uint8Array, meta: ReplyMeta): void {
    if (!msg.answerable) return;
    try {
      msg.respond(bytes, replyHeaders(ok, meta));
    } catch (e) {
      logger.debug('could not send reply', { error: String(e) });
    }
  }

  const overloaded = (scope: 'node' | 'actor', text: string, limit: number): Uint8Array =>
    codec.encode(new MoltError(ErrorCode.Overloaded, `${text}; nothing was applied: retry after a pause`, { data: { scope, limit } }).toWire());
  const nodeFull = overloaded('node', `node '${options.nodeId}' has ${options.maxInflight} calls admitted and unanswered, its limit`, options.maxInflight);
  const actorFull = overloaded('actor', `the actor has ${options.mailboxLimit} calls waiting in its mailbox, its limit`, options.mailboxLimit);

  /**
   * A call this node may not serve: its lease ran out, or the shard is not
   * its own (it moved while the call was on its way). Another node may own
   * the shard and have received the very same message — a node cut off from
   * its server keeps its subscriptions there until the server notices — so
   * "not applied" would be a guess. The call is not run here, and its caller
   * learns that its outcome is unknown (and is usually answered first by the
   * owner anyway: a message this node reads late, it read after the owner).
   */
  function notServed(msg: IncomingCall, call: CallEnvelope, why: string, correlation: string | undefined): void {
    logger.debug('call not served here', { why, subject: msg.subject.slice(0, 200) });
    if (msg.addressed) {
      // Sent to this node alone: no other node saw it, so it certainly did not run.
      const error = new MoltError(
        ErrorCode.Unavailable,
        `node '${options.nodeId}' did not run this call: ${why}. Nothing was applied; send it to its shard's subject (the shard moved)`,
        { data: { node: options.nodeId, shard: call.shard, ran: false, reason: 'not-owner' } },
      );
      return reply(msg, false, error.toWire(), { correlation, version: call.version });
    }
    const error = new MoltError(
      ErrorCode.OutcomeUnknown,
      `node '${options.nodeId}' did not run this call: ${why}. Another node may own shard ${call.shard} and have run it, so its outcome is unknown here; read the state, or retry with an idempotency key`,
      { data: { node: options.nodeId, shard: call.shard, ran: false } },
    );
    reply(msg, false, error.toWire(), { correlation, version: call.version });
  }

  function handle(msg: IncomingCall): void {
    const headers = msg.headers;
    const correlation = headers?.get(Header.Correlation) || undefined;
    const parsed = parseCall(msg.subject, headers, msg.data, limits, codec);
    if (parsed.kind === 'invalid') {
      const nodeVersion = parsed.type === undefined ? undefined : hosts.get(parsed.type)?.currentVersion;
      return reply(msg, false, parsed.error.toWire(), { correlation, version: parsed.version, nodeVersion });
    }
    if (!options.leaseValid()) return notServed(msg, parsed, 'its placement lease ran out', correlation);
    if (!(msg.addressed ? options.owns(parsed.shard) : options.serves(parsed.shard))) return notServed(msg, parsed, `it does not own shard ${parsed.shard}`, correlation);
    const host = hosts.get(parsed.type)!;
    // Shedding must cost less than serving, or a flood still starves the
    // node: these refusals are encoded once, not built per call.
    const shed = inflight >= options.maxInflight ? nodeFull : host.mailboxFull(parsed.key) ? actorFull : undefined;
    if (shed) {
      host.counts.shed(parsed.version);
      return replyBytes(msg, false, shed, { correlation, version: parsed.version, nodeVersion: host.currentVersion });
    }
    inflight++;
    const durations = options.durations;
    const started = durations === undefined ? 0 : performance.now();
    const span = startCallSpan(options.tracer, options.service, parsed.type, parsed.message, parsed.version, headers?.get(Header.Traceparent));
    host.dispatch(
      parsed.key,
      parsed.version,
      parsed.message,
      parsed.request,
      (error, result, route) => {
        const meta: ReplyMeta = { correlation, version: parsed.version, nodeVersion: host.currentVersion };
        if (error) reply(msg, false, error.toWire(), meta);
        else reply(msg, true, result, meta);
        if (durations !== undefined) durations.observe(parsed.type, parsed.version, route, (performance.now() - started) / 1000);
        if (span !== undefined) endCallSpan(span, parsed.type, parsed.version, host.currentVersion, route, error);
        answered();
      },
      parsed.keyed,
      span,
    );
  }

  /** Answers a call whose header block cannot even be parsed (InvalidHeader), touching nothing else of it. */
  function refuseUnreadable(msg: IncomingCall, e: unknown): void {
    logger.debug('unreadable call', { subject: msg.subject.slice(0, 200), error: String(e) });
    try {
      const error = new MoltError(ErrorCode.InvalidHeader, `the call's header block cannot be parsed: ${e instanceof Error ? e.message : String(e)}`);
      reply(msg, false, error.toWire(), {});
    } catch {
      // Nothing more can be done for it.
    }
  }

  return {
    receive(msg) {
      if (!options.acceptsReply(msg.subject, msg.reply)) return;
      // The NATS client calls this inside its socket reader: anything thrown
      // here would stop the reader and leave the node deaf. (Molt reads
      // headers leniently, see wire/header-block.ts, but nats.js's own
      // accessors still throw on some hostile frames.)
      try {
        handle(singleCall(msg, HeaderBlock.of(msg)));
      } catch (e) {
        refuseUnreadable(singleCall(msg, undefined), e);
      }
    },
    receiveBatch(msg) {
      if (!options.acceptsReply(msg.subject, msg.reply)) return;
      try {
        const answer = new BatchAnswer(msg, answerHeaders, options.maxPayload, logger);
        let calls;
        try {
          calls = decodeBatch(msg.data);
        } catch (e) {
          // Nothing in it can be named: the refusal is one single-form reply.
          refuseUnreadable(singleCall(msg, undefined), e);
          return;
        }
        // The batch counts as one call in flight until its last slice has
        // been handed to the hosts, so a handover or shutdown waits for it.
        inflight++;
        let next = 0;
        const runSlice = () => {
          const end = Math.min(calls.length, next + BATCH_SLICE);
          for (; next < end; next++) {
            const c = calls[next]!;
            const call: IncomingCall = {
              subject: c.subject,
              headers: HeaderBlock.fromBytes(c.headers),
              data: c.body,
              answerable: true,
              addressed: true,
              respond: (bytes, headers) => answer.add(c.token, headerBytes(headers) ?? new Uint8Array(), bytes),
            };
            try {
              // A shard subscription only ever delivers this service's calls; a batch could name any subject.
              if (c.subject.startsWith(servicePrefix)) handle(call);
              else reply(call, false, new MoltError(ErrorCode.InvalidHeader, `a call in a batch to node '${options.nodeId}' names subject '${c.subject.slice(0, 200)}', not one of service '${options.service}'`).toWire(), {});
            } catch (e) {
              refuseUnreadable(call, e);
            }
          }
          if (next < calls.length) setImmediate(runSlice);
          else answered();
        };
        runSlice();
      } catch (e) {
        logger.debug('unreadable batch', { error: String(e) });
      }
    },
    quiet: () => (inflight === 0 ? Promise.resolve() : new Promise<void>((resolve) => whenQuiet.push(resolve))),
  };
}
