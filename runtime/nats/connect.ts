/**
 * Connecting to NATS with the options Molt relies on, in one place, so nodes,
 * clients, tools and benchmarks use the same ones.
 *
 * @module
 */
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { ErrorCode, MoltError } from '../errors.ts';

/** Either a connection you made, or where to connect. */
export type NatsTarget = NatsConnection | { servers: string | string[]; name?: string; user?: string; pass?: string; token?: string };

/** Connects with reconnects forever and async stack traces off (they cost ~40% per request). */
export async function connectNats(target: { servers: string | string[]; name?: string; user?: string; pass?: string; token?: string }): Promise<NatsConnection> {
  try {
    return await connect({
      servers: target.servers,
      name: target.name,
      user: target.user,
      pass: target.pass,
      token: target.token,
      noAsyncTraces: true,
      maxReconnectAttempts: -1,
      reconnectTimeWait: 250,
      waitOnFirstConnect: false,
    });
  } catch (e) {
    const where = Array.isArray(target.servers) ? target.servers.join(', ') : target.servers;
    throw new MoltError(ErrorCode.Unavailable, `cannot connect to NATS at ${where}: ${e instanceof Error ? e.message : String(e)}. Is nats-server running? (Leave NATS_URL unset to start an embedded one with \`molt dev\`.)`, { cause: e });
  }
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
