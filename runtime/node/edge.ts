/**
 * The node's edge: every call a node receives passes through here. It reads
 * the call (wire/envelope.ts), hands it to the actor host of its type, and
 * sends the one reply — nothing else in the node touches a call message.
 *
 * The edge also counts the calls it has accepted and not yet answered, so a
 * shard handover (and shutdown) can wait until none is still running.
 *
 * @module
 */
import type { Msg } from '@nats-io/transport-node';
import { ErrorCode, MoltError } from '../errors.ts';
import type { Logger } from '../env.ts';
import type { Codec } from '../wire/codec.ts';
import { createReplyHeaders, parseCall, type CallEnvelope, type CallLimits, type ReplyMeta } from '../wire/envelope.ts';
import { HeaderBlock } from '../wire/header-block.ts';
import { Header } from '../wire/protocol.ts';
import type { ActorHost } from '../host/actor-host.ts';

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
  /**
   * Whether a call with this reply subject may be handled at all
   * (./reply-subject.ts): false drops it unrun and unanswered.
   */
  acceptsReply(subject: string, reply: string | undefined): boolean;
}

export interface Edge {
  /** Handles one call message (the shard subscriptions' callback). Never throws. */
  receive(msg: Msg): void;
  /** Resolves once no accepted call is still running. */
  quiet(): Promise<void>;
}

export function createEdge(options: EdgeOptions): Edge {
  const { hosts, codec, logger } = options;
  const replyHeaders = createReplyHeaders();
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
  function reply(msg: Msg, ok: boolean, body: unknown, meta: ReplyMeta): void {
    if (!msg.reply) return;
    let bytes: Uint8Array;
    try {
      bytes = codec.encode(body);
    } catch (e) {
      ok = false;
      bytes = codec.encode(new MoltError(ErrorCode.ActorFailed, `the reply could not be encoded: ${(e as Error).message}`).toWire());
    }
    replyBytes(msg, ok, bytes, meta);
  }

  function replyBytes(msg: Msg, ok: boolean, bytes: Uint8Array, meta: ReplyMeta): void {
    if (!msg.reply) return;
    try {
      msg.respond(bytes, { headers: replyHeaders(ok, meta) });
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
  function notServed(msg: Msg, call: CallEnvelope, why: string, correlation: string | undefined): void {
    logger.debug('call not served here', { why, subject: msg.subject.slice(0, 200) });
    const error = new MoltError(
      ErrorCode.OutcomeUnknown,
      `node '${options.nodeId}' did not run this call: ${why}. Another node may own shard ${call.shard} and have run it, so its outcome is unknown here; read the state, or retry with an idempotency key`,
      { data: { node: options.nodeId, shard: call.shard, ran: false } },
    );
    reply(msg, false, error.toWire(), { correlation, version: call.version });
  }

  function handle(msg: Msg): void {
    const headers = HeaderBlock.of(msg);
    const correlation = headers?.get(Header.Correlation) || undefined;
    const parsed = parseCall(msg.subject, headers, msg.data, limits, codec);
    if (parsed.kind === 'invalid') {
      const nodeVersion = parsed.type === undefined ? undefined : hosts.get(parsed.type)?.currentVersion;
      return reply(msg, false, parsed.error.toWire(), { correlation, version: parsed.version, nodeVersion });
    }
    if (!options.leaseValid()) return notServed(msg, parsed, 'its placement lease ran out', correlation);
    if (!options.serves(parsed.shard)) return notServed(msg, parsed, `it does not own shard ${parsed.shard}`, correlation);
    const host = hosts.get(parsed.type)!;
    // Shedding must cost less than serving, or a flood still starves the
    // node: these refusals are encoded once, not built per call.
    const shed = inflight >= options.maxInflight ? nodeFull : host.mailboxFull(parsed.key) ? actorFull : undefined;
    if (shed) {
      host.stats.overloaded++;
      host.countCall(parsed.version);
      return replyBytes(msg, false, shed, { correlation, version: parsed.version, nodeVersion: host.currentVersion });
    }
    inflight++;
    host.dispatch(
      parsed.key,
      parsed.version,
      parsed.message,
      parsed.request,
      (error, result) => {
        const meta: ReplyMeta = { correlation, version: parsed.version, nodeVersion: host.currentVersion };
        if (error) reply(msg, false, error.toWire(), meta);
        else reply(msg, true, result, meta);
        answered();
      },
      parsed.idempotencyKey,
    );
  }

  /** Answers a call whose header block cannot even be parsed (InvalidHeader), touching nothing else of it. */
  function refuseUnreadable(msg: Msg, e: unknown): void {
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
        handle(msg);
      } catch (e) {
        refuseUnreadable(msg, e);
      }
    },
    quiet: () => (inflight === 0 ? Promise.resolve() : new Promise<void>((resolve) => whenQuiet.push(resolve))),
  };
}
