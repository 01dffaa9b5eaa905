/**
 * Operator control of rollouts and versions, as
 * `molt pause|resume|abort <rollout>`, `molt retire <type> <version>`,
 * `molt rollback <rollout>` and the dashboard's buttons run it. Each writes the UDB's control records (which
 * every node's upgrade manager follows) and says what it did. Like the
 * others, a rollback is an operator record, not a signed one: who may write
 * control records is set by NATS permissions (docs/permissions.md), and a
 * rollback only ever runs code a trusted publisher signed (the `down` of the
 * bundle the nodes already verified).
 *
 * A rollout is named by its id (`counter-v2-3f9a1c`), by `<type>@<version>`
 * (`counter@2`) or by a unique prefix of its id.
 *
 * @module
 */
import { userInfo, hostname } from 'node:os';
import { ErrorCode, MoltError } from '../errors.ts';
import { rollbackStates, type Udb, type RolloutRecord, type ControlCommand } from '../udb/index.ts';
import { openUpgradeStore } from '../server/store.ts';
import { descriptorKey, parseSignedDescriptor } from '../server/descriptor.ts';
import { importBundle, sha256Hex } from '../server/bundle.ts';

/** Who acts, as control records name them: the local user at this host. */
export function who(): string {
  try {
    return `${userInfo().username}@${hostname()}`;
  } catch {
    return `cli@${hostname()}`;
  }
}

/** Finds a rollout by id, `<type>@<version>` or unique id prefix. */
export async function findRollout(udb: Udb, name: string): Promise<RolloutRecord> {
  const all = await udb.rollouts();
  const at = /^([a-z][a-z0-9-]*)@([1-9][0-9]*)$/.exec(name);
  const matches = all.filter((r) => r.rolloutId === name || (at ? r.type === at[1] && r.to === Number(at[2]) : r.rolloutId.startsWith(name)));
  const exact = matches.find((r) => r.rolloutId === name);
  if (exact) return exact;
  if (matches.length === 1) return matches[0]!;
  // `counter@2` published again after a rollback names the latest of its rollouts.
  if (at && matches.length > 1) return matches.reduce((a, b) => (b.startedAt > a.startedAt ? b : a));
  if (matches.length === 0) {
    const known = all.map((r) => `${r.rolloutId} (${r.type}@${r.to}, ${r.state})`).join(', ') || 'none';
    throw new MoltError(ErrorCode.OperationRefused, `no rollout '${name}' in service '${udb.service}'; rollouts: ${known}`);
  }
  throw new MoltError(ErrorCode.OperationRefused, `'${name}' matches several rollouts (${matches.map((r) => r.rolloutId).join(', ')}): give the full id`);
}

/** Applies an operator command to a rollout: control record first (managers act on it), then the rollout's state. */
export async function controlRollout(udb: Udb, name: string, command: Exclude<ControlCommand, 'rollback'>, reason?: string, by = who()): Promise<{ rollout: RolloutRecord; message: string }> {
  const rollout = await findRollout(udb, name);
  const id = rollout.rolloutId;
  if (rollbackStates.has(rollout.state)) {
    throw new MoltError(ErrorCode.OperationRefused, `rollout ${id} was rolled back${rollout.state === 'rolling-back' ? ' (in progress)' : ''}: nodes return to ${rollout.type}@${rollout.from}; a rollback is final. To try ${rollout.type}@${rollout.to} again, publish it again`);
  }
  if (rollout.state === 'done') {
    throw new MoltError(ErrorCode.OperationRefused, `rollout ${id} is already done: every live node runs ${rollout.type}@${rollout.to}${command === 'abort' ? '. To go back, see `molt rollback`' : ''}`);
  }
  if (rollout.state === 'aborted') {
    if (command === 'abort') return { rollout, message: `rollout ${id} was already aborted` };
    throw new MoltError(ErrorCode.OperationRefused, `rollout ${id} was aborted${rollout.reason ? ` (${rollout.reason})` : ''}; an abort is final`);
  }
  const now = Date.now();
  const control = () => udb.setControl({ rolloutId: id, command, ...(reason ? { reason } : {}), by, at: now });
  const state = () =>
    udb.updateRollout(id, (r) => {
      if (r.state === 'done' || r.state === 'aborted' || rollbackStates.has(r.state)) return undefined;
      switch (command) {
        case 'pause':
          return { ...r, state: 'paused', reason: reason ?? `paused by ${by}`, by, updatedAt: now };
        case 'resume': {
          const { reason: _old, by: _oldBy, ...rest } = r;
          return { ...rest, state: 'running', updatedAt: now };
        }
        case 'abort':
          return { ...r, state: 'aborted', reason: reason ?? `aborted by ${by}`, by, endedAt: now, updatedAt: now };
      }
    });
  // Pause and abort: the command first, so nodes stop as soon as possible. Resume: the
  // state first, so that a health gate halting the rollout again at once (its SFs act
  // on the command) records its halt after this, not under it.
  let updated: RolloutRecord | undefined;
  if (command === 'resume') {
    updated = await state();
    await control();
  } else {
    await control();
    updated = await state();
  }
  const final = updated ?? rollout;
  const what = { pause: 'paused: no node upgrades until `molt resume`', resume: 'resumed', abort: 'aborted: no further node upgrades; upgraded nodes stay upgraded' }[command];
  if (final.state === 'done') return { rollout: final, message: `rollout ${id} finished before the ${command} took effect` };
  return { rollout: final, message: `rollout ${id} (${rollout.type} ${rollout.from}→${rollout.to}) ${what}` };
}

/** Retires a version of a type on every node, refusing while a live node still runs it natively. */
export async function retireVersion(udb: Udb, type: string, version: number, by = who()): Promise<string> {
  const nodes = await udb.nodes();
  const now = Date.now();
  const hosting = nodes.filter((n) => n.status !== 'stopped' && typeof n.versions[type] === 'number');
  if (nodes.length > 0 && hosting.length === 0 && !nodes.some((n) => type in n.versions)) {
    throw new MoltError(ErrorCode.OperationRefused, `service '${udb.service}' has no type '${type}'`);
  }
  const behind = hosting.filter((n) => n.versions[type]! <= version && now - n.heartbeatAt < 60_000).sort((a, b) => (a.id < b.id ? -1 : 1));
  if (behind.length > 0) {
    throw new MoltError(
      ErrorCode.OperationRefused,
      `cannot retire ${type}@${version}: ${behind.map((n) => `${n.id} runs ${type}@${n.versions[type]}`).join(', ')}. A node never retires the version it runs; wait until every node runs ${type}@${version + 1} or later`,
    );
  }
  await udb.retire({ type, version, by, at: now });
  return `retired ${type}@${version}: nodes drop its simulation objects and its callers get VersionRetired`;
}

/**
 * Why a rollout cannot be rolled back, or undefined if it can: its upgrade must
 * declare a `down` transform (read from its signed bundle, checked against its
 * digest), it must still be the rollout its descriptor names (not replaced by a
 * later publish of the same version), and every later rollout of the type must
 * have been rolled back first (the chain runs downward one step at a time).
 */
export async function rollbackRefusal(udb: Udb, nc: Parameters<typeof openUpgradeStore>[0], name: string): Promise<MoltError | undefined> {
  const rollout = await findRollout(udb, name);
  return refusalFor(udb, nc, rollout);
}

async function refusalFor(udb: Udb, nc: Parameters<typeof openUpgradeStore>[0], rollout: RolloutRecord): Promise<MoltError | undefined> {
  const where = `${rollout.type}@${rollout.to}`;
  const id = rollout.rolloutId;
  const refuse = (message: string, reason: string) => new MoltError(ErrorCode.OperationRefused, `cannot roll back ${id}: ${message}`, { data: { rolloutId: id, reason } });
  const later = (await udb.rollouts()).filter((r) => r.type === rollout.type && r.rolloutId !== id && (r.to > rollout.to || (r.to === rollout.to && r.startedAt > rollout.startedAt)));
  const replaced = later.find((r) => r.to === rollout.to);
  if (replaced) return refuse(`${where} was published again since (rollout ${replaced.rolloutId}); roll that one back instead`, 'superseded');
  const above = later.filter((r) => r.state !== 'rolled-back').sort((a, b) => b.to - a.to);
  if (above.length > 0) {
    const top = above[0]!;
    return refuse(`${top.type}@${top.to} (rollout ${top.rolloutId}, ${top.state}) is published on top of it; roll back from the top of the chain down: \`molt rollback ${top.rolloutId}\` first`, 'not-newest');
  }
  const store = await openUpgradeStore(nc, udb.service, { create: false });
  const entry = store ? await store.descriptors.get(descriptorKey(rollout.type, rollout.to)) : null;
  if (!store || !entry || entry.operation !== 'PUT') {
    return refuse(`its descriptor (${descriptorKey(rollout.type, rollout.to)}) is gone, so its code cannot be read`, 'descriptor-missing');
  }
  const { descriptor } = parseSignedDescriptor(entry.key, entry.value);
  if (descriptor.rolloutId !== id) return refuse(`${descriptorKey(rollout.type, rollout.to)} now belongs to rollout ${descriptor.rolloutId}`, 'superseded');
  const bytes = await store.getBundle(descriptor.bundle.digest);
  if (!bytes || sha256Hex(bytes) !== descriptor.bundle.digest) return refuse('its bundle is missing or does not match its digest', 'bundle-invalid');
  const def = (await importBundle(bytes)).version(rollout.type, rollout.to);
  if (!def?.upgrade?.down) {
    return new MoltError(
      ErrorCode.OperationRefused,
      `cannot roll back ${id}: ${where} declares no down transform (\`.from(v${rollout.from}, { down })\`), so state written by version ${rollout.to} cannot be carried back to ${rollout.from}. ` +
        (rollout.state === 'done' ? `Publish a version ${rollout.to + 1} that undoes the change instead.` : `Abort the rollout (\`molt abort ${id}\`) to stop it where it is, or publish a version ${rollout.to + 1} that undoes the change.`),
      { data: { rolloutId: id, reason: 'no-down-transform' } },
    );
  }
  return undefined;
}

/**
 * `molt rollback`: carries every node of a rollout back to its `from` version.
 * Refused, saying why, unless the upgrade declares `down` (see
 * {@link rollbackRefusal}). Writes the `rollback` control record (every node's
 * upgrade manager acts on it: nodes at `to` roll back in place, nodes at `from`
 * stop upgrading and carry state written at `to` down when they load it), then
 * marks the rollout `rolling-back`; the managers mark it `rolled-back` once
 * every live node runs `from`.
 */
export async function rollbackRollout(
  udb: Udb,
  nc: Parameters<typeof openUpgradeStore>[0],
  name: string,
  reason?: string,
  by = who(),
): Promise<{ rollout: RolloutRecord; message: string }> {
  const rollout = await findRollout(udb, name);
  const id = rollout.rolloutId;
  if (rollout.state === 'rolled-back') return { rollout, message: `rollout ${id} was already rolled back: every node runs ${rollout.type}@${rollout.from}` };
  if (rollout.state === 'rolling-back') return { rollout, message: `rollout ${id} is already rolling back to ${rollout.type}@${rollout.from}` };
  const refusal = await refusalFor(udb, nc, rollout);
  if (refusal) throw refusal;
  const now = Date.now();
  const why = reason ?? `rolled back by ${by}`;
  await udb.setControl({ rolloutId: id, command: 'rollback', reason: why, by, at: now });
  const updated = await udb.updateRollout(id, (r) => (rollbackStates.has(r.state) ? undefined : { ...r, state: 'rolling-back', reason: why, by, updatedAt: now }));
  return {
    rollout: updated ?? rollout,
    message: `rollout ${id} (${rollout.type} ${rollout.from}→${rollout.to}) rolling back: every node returns to ${rollout.type}@${rollout.from} (\`molt status\` shows when it is rolled back)`,
  };
}
