/**
 * What changes a node's versions: loading, upgrading in place, retiring, and
 * (for the upgrade manager only, node/internals.ts) rolling back and setting
 * the status its record publishes. Every verb publishes the node's record
 * where others must learn of the change: before an upgrade writes any actor
 * at its target (a restart must never run a version older than its state),
 * and once it ended.
 *
 * @module
 */
import type { AnyActorVersion } from '../define/version.ts';
import { ErrorCode, MoltError } from '../errors.ts';
import type { Clock, Logger } from '../env.ts';
import type { ActorHost } from '../host/actor-host.ts';
import type { NodeInternals } from './internals.ts';
import type { NodeRecordState } from './record.ts';

/** How an in-place upgrade of one type on one node went. */
export interface UpgradeResult {
  transformed: number;
  failed: number;
  /** When the type ran the new version (the node's clock), taken before its record said so. */
  finishedAt?: number;
}

/** What the verbs act on. */
export interface VerbsContext {
  service: string;
  hosts: ReadonlyMap<string, ActorHost>;
  /** What the node's record says of it (status, last error, upgrades under way). */
  state: NodeRecordState;
  /** Writes the node's record now. */
  publish(): Promise<void>;
  clock: Clock;
  logger: Logger;
}

/** The verbs a node's user calls (on `MoltNode`) and those only its upgrade manager calls. */
export function nodeVerbs(c: VerbsContext) {
  const { state, publish, logger } = c;
  function hostOf(type: string): ActorHost {
    const host = c.hosts.get(type);
    if (!host) throw new MoltError(ErrorCode.UnknownType, `service '${c.service}' has no actor type '${type}'`);
    return host;
  }
  /** Runs a change of a type's native version with the node shown `upgrading` meanwhile. */
  async function changing<T>(change: () => Promise<T>): Promise<T> {
    try {
      return await change();
    } catch (e) {
      state.lastError = (e as Error).message;
      throw e;
    } finally {
      state.status = 'running';
      await publish();
    }
  }

  const verbs = {
    loadVersion(def: AnyActorVersion): void {
      hostOf(def.type).addVersion(def);
      void publish();
    },
    async upgrade(type: string, version: number, def?: AnyActorVersion): Promise<UpgradeResult> {
      const host = hostOf(type);
      if (def) host.addVersion(def);
      state.status = 'upgrading';
      // Durably record the target before any actor is written at it: a node
      // restarted after a crash must never run a version older than its state.
      state.upgradingTo[type] = version;
      await publish();
      return changing(async () => {
        try {
          const result = await host.upgrade(version);
          // Taken before the record announces the new version: from then on
          // other nodes may act on this upgrade having ended (a rolling schedule
          // starts the next node), so records of it must not say it ended later.
          const finishedAt = c.clock.now();
          logger.info('type upgraded', { type, version, ...result });
          return { ...result, finishedAt };
        } finally {
          delete state.upgradingTo[type];
        }
      });
    },
    retire(type: string, version: number): void {
      hostOf(type).retire(version);
    },
  };

  const internals: Omit<NodeInternals, 'udb' | 'followNodeRecords'> = {
    async setStatus(next, error) {
      state.status = next;
      state.lastError = error;
      await publish();
    },
    async downgrade(type, version) {
      const host = hostOf(type);
      if (host.currentVersion === version) {
        host.markRolledBack(version + 1);
        void publish();
        return { transformed: 0, failed: 0 };
      }
      state.status = 'upgrading';
      await publish();
      return changing(async () => {
        const result = await host.downgrade(version);
        logger.info('type rolled back', { type, version, ...result });
        return result;
      });
    },
    clearRollback(type) {
      hostOf(type).clearRollback();
      void publish();
    },
    expectUpgrades(predicate) {
      for (const [name, host] of c.hosts) host.upgradeMayArrive = predicate && ((version) => predicate(name, version));
    },
  };
  return { verbs, internals };
}
