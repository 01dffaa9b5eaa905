/**
 * A call as it crosses the wire, in both directions: what a node reads off a
 * message (`parseCall`), and the reply headers it answers with
 * (`replyHeaders`). docs/protocol.md describes exactly these rules; the node's
 * request path (runtime/node/edge.ts) is their only user on the serving side.
 *
 * Parsing never throws: a message that breaks a rule becomes an `invalid`
 * envelope carrying the typed error to answer with, and whatever of the
 * caller's version was readable, so the error reply can echo it.
 *
 * @module
 */
import { headers as natsHeaders, type MsgHdrs } from '@nats-io/transport-node';
import { ErrorCode, MoltError, toMoltError } from '../errors.ts';
import type { Codec } from './codec.ts';
import { fixedHeaders } from './codec.ts';
import type { HeaderBlock } from './header-block.ts';
import { decodeKey, Header, IDEMPOTENCY_KEY_PATTERN, PROTOCOL_VERSION, shardOf } from './protocol.ts';

/** A call that passed every check the node can make before it reaches an actor. */
export interface CallEnvelope {
  readonly kind: 'call';
  /** Actor type (the subject's third token). */
  readonly type: string;
  /** The actor key, decoded. */
  readonly key: string;
  /** The key's shard. */
  readonly shard: number;
  /** The interface version the caller speaks. */
  readonly version: number;
  /** The message name. */
  readonly message: string;
  /** The decoded body: the message payload (an object). */
  readonly request: unknown;
  /** The caller's idempotency key and, on a resend, the time since its first attempt. */
  readonly keyed: KeyedCall | undefined;
}

/** The idempotency part of a call: its key, and on a resend how long ago its first attempt was sent. */
export interface KeyedCall {
  readonly key: string;
  readonly resendAgeMs: number | undefined;
  /** On a resend, when the caller's clock says its first attempt was sent (Unix ms), if it says. */
  readonly firstSentMs?: number | undefined;
}

/** A call the node refuses before any actor sees it. */
export interface InvalidEnvelope {
  readonly kind: 'invalid';
  readonly error: MoltError;
  /** The actor type, once the subject named one. */
  readonly type?: string;
  /** The caller's version, once it was a valid version header. */
  readonly version?: number;
}

export type ParsedCall = CallEnvelope | InvalidEnvelope;

/** What a node needs to know to check a call. */
export interface CallLimits {
  /** Shards of the service: a key sent to another shard is refused. */
  readonly shards: number;
  /** Largest body accepted, in bytes. */
  readonly maxPayload: number;
  /** True if the service has this actor type. */
  hasType(type: string): boolean;
  /** The error for an actor type the service does not have. */
  unknownType(type: string): MoltError;
}

/** A caller's interface version: a positive decimal integer, no sign, leading zero or exponent. */
export const VERSION_PATTERN = /^[1-9][0-9]{0,8}$/;

/**
 * Reads a call: subject `molt.<service>.<type>.<shard>.<key>`, the version and
 * message headers, and the body. The checks run in the order docs/protocol.md
 * lists them, so a message with several faults gets the first one's error.
 */
export function parseCall(subject: string, headers: HeaderBlock | undefined, data: Uint8Array, limits: CallLimits, codec: Codec): ParsedCall {
  const tokens = subject.split('.');
  if (tokens.length !== 5) {
    return invalid(new MoltError(ErrorCode.InvalidHeader, `subject '${subject}' is not molt.<service>.<type>.<shard>.<key>`));
  }
  const type = tokens[2]!;
  const versionHeader = headers?.get(Header.Version) || undefined;
  const validVersion = versionHeader !== undefined && VERSION_PATTERN.test(versionHeader);
  if (!limits.hasType(type)) return { kind: 'invalid', error: limits.unknownType(type), ...(validVersion ? { version: Number(versionHeader) } : {}) };
  if (!validVersion) {
    const got = versionHeader === undefined ? 'nothing' : JSON.stringify(versionHeader.slice(0, 20));
    return { kind: 'invalid', type, error: new MoltError(ErrorCode.InvalidVersion, `header ${Header.Version} must be the caller's interface version, a positive integer; got ${got}`) };
  }
  const version = Number(versionHeader);
  const message = headers?.get(Header.Message);
  if (!message) return { kind: 'invalid', type, version, error: new MoltError(ErrorCode.InvalidHeader, `header ${Header.Message} (the message name) is missing`) };
  if (data.length > limits.maxPayload) {
    return {
      kind: 'invalid',
      type,
      version,
      error: new MoltError(ErrorCode.PayloadTooLarge, `body is ${data.length} bytes; this node accepts at most ${limits.maxPayload}`, { data: { size: data.length, limit: limits.maxPayload } }),
    };
  }
  const idempotencyKey = headers?.get(Header.IdempotencyKey);
  if (idempotencyKey !== undefined && !IDEMPOTENCY_KEY_PATTERN.test(idempotencyKey)) {
    return {
      kind: 'invalid',
      type,
      version,
      error: new MoltError(ErrorCode.InvalidHeader, `header ${Header.IdempotencyKey} must be 1 to 128 visible ASCII characters; got ${idempotencyKey.length} characters`, { data: { header: Header.IdempotencyKey } }),
    };
  }
  let keyed: KeyedCall | undefined;
  if (idempotencyKey !== undefined) {
    const age = headers?.get(Header.ResendAge);
    if (age !== undefined && !/^\d{1,15}$/.test(age)) {
      return {
        kind: 'invalid',
        type,
        version,
        error: new MoltError(ErrorCode.InvalidHeader, `header ${Header.ResendAge} must be a whole number of milliseconds; got ${JSON.stringify(age.slice(0, 40))}`, { data: { header: Header.ResendAge } }),
      };
    }
    const sent = age === undefined ? undefined : headers?.get(Header.FirstSent);
    if (sent !== undefined && !/^\d{1,15}$/.test(sent)) {
      return {
        kind: 'invalid',
        type,
        version,
        error: new MoltError(ErrorCode.InvalidHeader, `header ${Header.FirstSent} must be a time in whole milliseconds since the Unix epoch; got ${JSON.stringify(sent.slice(0, 40))}`, { data: { header: Header.FirstSent } }),
      };
    }
    keyed = age === undefined ? { key: idempotencyKey, resendAgeMs: undefined } : { key: idempotencyKey, resendAgeMs: Number(age), firstSentMs: sent === undefined ? undefined : Number(sent) };
  }
  const keyToken = tokens[4]!;
  let key: string;
  try {
    key = decodeKey(keyToken);
  } catch (e) {
    return { kind: 'invalid', type, version, error: toMoltError(e) };
  }
  const expected = shardOf(keyToken, limits.shards);
  if (String(expected) !== tokens[3]) {
    return {
      kind: 'invalid',
      type,
      version,
      error: new MoltError(
        ErrorCode.InvalidHeader,
        `key '${keyToken}' belongs to shard ${expected} of ${limits.shards}, but was sent to shard ${tokens[3]}: does the caller use the service's shard count (${limits.shards})?`,
        { data: { shards: limits.shards, expected } },
      ),
    };
  }
  if (data.length === 0) return { kind: 'call', type, key, shard: expected, version, message, request: {}, keyed };
  let request: unknown;
  try {
    request = codec.decode(data);
  } catch (e) {
    return { kind: 'invalid', type, version, error: new MoltError(ErrorCode.MalformedBody, `body is not a superjson document: ${(e as Error).message}`) };
  }
  if (typeof request !== 'object' || request === null || Array.isArray(request)) {
    return { kind: 'invalid', type, version, error: new MoltError(ErrorCode.MalformedBody, 'body must encode an object (the message payload)') };
  }
  return { kind: 'call', type, key, shard: expected, version, message, request, keyed };
}

function invalid(error: MoltError): InvalidEnvelope {
  return { kind: 'invalid', error };
}

/** What a reply's headers say besides its status. */
export interface ReplyMeta {
  /** The caller's version, echoed when the call had a valid one. */
  readonly version?: number;
  /** The version of the type the answering node runs natively, once the type is known. */
  readonly nodeVersion?: number;
  /** The caller's correlation id, echoed unchanged. */
  readonly correlation?: string;
}

/**
 * Builds reply header blocks. An ok reply without a correlation id carries
 * one of a handful of blocks (caller version × node version), so those are
 * built and encoded once each instead of once per reply.
 */
export function createReplyHeaders(nodeId?: string): (ok: boolean, meta: ReplyMeta) => MsgHdrs {
  const cached = new Map<string, MsgHdrs>();
  const build = (ok: boolean, meta: ReplyMeta): Array<[string, string]> => {
    const entries: Array<[string, string]> = [
      [Header.Status, ok ? 'ok' : 'error'],
      [Header.Protocol, String(PROTOCOL_VERSION)],
    ];
    if (meta.version !== undefined) entries.push([Header.Version, String(meta.version)]);
    if (meta.nodeVersion !== undefined) entries.push([Header.NodeVersion, String(meta.nodeVersion)]);
    if (nodeId !== undefined) entries.push([Header.Node, nodeId]);
    return entries;
  };
  return (ok, meta) => {
    if (meta.correlation !== undefined) {
      // The correlation id is the caller's text: let nats.js validate and encode it.
      const h = natsHeaders();
      for (const [name, value] of build(ok, meta)) h.set(name, value);
      h.set(Header.Correlation, meta.correlation);
      return h;
    }
    const cacheKey = `${ok ? 1 : 0} ${meta.version ?? ''} ${meta.nodeVersion ?? ''}`;
    let h = cached.get(cacheKey);
    if (!h) {
      h = fixedHeaders(build(ok, meta));
      // Bounded: caller versions are any integer a caller sends.
      if (cached.size < 256) cached.set(cacheKey, h);
    }
    return h;
  };
}
