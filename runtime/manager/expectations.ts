/**
 * What the node may expect: whether an upgrade of a type to a newer version
 * than it knows may still arrive. The node answers a call of such a version
 * `VersionUnsupported`; retryable while the upgrade may arrive (it is
 * published and this node has not loaded it yet), not retryable once this
 * manager has read the descriptors and none names that version — a caller
 * retrying then would retry forever (the scaffold's `call.ts` did, for 10 s).
 *
 * Why in the manager: only it reads the descriptors. The node keeps the
 * decision in its actor hosts (`TypeVersions.upgradeMayArrive`), asked only
 * when a call of an unknown newer version comes.
 *
 * @module
 */
import { descriptorKey } from '../server/descriptor.ts';
import type { ManagerContext } from './context.ts';

export interface UpgradeExpectations {
  /** The descriptors were read completely at least once: from now on, an unpublished version is known to be one. */
  descriptorsRead(): void;
  /** Tells the node to assume again that any version may arrive (the manager stops following descriptors). */
  stop(): void;
}

export function createUpgradeExpectations(ctx: ManagerContext): UpgradeExpectations {
  let read = false;
  return {
    descriptorsRead() {
      if (read) return;
      read = true;
      // Descriptors are kept current by the watch; a version published later is expected from then on.
      ctx.internals.expectUpgrades((type, version) => ctx.descriptors.has(descriptorKey(type, version)));
    },
    stop() {
      ctx.internals.expectUpgrades(undefined);
    },
  };
}
