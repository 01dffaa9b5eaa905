/**
 * Which reply subjects a node answers: only those of the callers' inbox form
 * (`_INBOX.<…>` by default). A node publishes its reply wherever the call's
 * reply subject says, with the node's own NATS permissions — and a node may
 * write actor state and use the JetStream API. A caller that set the reply
 * subject to `$KV.molt_<service>_state.<key>` would have the reply stored as
 * an actor's state; one that set it to `$JS.API.STREAM.PURGE.<stream>` would
 * have the node purge a stream. So a call whose reply subject is not a caller
 * inbox is dropped unrun: it cannot be answered (the reply subject is the
 * attack), and running it would change state nobody is told about. It is
 * logged at warn, at most once a second with the count since, so that a flood
 * of such calls cannot flood the log.
 *
 * The node's own inboxes (its JetStream acknowledgements) are refused too, in
 * case they share the callers' prefix: a reply published there would be read
 * as an acknowledgement.
 *
 * @module
 */
import type { NatsConnection } from '@nats-io/transport-node';
import type { Clock, Logger } from '../env.ts';
import { inboxPrefixOf } from '../nats/connect.ts';

/** Default prefix of callers' reply subjects: nats.js's and most NATS clients' default inbox prefix. */
export const DEFAULT_CALLER_INBOX_PREFIX = '_INBOX';

/** Options of {@link createReplyCheck}. */
export interface ReplyCheckOptions {
  /** Prefix of callers' reply subjects, without the trailing dot (default `_INBOX`). */
  callerInboxPrefix?: string;
  /** Prefixes of this node's own reply subjects, never a caller's (read once, at the first call). */
  ownInboxes?: () => readonly string[];
  logger: Logger;
  clock: Clock;
}

/** Prefix checks a reply subject must pass (also used to validate the option). */
const SUBJECT_TOKEN = /^[^\s.*>]+$/;

/** Throws if `prefix` cannot be an inbox prefix: dot-separated tokens without wildcards or spaces. */
export function checkInboxPrefix(prefix: string): void {
  if (prefix.length === 0 || !prefix.split('.').every((t) => SUBJECT_TOKEN.test(t))) {
    throw new TypeError(`inbox prefix '${prefix}' must be subject tokens separated by '.', with no spaces or wildcards (e.g. _INBOX or _INBOX.billing)`);
  }
}

/** True if `reply` is a subject under `prefix` with at least one more token and no wildcard. */
export function isUnderPrefix(reply: string, prefix: string): boolean {
  if (!reply.startsWith(prefix) || reply.charCodeAt(prefix.length) !== 46 /* '.' */ || reply.length === prefix.length + 1) return false;
  for (let i = prefix.length + 1; i < reply.length; i++) {
    const c = reply.charCodeAt(i);
    // '*', '>', and whitespace: a reply subject is a literal subject.
    if (c === 42 || c === 62 || c <= 32) return false;
  }
  return true;
}

/**
 * Returns the check a node applies to every call before anything else: true
 * to handle the call (its reply subject is a caller inbox, or it has none: a
 * call published without one is a tell nobody waits for), false to drop it.
 */
export function createReplyCheck(options: ReplyCheckOptions): (subject: string, reply: string | undefined) => boolean {
  const prefix = options.callerInboxPrefix ?? DEFAULT_CALLER_INBOX_PREFIX;
  checkInboxPrefix(prefix);
  const { logger, clock } = options;
  let dropped = 0;
  let lastLogAt = Number.NEGATIVE_INFINITY;
  // Read at the first call: the node's inboxes exist by then, and do not change.
  let own: readonly string[] | undefined;
  return (subject, reply) => {
    if (!reply) return true;
    own ??= options.ownInboxes?.() ?? [];
    if (isUnderPrefix(reply, prefix) && !own.some((o) => reply.startsWith(o))) return true;
    dropped++;
    const now = clock.now();
    if (now - lastLogAt >= 1000) {
      logger.warn('call dropped unrun: its reply subject is not a caller inbox', {
        reply: reply.slice(0, 200),
        subject: subject.slice(0, 200),
        expected: `${prefix}.>`,
        dropped,
      });
      lastLogAt = now;
      dropped = 0;
    }
    return false;
  };
}

/**
 * A node's own reply-subject prefix when it makes its connection:
 * `_MOLT_NODE.<id>`, outside the callers' `_INBOX`, so that permissions can
 * let no caller (and no other node) read or forge its JetStream replies.
 */
export function nodeInboxPrefix(nodeId: string): string {
  return `_MOLT_NODE.${nodeId}`;
}

/**
 * The prefixes of a node's own reply subjects that a caller's reply subject
 * must not fall under: its JetStream acknowledgement inbox, and its
 * connection's inbox prefix unless that is the callers' own (a connection
 * shared with callers, e.g. in tests).
 */
export function ownInboxes(nc: NatsConnection, ackInbox: string, callerInboxPrefix = DEFAULT_CALLER_INBOX_PREFIX): string[] {
  const own = inboxPrefixOf(nc);
  return own === callerInboxPrefix ? [`${ackInbox}.`] : [`${ackInbox}.`, `${own}.`];
}
