/**
 * The wire protocol in one place: subjects, headers, actor-key encoding and
 * shard hashing. docs/protocol.md describes exactly this file; keep them in sync.
 *
 * Subject of a call:  molt.<service>.<type>.<shard>.<key>
 *   shard = FNV-1a 32-bit of the encoded key's UTF-8 bytes, mod the service's shard count
 *   key   = the actor key itself if it matches [A-Za-z0-9_-]{1,200},
 *           else '=' + base64url(UTF-8 key) (so the two forms can never collide).
 *
 * @module
 */
import { ErrorCode, MoltError } from '../errors.ts';

/** Protocol revision, sent in every call and reply. */
export const PROTOCOL_VERSION = 1;

/** Header names. Values are ASCII; numbers are decimal integers. */
export const Header = {
  /** The interface version the caller speaks (required, integer ≥ 1). */
  Version: 'Molt-Version',
  /** The message name (required). */
  Message: 'Molt-Message',
  /** Caller's correlation id (optional), echoed in the reply. */
  Correlation: 'Molt-Correlation',
  /**
   * Caller's idempotency key (optional): a state-changing call sent again with
   * the same key is answered with the first one's reply and not run again.
   */
  IdempotencyKey: 'Molt-Idempotency-Key',
  /**
   * On a keyed call sent again (optional): milliseconds since its first
   * attempt was sent. A node that may have forgotten the key by then answers
   * `OutcomeUnknown` instead of running the call a second time.
   */
  ResendAge: 'Molt-Resend-Age',
  /**
   * With `Molt-Resend-Age` (optional): when the first attempt was sent, in
   * milliseconds since the Unix epoch by the caller's clock. A resend held
   * up on its way (a partition, a reconnect) arrives older than its age
   * says; a node takes the earlier of the two.
   */
  FirstSent: 'Molt-First-Sent',
  /**
   * W3C trace context of the caller's span (optional): the node continues the
   * trace (runtime/observe/trace.ts). Lowercase, as the W3C spec writes it.
   */
  Traceparent: 'traceparent',
  /** The protocol revision (optional in calls, always set in replies). */
  Protocol: 'Molt-Protocol',
  /** In replies: 'ok' or 'error'. */
  Status: 'Molt-Status',
  /** In replies: the version of the type the answering node runs natively. */
  NodeVersion: 'Molt-Node-Version',
  /** In replies: how the call was served: native, past, future, future2. */
  ServedBy: 'Molt-Served-By',
  /**
   * In replies: the id of the node that answered. A client that knows which
   * node owns a shard may send that node its calls in batches (wire/batch.ts).
   */
  Node: 'Molt-Node',
  /** On a batch of calls and on its answers: the frame format's revision (wire/batch.ts). */
  Batch: 'Molt-Batch',
} as const;

/** An idempotency key: 1–128 visible ASCII characters. */
export const IDEMPOTENCY_KEY_PATTERN = /^[\x21-\x7e]{1,128}$/;

/** Default number of shards per service: the unit of placement. */
export const DEFAULT_SHARDS = 64;

/** Default maximum body size of a call, in bytes. */
export const DEFAULT_MAX_PAYLOAD = 256 * 1024;

const rawKeyPattern = /^[A-Za-z0-9_-]{1,200}$/;
const MAX_KEY_BYTES = 512;

/** Encodes an actor key for subjects and KV keys; throws InvalidKey when it cannot. */
export function encodeKey(key: string): string {
  if (typeof key !== 'string' || key.length === 0) {
    throw new MoltError(ErrorCode.InvalidKey, 'actor key is empty: every actor needs a non-empty key', { data: { key } });
  }
  if (rawKeyPattern.test(key)) return key;
  // UTF-8 cannot carry an unpaired surrogate: Buffer would write U+FFFD for it,
  // so distinct keys ('\uD800', '\uDC00', '\uFFFD') would name one actor.
  if (/[\uD800-\uDFFF]/u.test(key)) {
    throw new MoltError(ErrorCode.InvalidKey, 'actor key contains an unpaired UTF-16 surrogate, which UTF-8 cannot carry: use a well-formed string', { data: { length: key.length } });
  }
  const bytes = Buffer.from(key, 'utf8');
  if (bytes.length > MAX_KEY_BYTES) {
    throw new MoltError(ErrorCode.InvalidKey, `actor key is ${bytes.length} bytes; the limit is ${MAX_KEY_BYTES}`, { data: { length: bytes.length } });
  }
  return '=' + bytes.toString('base64url');
}

/** Decodes a key token from a subject; throws InvalidKey when it is not a valid encoding. */
export function decodeKey(token: string): string {
  if (rawKeyPattern.test(token)) return token;
  if (token.startsWith('=') && /^=[A-Za-z0-9_-]+$/.test(token)) {
    const key = Buffer.from(token.slice(1), 'base64url').toString('utf8');
    // Only canonical encodings are accepted, so one actor has one subject.
    // ... and only keys a client may encode (at most MAX_KEY_BYTES), so every served actor is callable.
    if (key.length > 0 && !rawKeyPattern.test(key) && Buffer.byteLength(key, 'utf8') <= MAX_KEY_BYTES && Buffer.from(key, 'utf8').toString('base64url') === token.slice(1)) return key;
  }
  // The whole token in data (a subject is bounded by the server's control line);
  // the message shows its start and says how long it is.
  const shown = token.length > 64 ? `${token.slice(0, 64)}…' (${token.length} characters)` : `${token}'`;
  throw new MoltError(ErrorCode.InvalidKey, `subject token '${shown} is not an encoded actor key (see docs/protocol.md, "Actor keys")`, { data: { token } });
}

/** FNV-1a, 32 bit, over the UTF-8 bytes of `text`. */
export function fnv1a(text: string): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    let c = text.charCodeAt(i);
    // Encoded keys are ASCII; anything else is hashed as its UTF-8 bytes.
    if (c < 0x80) {
      hash ^= c;
      hash = Math.imul(hash, 0x01000193);
    } else {
      for (const b of Buffer.from(text.slice(i, i + 1), 'utf8')) {
        hash ^= b;
        hash = Math.imul(hash, 0x01000193);
      }
    }
  }
  return hash >>> 0;
}

/** The shard of an encoded key. */
export function shardOf(encodedKey: string, shards: number): number {
  return fnv1a(encodedKey) % shards;
}

/** The subject a call to `(type, key)` is sent to. */
export function callSubject(service: string, type: string, encodedKey: string, shards: number): string {
  return `molt.${service}.${type}.${shardOf(encodedKey, shards)}.${encodedKey}`;
}

/** The subject pattern a node subscribes to for one shard of one service. */
export function shardSubscription(service: string, shard: number): string {
  return `molt.${service}.*.${shard}.*`;
}

/**
 * The subject a node takes batches of calls on (wire/batch.ts). Four tokens,
 * so no shard subscription (five) matches it, and `_` starts no type name.
 */
export function batchSubject(service: string, nodeId: string): string {
  return `molt.${service}._batch.${nodeId}`;
}

/** Names of the JetStream buckets a service uses. */
export function bucketNames(service: string) {
  return {
    /** Actor state, one key per actor: `<type>.<encoded key>`. */
    state: `molt_${service}_state`,
    /** Upgrade database: nodes, rollouts, control. */
    udb: `molt_${service}_udb`,
  } as const;
}

/** KV key of an actor's state. */
export function stateKey(type: string, encodedKey: string): string {
  return `${type}.${encodedKey}`;
}
