/**
 * The call subscriptions of the shards a node owns. Placement says which
 * shards are this node's; this subscribes to the gained ones (after marking
 * their resident actors stale) and drains the lost ones (after evicting
 * them), and says when the lost ones are quiet.
 *
 * @module
 */
import type { Msg, NatsConnection, Subscription } from '@nats-io/transport-node';
import { encodeKey, shardOf, shardSubscription } from '../wire/protocol.ts';
import type { ActorHost } from '../host/actor-host.ts';
import type { Logger } from '../env.ts';

/** What {@link ShardSubscriptions} works with. */
export interface ShardSubscriptionsOptions {
  nc: NatsConnection;
  service: string;
  shards: number;
  hosts: ReadonlyMap<string, ActorHost>;
  /** Where calls go (the edge). */
  receive(msg: Msg): void;
  /** Resolves once no accepted call is still running. */
  quiet(): Promise<void>;
  logger: Logger;
}

/** The subscriptions of the shards this node owns. */
export class ShardSubscriptions {
  private readonly subscriptions = new Map<number, Subscription>();

  constructor(private readonly o: ShardSubscriptionsOptions) {}

  /**
   * Makes the subscriptions those of `owned`. Resolves once the shards given
   * up are quiet: no call accepted for them is still running. Placement
   * announces the release only after this: until then another node must not
   * take these shards, or two nodes could write one actor at once.
   */
  apply(owned: ReadonlySet<number>): Promise<void> {
    const { nc, service, shards, hosts } = this.o;
    const draining: Array<Promise<unknown>> = [];
    for (const [shard, sub] of this.subscriptions) {
      if (owned.has(shard)) continue;
      // Drain, not unsubscribe: calls the server already routed here are
      // still answered instead of being dropped (their callers would time out).
      draining.push(sub.drain().catch(() => undefined));
      this.subscriptions.delete(shard);
      for (const host of hosts.values()) host.evict((key) => shardOf(encodeKey(key), shards) === shard);
    }
    // Actors of shards this node gains may have changed on another node since
    // this one last held them in memory: reload them before answering.
    const gained = new Set([...owned].filter((shard) => !this.subscriptions.has(shard)));
    if (gained.size > 0) {
      for (const host of hosts.values()) host.invalidate((key) => gained.has(shardOf(encodeKey(key), shards)));
    }
    for (const shard of gained) {
      // No queue group: only one node owns a shard at a time, and a node cut
      // off from its server keeps its subscriptions there until the server
      // notices the dead connection (minutes). A shared queue group would
      // keep sending the cut node its share of the shard's calls after the
      // new owner subscribed; without one, the owner receives every call.
      const sub = nc.subscribe(shardSubscription(service, shard), {
        callback: (err, msg) => {
          if (!err) this.o.receive(msg);
        },
      });
      this.subscriptions.set(shard, sub);
    }
    this.o.logger.debug('shards changed', { owned: owned.size });
    if (draining.length === 0) return Promise.resolve();
    return Promise.all(draining).then(() => this.o.quiet());
  }

  /** Drains every subscription (the node is stopping). */
  async drainAll(): Promise<void> {
    await Promise.allSettled([...this.subscriptions.values()].map((sub) => sub.drain()));
    this.subscriptions.clear();
  }
}
