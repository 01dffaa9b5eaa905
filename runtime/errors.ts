/**
 * The one family of errors Molt raises, on both sides of the wire.
 *
 * Every error has a stable `code` (its identity: compare codes, never classes,
 * since two copies of the package may be loaded), a human `message` that says
 * what was wrong and how to fix it, `retryable` (may the same call succeed if
 * sent again later?) and structured `data`. On the wire an error travels as
 * the plain object `{ code, message, retryable, data }` (see docs/protocol.md).
 *
 * @module
 */

/** Every error code Molt can produce. Closed: adding one is a protocol change. */
export const ErrorCode = {
  /** The body is not valid superjson, or is not an object. */
  MalformedBody: 'MalformedBody',
  /** The subject names an actor type the service does not have. */
  UnknownType: 'UnknownType',
  /** The message name is not part of the caller's interface version. */
  UnknownMessage: 'UnknownMessage',
  /** The payload does not satisfy the message's request schema. */
  InvalidPayload: 'InvalidPayload',
  /** The version header is missing or not a positive integer. */
  InvalidVersion: 'InvalidVersion',
  /** A required header other than the version is missing or malformed. */
  InvalidHeader: 'InvalidHeader',
  /** The body is larger than the node accepts. */
  PayloadTooLarge: 'PayloadTooLarge',
  /** The actor key is empty, too long or not encodable. */
  InvalidKey: 'InvalidKey',
  /** The actor's behaviour threw while handling the message; its state is unchanged. */
  ActorFailed: 'ActorFailed',
  /** No node answered (none running, NATS unreachable, shard moving). */
  Unavailable: 'Unavailable',
  /** The call was sent but no reply came in time; it may or may not have been applied. */
  Timeout: 'Timeout',
  /**
   * The node cannot know whether the call was applied: it sent the state
   * write but its acknowledgement never came, or it did not run the call
   * because another node may own the actor now (`data.ran: false`). Retry
   * only what is safe to apply twice, or read the state first.
   */
  OutcomeUnknown: 'OutcomeUnknown',
  /** The node or the actor has more calls waiting than it admits; this one was refused unrun. */
  Overloaded: 'Overloaded',
  /** The node does not serve the caller's version. */
  VersionUnsupported: 'VersionUnsupported',
  /** The caller's version was retired by an operator. */
  VersionRetired: 'VersionRetired',
  /** A simulation object cannot answer this call correctly, so it refuses it. */
  Disallowed: 'Disallowed',
  /** The type is being upgraded on this node and the hold buffer is full. */
  Upgrading: 'Upgrading',
  /** The transform function failed for this actor; its state is untouched. */
  TransformFailed: 'TransformFailed',
  /** The actor's state would grow past what the store can hold in one record; the call was not applied. */
  StateTooLarge: 'StateTooLarge',
  /** The actor's stored record cannot be read (it is not a state Molt wrote); nothing was changed. */
  StateUnreadable: 'StateUnreadable',
  /** A definition is inconsistent (bad version chain, duplicate type, ...). */
  InvalidDefinition: 'InvalidDefinition',
  /** Something the runtime needs from its environment is missing. */
  Environment: 'Environment',
  /** An upgrade bundle or descriptor failed verification. */
  UpgradeRejected: 'UpgradeRejected',
  /** An operator command was refused (unknown rollout, rollback impossible, ...). */
  OperationRefused: 'OperationRefused',
  /** A bug in Molt itself: please report it. */
  Internal: 'Internal',
} as const;

export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

/** The wire form of an error, as sent in an error reply. */
export interface WireError {
  code: ErrorCode;
  message: string;
  retryable: boolean;
  data?: Record<string, unknown>;
}

/** Codes for which a retry of the very same call can succeed. */
const retryableByDefault: ReadonlySet<ErrorCode> = new Set<ErrorCode>([
  ErrorCode.Unavailable,
  ErrorCode.Timeout,
  ErrorCode.Upgrading,
  ErrorCode.Overloaded,
  // Like Timeout: sending the same call again may succeed, but may apply it twice.
  ErrorCode.OutcomeUnknown,
]);

/**
 * A Molt error. Use {@link isMoltError} to recognise one; `instanceof` fails
 * across two copies of the package.
 */
export class MoltError extends Error {
  override readonly name = 'MoltError';
  readonly code: ErrorCode;
  readonly retryable: boolean;
  readonly data: Record<string, unknown>;

  constructor(
    code: ErrorCode,
    message: string,
    options: { retryable?: boolean; data?: Record<string, unknown>; cause?: unknown } = {},
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.retryable = options.retryable ?? retryableByDefault.has(code);
    this.data = options.data ?? {};
  }

  /** The plain object sent on the wire. */
  toWire(): WireError {
    return { code: this.code, message: this.message, retryable: this.retryable, data: this.data };
  }

  /** Rebuilds an error received on the wire; unknown shapes become `Internal`. */
  static fromWire(value: unknown): MoltError {
    if (isWireError(value)) {
      return new MoltError(value.code, value.message, { retryable: value.retryable, data: value.data ?? {} });
    }
    return new MoltError(ErrorCode.Internal, `malformed error reply: ${safeDescribe(value)}`);
  }
}

const knownCodes: ReadonlySet<string> = new Set(Object.values(ErrorCode));

function isWireError(value: unknown): value is WireError {
  if (typeof value !== 'object' || value === null) return false;
  const v = value as Record<string, unknown>;
  return typeof v.code === 'string' && knownCodes.has(v.code) && typeof v.message === 'string' && typeof v.retryable === 'boolean';
}

function safeDescribe(value: unknown): string {
  try {
    return JSON.stringify(value)?.slice(0, 200) ?? String(value);
  } catch {
    return String(value);
  }
}

/** True if `e` is a Molt error, optionally with the given code. */
export function isMoltError(e: unknown, code?: ErrorCode): e is MoltError {
  if (typeof e !== 'object' || e === null) return false;
  const candidate = e as { name?: unknown; code?: unknown };
  if (candidate.name !== 'MoltError' || typeof candidate.code !== 'string') return false;
  return code === undefined || candidate.code === code;
}

/** True if `e` is a Molt error whose call may succeed if retried. */
export function isRetryable(e: unknown): boolean {
  return isMoltError(e) && e.retryable;
}

/** Wraps anything thrown into a MoltError, keeping Molt errors as they are. */
export function toMoltError(e: unknown, code: ErrorCode = ErrorCode.Internal): MoltError {
  if (isMoltError(e)) return e;
  const message = e instanceof Error ? e.message : String(e);
  return new MoltError(code, message, { cause: e });
}
