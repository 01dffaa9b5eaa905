/**
 * Verification and loading of a published upgrade: the descriptor's
 * signature by a trusted publisher key, the bundle downloaded and checked
 * against its signed digest, and only then imported; the version it exports
 * checked against the chain, the scheduling function resolved, the rollout's
 * state read. Loading makes the new version known to the node (its future SO
 * serves callers at once) — or, for a version rolled back here and published
 * again, replaces the old code and ends the rollback.
 *
 * Why apart: this is the trust boundary. Nothing of a bundle runs before both
 * checks pass, and every refusal carries a reason (`unsigned`,
 * `digest-mismatch`, …) that the lifecycle reports. Bundles are imported once
 * per digest. Two refusals guard against what a valid signature alone lets
 * through: a bundle larger than `maxBundleBytes` (refused from its signed
 * size, then from the store's record of it, before it is downloaded, and cut
 * off if more arrives), and a replayed descriptor — a new revision of a key
 * whose signed `createdAt` is not later than the newest descriptor of that key
 * this manager has verified, or finds in the bucket's history when it first
 * sees the key (an old, genuinely signed descriptor put back). That history
 * read runs beside the bundle download; the import waits for both.
 *
 * @module
 */
import { ErrorCode, isMoltError, MoltError } from '../errors.ts';
import type { AnyActorVersion } from '../define/version.ts';
import { importBundle, sha256Hex, type LoadedBundle } from '../server/bundle.ts';
import { rejected, verifyDescriptor, type UpgradeDescriptor } from '../server/descriptor.ts';
import { rollbackStates } from '../udb/index.ts';
import type { UpgradeStore } from '../server/store.ts';
import type { ManagerContext } from './context.ts';
import { errorText, type Verified } from './model.ts';

export interface Verifier {
  /** Verifies the descriptor under `key` and imports its bundle; throws UpgradeRejected (with a reason) or a transient error. */
  verify(key: string): Promise<Verified>;
  /** The reason of the last rejection of `key`, if its last verification was a verdict (not a transient failure). */
  rejectionReason(key: string): string | undefined;
  /** Makes a verified version known to the node. */
  load(verified: Verified): Promise<void>;
  /** The definition a verified upgrade offers, even when the node already knows that version (a fix replaces it). */
  loadedVersion(verified: Verified): AnyActorVersion | undefined;
}

export function createVerifier(ctx: ManagerContext): Verifier {
  const { node, udb, logger } = ctx;
  const bundles = new Map<string, Promise<LoadedBundle>>();
  /** Rejection reasons (`unsigned`, `digest-mismatch`, …) by descriptor key, for reports. */
  const rejectionReasons = new Map<string, string>();
  /**
   * The newest descriptor of each key whose signature verified here (or, for
   * a key first seen, in the bucket's history). A later revision must have
   * been published later (publishers make `createdAt` increase per key); one
   * that was not is an old descriptor put back. The same descriptor written
   * again is not refused: it brings nothing older.
   */
  const newest = new Map<string, { revision: number; createdAt: number; rolloutId: string; digest: string }>();

  async function verify(key: string): Promise<Verified> {
    try {
      const verified = await verifyUpgrade(key);
      rejectionReasons.delete(key);
      return verified;
    } catch (e) {
      if (isMoltError(e, ErrorCode.UpgradeRejected)) rejectionReasons.set(key, String(e.data.reason ?? 'rejected'));
      else rejectionReasons.delete(key);
      throw e;
    }
  }

  async function verifyUpgrade(key: string): Promise<Verified> {
    const stored = ctx.descriptors.get(key);
    const store = ctx.store;
    if (!stored || !store) throw new MoltError(ErrorCode.Unavailable, `descriptor ${key} is no longer readable`);
    const descriptor = verifyDescriptor(key, stored.value, { service: node.service, trustedKeys: ctx.config.trustedKeys });
    const where = `${descriptor.type}@${descriptor.to}`;
    const maxBytes = ctx.config.maxBundleBytes;
    if (descriptor.bundle.size > maxBytes) {
      throw rejected(
        'bundle-too-large',
        `the bundle of ${where} (rollout ${descriptor.rolloutId}) is ${descriptor.bundle.size} bytes, over this node's limit of ${maxBytes} bytes: it was not downloaded. Publish a smaller bundle, or raise the limit on every node (--max-bundle-bytes, option maxBundleBytes)`,
        { key, rolloutId: descriptor.rolloutId, size: descriptor.bundle.size, maxBytes },
      );
    }
    // Read the rollout's records now, while the bundle downloads: the first
    // decision (catch up? hold?) must not race the UDB watches. (Awaited below;
    // if verification fails first, nobody needs them.)
    const records = Promise.all([udb.rollout(descriptor.rolloutId), udb.control(descriptor.rolloutId)]);
    records.catch(() => undefined);
    // The replay check reads the key's earlier revisions the first time it is
    // seen; the bundle downloads (and its digest is checked) meanwhile. Nothing
    // is imported until both passed: a replayed descriptor's bundle may have
    // been fetched, never run.
    const replayChecked = (async () => {
      if (!newest.has(key)) await rememberEarlier(key, stored.revision, store);
      checkNotReplayed(key, stored.revision, descriptor);
    })();
    const download = async (): Promise<Uint8Array> => {
      let bytes: Uint8Array | null;
      try {
        bytes = await store.getBundle(descriptor.bundle.digest, { maxBytes });
      } catch (e) {
        // Signed as small enough, but the store holds (or sends) more: not what was signed.
        if (isMoltError(e, ErrorCode.UpgradeRejected)) {
          throw rejected('bundle-too-large', `the bundle of ${where} (rollout ${descriptor.rolloutId}, signed size ${descriptor.bundle.size} bytes): ${e.message} — the object was replaced after publishing`, { key, ...e.data });
        }
        // The object store checks its own digest while reading: a corrupt object is a tampered one.
        if (/corrupt|digest/i.test(errorText(e))) throw rejected('digest-mismatch', `the bundle of ${where} is corrupt in the object store: ${errorText(e)}`, { key });
        throw e;
      }
      if (!bytes) throw rejected('bundle-missing', `the bundle of ${where} (sha256 ${descriptor.bundle.digest}) is not in the bundles store: publish it again`, { key });
      const digest = sha256Hex(bytes);
      if (digest !== descriptor.bundle.digest) {
        throw rejected('digest-mismatch', `the bundle of ${where} does not match its signed digest (got sha256 ${digest}, signed ${descriptor.bundle.digest}): it was altered after publishing; it was not loaded`, { key });
      }
      return bytes;
    };
    // Started now unless this digest is loaded (or loading) already.
    const downloading = bundles.has(descriptor.bundle.digest) ? undefined : download();
    downloading?.catch(() => undefined);
    await replayChecked;
    // Only now, with a trusted signature over this exact digest and the replay check passed, is the code run.
    let bundle = bundles.get(descriptor.bundle.digest);
    if (!bundle) {
      bundle = (downloading ?? download()).then(importBundle);
      bundles.set(descriptor.bundle.digest, bundle);
      bundle.catch(() => bundles.delete(descriptor.bundle.digest));
    }
    const loaded = await bundle;
    const status = ctx.types()[descriptor.type];
    if (!status) throw rejected('chain', `${where}: this node's service has no type '${descriptor.type}'`, { key });
    const known = status.known.includes(descriptor.to);
    const def = loaded.version(descriptor.type, descriptor.to);
    if (!known && !def) throw rejected('bundle-invalid', `the bundle of ${where} does not export ${where}`, { key });
    if (def && (def.previous ? def.previous.version !== descriptor.from : false)) {
      throw rejected('chain', `${where} in the bundle declares .from(version ${def.previous?.version}), but the descriptor says it upgrades from ${descriptor.from}`, { key });
    }
    const schedule = ctx.config.findSchedule(descriptor.schedule.name, descriptor.schedule.params, loaded.schedules);
    const [rollout, control] = await records;
    // What the watches delivered meanwhile stays: they deliver in write order,
    // and the lifecycle is told of anything newer than what it decided on
    // (`controlAt`, see lifecycles.ts).
    if (rollout && !ctx.rollouts.has(rollout.record.rolloutId)) ctx.rollouts.set(rollout.record.rolloutId, rollout.record);
    if (control && !ctx.controls.has(control.rolloutId)) ctx.controls.set(control.rolloutId, control);
    const r = rollout?.record;
    const rolledBack = control?.command === 'rollback' || (r !== undefined && rollbackStates.has(r.state));
    const reason = control?.reason ?? r?.reason;
    const by = control?.by ?? r?.by;
    return {
      descriptor,
      def: known ? undefined : def,
      fixDef: def,
      schedule,
      ...(control ? { controlAt: control.at } : {}),
      rollout: {
        done: r?.state === 'done',
        paused: control ? control.command === 'pause' : r?.state === 'paused',
        // A rollback ends the upgrade's lifecycle like an abort; the node's way back is in rollback.ts.
        aborted: control?.command === 'abort' || r?.state === 'aborted' || rolledBack,
        ...(rolledBack ? { reason: `rolled back${reason ? `: ${reason}` : ''}` } : reason ? { reason } : {}),
        ...(by ? { by } : {}),
      },
    };
  }

  /**
   * The first time this manager sees `key`: the newest of its earlier revisions
   * still in the bucket that a trusted key signed, so that a node started after
   * an old descriptor was put back refuses it too. Unsigned or untrusted ones
   * count for nothing (they could otherwise block every later upgrade).
   */
  async function rememberEarlier(key: string, revision: number, store: UpgradeStore): Promise<void> {
    for (const earlier of await store.earlierRevisions(key, revision)) {
      let d: UpgradeDescriptor;
      try {
        d = verifyDescriptor(key, earlier.value, { service: node.service, trustedKeys: ctx.config.trustedKeys });
      } catch {
        continue;
      }
      const seen = newest.get(key);
      if (!seen || d.createdAt > seen.createdAt) newest.set(key, { revision: earlier.revision, createdAt: d.createdAt, rolloutId: d.rolloutId, digest: d.bundle.digest });
    }
  }

  /** Refuses a descriptor older than one of the same key already verified here; else remembers it as the newest. */
  function checkNotReplayed(key: string, revision: number, d: UpgradeDescriptor): void {
    const seen = newest.get(key);
    const same = d.createdAt === seen?.createdAt && d.bundle.digest === seen.digest && d.rolloutId === seen.rolloutId;
    if (seen && revision > seen.revision && d.createdAt <= seen.createdAt && !same) {
      throw rejected(
        'replayed',
        `${key} was written again (revision ${revision}) with a descriptor published ${new Date(d.createdAt).toISOString()} (rollout ${d.rolloutId}, bundle sha256 ${d.bundle.digest.slice(0, 12)}…), ` +
          `not after the one this node already verified (published ${new Date(seen.createdAt).toISOString()}, rollout ${seen.rolloutId}, bundle sha256 ${seen.digest.slice(0, 12)}…): ` +
          `an older signed descriptor put back; it was not loaded and the node keeps its code. If it is a genuine new publish, the publisher's clock is behind: publish again`,
        { key, rolloutId: d.rolloutId },
      );
    }
    if (!seen || revision >= seen.revision) newest.set(key, { revision, createdAt: d.createdAt, rolloutId: d.rolloutId, digest: d.bundle.digest });
  }

  async function load(verified: Verified): Promise<void> {
    if (verified.def) {
      node.loadVersion(verified.def);
      return;
    }
    // A version rolled back on this node and now published again (a new
    // rollout of the same version): its new code replaces the old, and state
    // stamped with it is no longer carried down here — until this node
    // upgrades it answers "retry", like any node behind in a rollout.
    const d = verified.descriptor;
    const rolledBackFrom = ctx.types()[d.type]?.rolledBackFrom;
    if (!verified.rollout?.aborted && rolledBackFrom !== undefined && rolledBackFrom >= d.to && verified.fixDef) {
      node.loadVersion(verified.fixDef);
      ctx.internals.clearRollback(d.type);
      logger.info('rolled-back version published again', { type: d.type, version: d.to, rolloutId: d.rolloutId });
    }
  }

  return {
    verify,
    rejectionReason: (key) => rejectionReasons.get(key),
    load,
    loadedVersion: (v) => v.def ?? v.fixDef,
  };
}
