/**
 * What the roles of an agent share: the caller registry, cleanup hooks and
 * the connection options every side of every comparison uses.
 *
 * @module
 */
import { connectNats } from '../../runtime/index.ts';
import type { NatsConnection } from '@nats-io/transport-node';

/** A command an agent runs for the harness. */
export type Command = (args: Record<string, unknown>) => Promise<unknown>;

/** Something a requester calls in a closed loop. */
export interface Caller {
  /** One call by worker `w` (worker w always addresses the same actor or key). */
  call(w: number): Promise<unknown>;
  /** One call to the `i`-th key of this caller's key space (for activation sweeps). */
  callKey?(i: number): Promise<unknown>;
}

/** Callers by name. */
export const callers = new Map<string, Caller>();

/**
 * CPU time (µs) of processes a role started beside its agent — a server the
 * system needs, such as restate-server — counted as this agent's.
 */
export const childCpu: Array<() => number> = [];

/** Run when the agent exits, newest first. */
export const cleanups: Array<() => Promise<void>> = [];

/**
 * A NATS connection with exactly the options Molt's nodes and clients use
 * (`noAsyncTraces: true` among them): baselines get the same client library
 * and the same options by construction.
 */
export async function connect(url: string, name: string): Promise<NatsConnection> {
  const nc = await connectNats({ servers: url, name });
  cleanups.push(async () => {
    await nc.drain().catch(() => undefined);
  });
  return nc;
}
