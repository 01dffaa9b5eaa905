/**
 * Connecting to NATS with the options Molt relies on, in one place, so nodes,
 * clients, tools and benchmarks use the same ones — credentials included, in
 * the forms the `nats` tools take (./credentials.ts).
 *
 * @module
 */
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { ErrorCode, MoltError } from '../errors.ts';
import { credentialsFromEnv, resolveCredentials, type NatsCredentials } from './credentials.ts';

export { credentialsFromEnv, type NatsCredentials } from './credentials.ts';

/** Where to connect and as whom. */
export interface NatsConnectOptions extends NatsCredentials {
  /** Server URL(s); a URL may carry credentials (`nats://user:pass@host:4222`, `nats://token@host:4222`). */
  servers: string | string[];
  /** Connection name, shown by the server's monitoring. */
  name?: string;
  /**
   * Prefix of this connection's reply subjects (default `_INBOX`). Permissions
   * give each role its own (docs/permissions.md), so that no one else can
   * subscribe to its replies; a client's must be one its nodes answer to.
   */
  inboxPrefix?: string;
}

/** Either a connection you made, or where to connect. */
export type NatsTarget = NatsConnection | NatsConnectOptions;

/** Connects with reconnects forever and async stack traces off (they cost ~40% per request). */
export async function connectNats(target: NatsConnectOptions): Promise<NatsConnection> {
  const auth = resolveCredentials(target.servers, target);
  const { describe, ...credentials } = auth;
  try {
    return await connect({
      ...credentials,
      name: target.name,
      ...(target.inboxPrefix ? { inboxPrefix: target.inboxPrefix } : {}),
      noAsyncTraces: true,
      maxReconnectAttempts: -1,
      reconnectTimeWait: 250,
      waitOnFirstConnect: false,
    });
  } catch (e) {
    const where = auth.servers.join(', ');
    const text = e instanceof Error ? e.message : String(e);
    if (/authorization violation|authentication|user authentication expired/i.test(text)) {
      throw new MoltError(
        ErrorCode.Environment,
        `NATS at ${where} refused to log in with ${describe} (${text}). Give credentials the server accepts: in the URL (nats://user:pass@host:4222 or nats://token@host:4222), NATS_USER/NATS_PASSWORD, NATS_TOKEN, --creds <file> or --nkey <seed file>`,
        { cause: e },
      );
    }
    throw new MoltError(ErrorCode.Unavailable, `cannot connect to NATS at ${where}: ${text}. Is nats-server running? (Leave NATS_URL unset to start an embedded one with \`molt dev\`.)`, { cause: e });
  }
}

/**
 * Where `NATS_URL` and the `nats` CLI's credential variables (`NATS_USER`,
 * `NATS_PASSWORD`, `NATS_TOKEN`, `NATS_CREDS`, `NATS_NKEY`) say to connect;
 * throws an Environment error when `NATS_URL` is unset.
 */
export function natsFromEnv(env: NodeJS.ProcessEnv = process.env): NatsConnectOptions {
  const url = env.NATS_URL;
  if (!url) throw new MoltError(ErrorCode.Environment, 'NATS_URL is not set: set it to the NATS server the nodes use (e.g. nats://127.0.0.1:4222)');
  return { servers: url, ...credentialsFromEnv(env) };
}

/** True if `target` is an open connection rather than connection options. */
export function isConnection(target: NatsTarget): target is NatsConnection {
  return typeof (target as NatsConnection).publish === 'function';
}

/** Returns a connection for `target` and whether the caller owns it (must close it). */
export async function resolveConnection(target: NatsTarget): Promise<{ nc: NatsConnection; owned: boolean }> {
  if (isConnection(target)) return { nc: target, owned: false };
  return { nc: await connectNats(target), owned: true };
}

/**
 * The prefix of a connection's reply subjects (nats.js keeps it in its
 * options, which its public type does not show; read here and nowhere else).
 */
export function inboxPrefixOf(nc: NatsConnection): string {
  const prefix = (nc as NatsConnection & { options?: { inboxPrefix?: unknown } }).options?.inboxPrefix;
  return typeof prefix === 'string' && prefix.length > 0 ? prefix : '_INBOX';
}

/** `target` with `inboxPrefix` as its reply-subject prefix unless it names one (a connection is left as it is). */
export function withDefaultInboxPrefix(target: NatsTarget, inboxPrefix: string): NatsTarget {
  if (isConnection(target) || target.inboxPrefix) return target;
  return { ...target, inboxPrefix };
}
