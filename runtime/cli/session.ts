/**
 * How an operator command talks to a service: connect as the flags say, find
 * the service, open its upgrade database, run, and drain the connection
 * however the command ends. The NATS client and the operator functions are
 * imported here when a command runs, so registering commands stays cheap.
 *
 * @module
 */
import type { NatsConnection } from '@nats-io/transport-node';
import type { Udb } from '../udb/index.ts';
import type { ConnectionFlags, NatsFlags } from './flags.ts';

/** What an operator command works with. */
export interface OperatorSession {
  nc: NatsConnection;
  service: string;
  udb: Udb;
}

/** Connects as the flags say (see connection.ts), imported only when a command runs. */
export async function connectFromFlags(flags: NatsFlags, name: string): Promise<NatsConnection> {
  const { connectFromFlags: connect } = await import('./connection.ts');
  return connect(flags, name);
}

/** Runs `body` against the service the flags name; the connection is drained when it ends. */
export async function withService<T>(flags: ConnectionFlags, name: string, body: (session: OperatorSession) => Promise<T>): Promise<T> {
  const { findService, openUdbFor } = await import('../operate/service.ts');
  const nc = await connectFromFlags(flags, name);
  try {
    const service = await findService(nc, flags.service);
    const udb = await openUdbFor(nc, service);
    return await body({ nc, service, udb });
  } finally {
    await nc.drain().catch(() => undefined);
  }
}
