/**
 * A node's two NATS connections. Calls arrive on one; heartbeats, the
 * membership watch and actor state travel on the other ("control"): on the
 * call connection, a flood of calls queues their replies behind it, and a
 * node would lose its lease (and every caller its answers) to one noisy
 * client. A node given a connection, rather than where to connect, shares
 * that one connection for both.
 *
 * @module
 */
import type { NatsConnection } from '@nats-io/transport-node';
import { connectNats, isConnection, resolveConnection, type NatsTarget } from '../nats/connect.ts';

/** The connections of a node, and how to let them go. */
export interface NodeConnections {
  /** Calls, replies, discovery. */
  readonly calls: NatsConnection;
  /** Heartbeats, the UDB, actor state; the same as `calls` for a node given a connection. */
  readonly control: NatsConnection;
  /** Closes the connections this node opened (none, for a node given one), dropping what is queued. */
  close(): Promise<void>;
  /** Drains the connections this node opened: what is queued is sent first. */
  drain(): Promise<void>;
}

/** Opens (or adopts) the node's connections; nothing is left open if the second one fails. */
export async function openNodeConnections(target: NatsTarget): Promise<NodeConnections> {
  const { nc: calls, owned } = await resolveConnection(target);
  let control: NatsConnection;
  try {
    control = owned && !isConnection(target) ? await connectNats({ ...target, name: `${target.name ?? 'molt-node'} (control)` }) : calls;
  } catch (e) {
    if (owned) await calls.close().catch(() => undefined);
    throw e;
  }
  const each = async (f: (nc: NatsConnection) => Promise<unknown>) => {
    if (!owned) return;
    await f(calls).catch(() => undefined);
    if (control !== calls) await f(control).catch(() => undefined);
  };
  return {
    calls,
    control,
    close: () => each((nc) => nc.close()),
    drain: () => each((nc) => nc.drain()),
  };
}
