/**
 * The upgrade server's publishing side: turn a service module into a signed
 * upgrade — one bundle, and one descriptor (plus rollout record) per actor
 * type and version it adds to the chain recorded in the upgrades bucket.
 *
 * @module
 */
import { randomBytes } from 'node:crypto';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { existsSync } from 'node:fs';
import { ErrorCode, MoltError } from '../errors.ts';
import type { ServiceDefinition } from '../define/service.ts';
import type { AnyActorVersion } from '../define/version.ts';
import { resolveConnection, type NatsTarget } from '../nats/connect.ts';
import { systemClock, type Clock, type IdGenerator } from '../env.ts';
import { buildBundle, importBundle, sha256Hex } from './bundle.ts';
import { typecheckModule } from './typecheck.ts';
import { verifyForPublish } from '../verify/publish.ts';
import { ensureTypeScriptLoader } from '../optional-packages.ts';
import { descriptorKey, DESCRIPTOR_FORMAT, parseSignedDescriptor, signDescriptor, type UpgradeDescriptor } from './descriptor.ts';
import { keyFingerprint, type Signer } from './keys.ts';
import { openUpgradeStore, type UpgradeStore } from './store.ts';
import { openUdb, type Udb } from '../udb/index.ts';
import { resolveSchedule } from '../../actors/schedules/index.ts';

/** Options of {@link publishUpgrade}. */
export interface PublishOptions {
  nats: NatsTarget;
  /** Path of the service module to publish (the module nodes run, with the new versions added). */
  module: string;
  /** Signs the descriptors (see `loadSeedFile`). */
  signer: Signer;
  /** Scheduling function and its parameters (default `immediate`). */
  schedule?: { name: string; params?: Record<string, unknown> };
  /**
   * Exactly which version to publish per type (`{ counter: 3 }`); default:
   * every version of every type newer than the last one published.
   */
  versions?: Record<string, number>;
  /**
   * Start the rollouts paused: nodes load the upgrade (serving its callers)
   * but none upgrades until `molt resume`. With `fix`: the rollout is paused
   * before the fix is written, so no node upgrades to the fixed code until
   * `molt resume` (nodes already at the version load it at once: it is their
   * code). A fix of a rollout that is already done is refused with `paused`.
   */
  paused?: boolean;
  /**
   * Replace the code of already-published versions (named in `versions`)
   * instead of adding new ones: same rollout, same schedule, new bundle. Nodes
   * load it in place of the old one; actors whose transform failed are retried
   * with the new one. The versions' messages must not change.
   */
  fix?: boolean;
  /** Build, check and report, but write nothing. */
  dryRun?: boolean;
  /**
   * Type-check the module's project first (see runtime/server/typecheck.ts)
   * and refuse, with the compiler's diagnostics, if it does not type-check.
   * Default false here; `molt publish` checks unless given `--no-typecheck`.
   */
  typecheck?: boolean;
  /**
   * Check the rules of every upgrade into the versions published (see
   * runtime/verify/) and refuse, with the counterexamples, if one breaks.
   * `false` skips it and says so in the descriptors and rollout records
   * (`unverified`); unset (the default here) skips it without a word.
   * `molt publish` checks unless given `--no-verify`.
   */
  verify?: boolean;
  /**
   * Publish even when no live node trusts the signing key (see
   * {@link PublishResult.warnings}); without it such a publish is refused,
   * because every node would refuse the upgrade and the rollout would never start.
   */
  force?: boolean;
  replicas?: number;
  clock?: Clock;
  /** Where the rollout id's unique part comes from (default: random); tests give a fixed one. */
  ids?: IdGenerator;
}

/** What was published. */
export interface PublishResult {
  service: string;
  bundle: { digest: string; size: number };
  upgrades: UpgradeDescriptor[];
  /** What the publisher should know but did not stop the publish (e.g. live nodes that do not trust its key). */
  warnings: string[];
  /** Rollouts whose descriptor was signed again with the same bundle (a fix with unchanged code and another key). */
  resigned: string[];
}

/**
 * A node record whose heartbeat is this recent (by the publisher's clock) is
 * counted as live by the trust check: generous, because the publisher does
 * not know the nodes' lease and its clock may differ from theirs.
 */
const TRUST_CHECK_LIVE_MS = 30_000;

/**
 * Checks the signing key against the keys the live nodes hosting `types` say
 * they trust (`trusts` in their records: fingerprints). Nodes that do not say
 * (started without `molt node`, or by an older Molt) are not judged. Returns
 * the warnings to give; throws `OperationRefused` when nodes said and none of
 * them trusts the key, unless `force`.
 */
async function trustCheck(udb: Udb, types: readonly string[], signer: Signer, force: boolean, clock: Clock): Promise<string[]> {
  const now = clock.now();
  const fingerprint = keyFingerprint(signer.publicKey);
  const live = (await udb.nodes()).filter((n) => n.status !== 'stopped' && now - n.heartbeatAt <= TRUST_CHECK_LIVE_MS && types.some((t) => t in n.versions));
  const saying = live.filter((n) => Array.isArray(n.trusts));
  const untrusting = saying.filter((n) => !n.trusts!.includes(fingerprint)).sort((a, b) => (a.id < b.id ? -1 : 1));
  if (untrusting.length === 0) return [];
  const trustedThere = untrusting.map((n) => `${n.id} trusts ${n.trusts!.length ? n.trusts!.join(', ') : 'no key'}`).join('; ');
  const what =
    `${untrusting.length === saying.length ? 'no live node trusts' : `${untrusting.length} of ${saying.length} live nodes do not trust`} the key that signs this upgrade ` +
    `(${signer.publicKey}, fingerprint ${fingerprint}): ${trustedThere}. They would refuse the upgrade (untrusted-key)`;
  const fix = `sign with a key they trust (--key), or restart them with --trust ${signer.publicKey}`;
  if (untrusting.length === saying.length && !force) {
    throw new MoltError(ErrorCode.OperationRefused, `${what}, so its rollout would never start: ${fix}; or pass --force to publish anyway`, {
      data: { publisher: signer.publicKey, fingerprint, nodes: untrusting.map((n) => n.id) },
    });
  }
  return [`${what}: ${fix}`];
}

/** An error's message on one line (a syntax error's message spans several), for the CLI's one `molt: …` line. */
function oneLine(e: unknown): string {
  const text = e instanceof Error ? e.message : String(e);
  const line = text.replace(/\s*\n\s*/g, ' ').trim();
  return line.length > 600 ? `${line.slice(0, 600)}…` : line;
}

async function loadService(path: string): Promise<ServiceDefinition> {
  const file = resolve(path);
  if (!existsSync(file)) throw new MoltError(ErrorCode.InvalidDefinition, `no module at ${file}: pass the service module to publish (the one your nodes run, with the new versions added)`);
  await ensureTypeScriptLoader(file);
  let mod: Record<string, unknown>;
  try {
    mod = (await import(pathToFileURL(file).href)) as Record<string, unknown>;
  } catch (e) {
    // A syntax error, or code that throws when the module is imported: nothing was published.
    // tsx reports a TypeScript syntax error as esbuild's TransformError, Node a JavaScript one as SyntaxError.
    const syntax = e instanceof SyntaxError || (e as Error | undefined)?.name === 'TransformError';
    throw new MoltError(ErrorCode.InvalidDefinition, `cannot load ${path} (${syntax ? 'a syntax error' : 'it failed while being imported'}); nothing was published: ${oneLine(e)}`, { cause: e });
  }
  const candidate = (mod.default ?? mod.service) as ServiceDefinition | undefined;
  if (!candidate || typeof candidate.name !== 'string' || !Array.isArray(candidate.types)) {
    throw new MoltError(ErrorCode.InvalidDefinition, `${path} does not export a service: \`export default defineService('name', [types])\`, listing every version of each type (old ones too)`);
  }
  return candidate;
}

/** One published descriptor, as the chain rule needs it. */
interface Published {
  to: number;
  rolloutId: string;
  publisher: string;
  digest: string;
  /** Its signed `createdAt`: a descriptor replacing it must be later (nodes refuse an older one as a replay). */
  createdAt: number;
  /** KV revision of the descriptor (a re-publish after a rollback replaces it with compare-and-set). */
  revision: number;
}

/** The chain as recorded: every published version per type, by version. */
async function recordedChain(store: Pick<UpgradeStore, 'list'>): Promise<Map<string, Map<number, Published>>> {
  const chains = new Map<string, Map<number, Published>>();
  for (const entry of await store.list()) {
    let d: UpgradeDescriptor;
    try {
      d = parseSignedDescriptor(entry.key, entry.value).descriptor;
    } catch (e) {
      throw new MoltError(ErrorCode.OperationRefused, `the upgrades bucket holds an unreadable entry ${entry.key} (${(e as Error).message}); nobody but a publisher should write there — inspect it and delete it before publishing`);
    }
    let chain = chains.get(d.type);
    if (!chain) chains.set(d.type, (chain = new Map()));
    chain.set(d.to, { to: d.to, rolloutId: d.rolloutId, publisher: d.publisher, digest: d.bundle.digest, createdAt: d.createdAt, revision: entry.revision });
  }
  return chains;
}

/** A planned (type, version); `replaces` is set when it publishes a rolled-back version again. */
interface Target {
  type: string;
  to: number;
  replaces?: Published;
}

/**
 * Plans which (type, version) pairs a publish adds, refusing anything that
 * does not extend the chain. Versions rolled back (`molt rollback`) are off
 * the chain: it stands at the highest version not rolled back, so the next
 * publish of the type publishes the rolled-back version again, as a new
 * rollout.
 */
async function plan(service: ServiceDefinition, store: Pick<UpgradeStore, 'list'>, udb: Udb, wanted: Record<string, number> | undefined): Promise<Target[]> {
  const chains = await recordedChain(store);
  const nodes = await udb.nodes();
  const rollouts = new Map((await udb.rollouts()).map((r) => [r.rolloutId, r]));
  const types = new Map(service.types.map((t) => [t.name, t]));
  for (const name of Object.keys(wanted ?? {})) {
    if (!types.has(name)) throw new MoltError(ErrorCode.OperationRefused, `--version ${name}=…: service '${service.name}' has no type '${name}' (it has ${[...types.keys()].join(', ')})`);
  }
  const out: Target[] = [];
  for (const t of service.types) {
    if (wanted && !(t.name in wanted)) continue;
    const newest = t.versions[t.versions.length - 1]!.version;
    const chain = chains.get(t.name) ?? new Map<number, Published>();
    let headTo = chain.size > 0 ? Math.max(...chain.keys()) : undefined;
    // Rolled-back versions are off the chain (from the top down: a rollback runs the chain downward).
    for (;;) {
      if (headTo === undefined) break;
      const rollout = rollouts.get(chain.get(headTo)!.rolloutId);
      if (rollout?.state === 'rolling-back') {
        throw new MoltError(ErrorCode.OperationRefused, `rollout ${rollout.rolloutId} (${t.name}@${rollout.to}) is rolling back: wait until \`molt status\` shows it rolled back, then publish ${t.name}@${rollout.to} again`);
      }
      if (rollout?.state !== 'rolled-back') break;
      headTo = chain.has(headTo - 1) ? headTo - 1 : undefined;
      if (headTo === undefined) break;
    }
    const rolledBackTop = chain.size > 0 ? Math.max(...chain.keys()) : undefined;
    const head = headTo !== undefined ? chain.get(headTo) : undefined;
    const running = nodes.map((n) => n.versions[t.name]).filter((v): v is number => typeof v === 'number');
    // Where the chain stands: the last published version not rolled back, else (everything
    // published was rolled back) the version below the lowest of those, else what nodes run, else 1.
    const lowestRolledBack = head === undefined && chain.size > 0 ? Math.min(...chain.keys()) : undefined;
    const base = head?.to ?? (lowestRolledBack !== undefined ? lowestRolledBack - 1 : running.length > 0 ? Math.max(...running) : 1);
    const headRollout = head ? rollouts.get(head.rolloutId) : undefined;
    const targets: number[] = [];
    if (wanted) {
      const v = wanted[t.name]!;
      if (v <= base) {
        throw new MoltError(ErrorCode.OperationRefused, `${t.name}@${v} is already ${head ? `published (rollout ${head.rolloutId})` : 'running'}; the chain is at ${t.name}@${base}, so the next upgrade is ${base + 1}`);
      }
      if (v !== base + 1) {
        throw new MoltError(ErrorCode.OperationRefused, `${t.name}@${v} does not extend the chain: the last ${head ? 'published' : 'running'} version is ${base}, so publish ${t.name}@${base + 1} first`);
      }
      if (v > newest) throw new MoltError(ErrorCode.OperationRefused, `the module has no ${t.name}@${v} (its newest is ${newest}); add it with \`molt version add ${t.name}\``);
      targets.push(v);
    } else {
      if (newest < base) {
        throw new MoltError(ErrorCode.OperationRefused, `the module's newest ${t.name} is version ${newest}, but the chain is already at ${base}: publish from an up-to-date module`);
      }
      for (let v = base + 1; v <= newest; v++) targets.push(v);
    }
    if (targets.length > 0 && headRollout?.state === 'aborted') {
      throw new MoltError(ErrorCode.OperationRefused, `rollout ${headRollout.rolloutId} (${t.name}@${headRollout.to}) was aborted: nodes are split between versions ${headRollout.from} and ${headRollout.to}, so no later version can be published on top of it. See docs/publishing.md, "After an abort".`);
    }
    for (const to of targets) {
      const replaces = rolledBackTop !== undefined && to <= rolledBackTop ? chain.get(to) : undefined;
      out.push({ type: t.name, to, ...(replaces ? { replaces } : {}) });
    }
  }
  if (out.length === 0) {
    const at = service.types.map((t) => {
      const chain = chains.get(t.name);
      return `${t.name}@${chain && chain.size > 0 ? Math.max(...chain.keys()) : t.versions[t.versions.length - 1]!.version}`;
    }).join(', ');
    throw new MoltError(ErrorCode.OperationRefused, `nothing to publish: the chain is already at ${at}. Add a version first (\`molt version add <type>\`)`);
  }
  return out;
}

/** A rollout id: the type and version it rolls out, and a unique part (a republish of the same version gets a new one). */
function rolloutIdFor(type: string, to: number, ids: IdGenerator): string {
  return `${type}-v${to}-${ids.next()}`;
}

/** Six hex digits of randomness per id: rollout ids stay short enough to type. */
const randomIds: IdGenerator = { next: () => randomBytes(3).toString('hex') };

/**
 * Publishes the new versions of a service module: builds the bundle, stores
 * it, and writes one signed descriptor and one rollout record per new
 * (type, version). Refuses, saying why, anything that does not extend the
 * chain recorded in the upgrades bucket.
 */
export async function publishUpgrade(options: PublishOptions): Promise<PublishResult> {
  const clock = options.clock ?? systemClock;
  if (!existsSync(resolve(options.module))) await loadService(options.module); // says "no module at …"
  if (options.typecheck) await typecheckModule(options.module);
  const service = await loadService(options.module);
  const schedule = { name: options.schedule?.name ?? 'immediate', params: options.schedule?.params ?? {} };
  const bytes = await buildBundle(options.module);
  const digest = sha256Hex(bytes);

  const { nc, owned } = await resolveConnection(options.nats);
  try {
    if (options.fix) return await publishFix(options, service, bytes, digest, nc, clock);
    // A dry run creates nothing: with no upgrades bucket yet, the recorded chain is empty.
    const store = await openUpgradeStore(nc, service.name, { create: !options.dryRun, replicas: options.replicas });
    const udb = await openUdb(nc, service.name, { replicas: options.replicas });
    const targets = await plan(service, store ?? emptyStore, udb, options.versions);
    if (options.verify) await verifyForPublish(options.module, service, targets);
    const unverified = options.verify === false ? { unverified: true as const } : {};
    const warnings = await trustCheck(udb, [...new Set(targets.map((t) => t.type))], options.signer, options.force === true, clock);

    // The bundle must offer every version we announce, built against the shared runtime.
    const loaded = await importBundle(bytes);
    for (const { type, to, replaces } of targets) {
      const def = loaded.version(type, to);
      if (!def) {
        throw new MoltError(ErrorCode.InvalidDefinition, `the bundle of ${options.module} does not export ${type}@${to}: export the service (default export) or \`export const upgrades = [...]\``);
      }
      // Nodes rolled back still hold the old code of this version (serving its
      // callers through its future SO), and actors they did not load since
      // still hold state it wrote: the new code must keep its messages.
      if (replaces && store) await checkSameMessages(store, replaces.digest, def, `${type}@${to} was rolled back; publishing it again`);
    }
    // The same resolution nodes will do: unknown names and bad parameters are refused here, not on every node.
    try {
      resolveSchedule(schedule.name, schedule.params, { custom: loaded.schedules });
    } catch (e) {
      throw new MoltError(ErrorCode.OperationRefused, `cannot publish with this schedule: ${(e as Error).message}`, { cause: e });
    }

    const now = clock.now();
    const replacing = new Map(targets.filter((t) => t.replaces).map((t) => [`${t.type}@${t.to}`, t.replaces!]));
    const descriptors: UpgradeDescriptor[] = targets.map(({ type, to, replaces }) => ({
      format: DESCRIPTOR_FORMAT,
      service: service.name,
      type,
      from: to - 1,
      to,
      bundle: { digest, size: bytes.length },
      schedule,
      publisher: options.signer.publicKey,
      // Later than the descriptor it replaces even if this clock is behind the last publisher's: nodes refuse an older one as a replay.
      createdAt: replaces ? Math.max(now, replaces.createdAt + 1) : now,
      rolloutId: rolloutIdFor(type, to, options.ids ?? randomIds),
      ...unverified,
    }));
    if (options.dryRun || !store) return { service: service.name, bundle: { digest, size: bytes.length }, upgrades: descriptors, warnings, resigned: [] };

    await store.putBundle(bytes);
    for (const d of descriptors) {
      // Rollout record (and pause) first, so no node sees the descriptor without them.
      await udb.createRollout({
        rolloutId: d.rolloutId,
        service: d.service,
        type: d.type,
        from: d.from,
        to: d.to,
        schedule: d.schedule,
        publisher: d.publisher,
        state: options.paused ? 'paused' : 'running',
        counts: {},
        startedAt: now,
        updatedAt: now,
        ...(options.paused ? { reason: PUBLISHED_PAUSED, by: PAUSED_BY_PUBLISHER } : {}),
        ...unverified,
      });
      if (options.paused) await udb.setControl({ rolloutId: d.rolloutId, command: 'pause', reason: PUBLISHED_PAUSED, by: PAUSED_BY_PUBLISHER, at: now });
      const signed = signDescriptor(d, options.signer);
      const replaces = replacing.get(`${d.type}@${d.to}`);
      try {
        // A rolled-back version published again replaces its descriptor (compare-and-set), under a new rollout.
        if (replaces) await store.descriptors.update(descriptorKey(d.type, d.to), JSON.stringify(signed), replaces.revision);
        else await store.descriptors.create(descriptorKey(d.type, d.to), JSON.stringify(signed));
      } catch (e) {
        await udb.kv.delete(`rollouts.${d.rolloutId}`).catch(() => undefined);
        throw new MoltError(ErrorCode.OperationRefused, `${d.type}@${d.to} was published by someone else a moment ago (${(e as Error).message}); run \`molt status\` and publish the next version`, { cause: e });
      }
    }
    return { service: service.name, bundle: { digest, size: bytes.length }, upgrades: descriptors, warnings, resigned: [] };
  } finally {
    if (owned) await nc.drain().catch(() => undefined);
  }
}

const emptyStore: Pick<UpgradeStore, 'list'> = { list: async () => [] };

/** Who and why, in the rollout and control records of a rollout published paused. */
const PAUSED_BY_PUBLISHER = 'the publisher';
const PUBLISHED_PAUSED = 'published paused: nodes load the upgrade and hold until `molt resume`';

/** Refuses new code for a published version whose messages differ from the published code's. */
async function checkSameMessages(store: UpgradeStore, oldDigest: string, def: AnyActorVersion, what: string): Promise<void> {
  const oldBytes = await store.getBundle(oldDigest);
  if (!oldBytes || sha256Hex(oldBytes) !== oldDigest) return;
  const oldDef = (await importBundle(oldBytes)).version(def.type, def.version);
  if (!oldDef) return;
  const names = (m: object) => Object.keys(m).sort().join(', ');
  if (names(oldDef.messages) !== names(def.messages)) {
    throw new MoltError(ErrorCode.OperationRefused, `${what} may change its code, not its messages (published: ${names(oldDef.messages)}; now: ${names(def.messages)}): rolled-back nodes still serve callers of the published interface through its future SO`);
  }
}

/** `publishUpgrade` with `fix`: new code for versions already published. */
async function publishFix(
  options: PublishOptions,
  service: ServiceDefinition,
  bytes: Uint8Array,
  digest: string,
  nc: Parameters<typeof openUpgradeStore>[0],
  clock: Clock,
): Promise<PublishResult> {
  const wanted = options.versions ?? {};
  if (Object.keys(wanted).length === 0) {
    throw new MoltError(ErrorCode.OperationRefused, 'a fix replaces a published version: name it with --version <type>=<version> (e.g. --fix --version counter=2)');
  }
  const store = await openUpgradeStore(nc, service.name, { create: false });
  if (!store) throw new MoltError(ErrorCode.OperationRefused, `nothing was ever published for service '${service.name}': there is nothing to fix`);
  const udb = await openUdb(nc, service.name, { replicas: options.replicas });
  const warnings = await trustCheck(udb, Object.keys(wanted), options.signer, options.force === true, clock);
  if (options.verify) await verifyForPublish(options.module, service, Object.entries(wanted).map(([type, to]) => ({ type, to })));
  const loaded = await importBundle(bytes);
  const out: UpgradeDescriptor[] = [];
  const resigned: string[] = [];
  const writes: Array<() => Promise<unknown>> = [];
  for (const [type, to] of Object.entries(wanted)) {
    const key = descriptorKey(type, to);
    const entry = await store.descriptors.get(key);
    if (!entry || entry.operation !== 'PUT') {
      throw new MoltError(ErrorCode.OperationRefused, `${type}@${to} was never published, so there is nothing to fix: publish it without --fix`);
    }
    const old = parseSignedDescriptor(key, entry.value).descriptor;
    const rollout = (await udb.rollout(old.rolloutId))?.record;
    if (rollout?.state === 'aborted') {
      throw new MoltError(ErrorCode.OperationRefused, `rollout ${old.rolloutId} (${type}@${to}) was aborted; an abort is final, a fix cannot revive it`);
    }
    if (rollout?.state === 'rolling-back' || rollout?.state === 'rolled-back') {
      throw new MoltError(ErrorCode.OperationRefused, `rollout ${old.rolloutId} (${type}@${to}) was rolled back; publish ${type}@${to} again without --fix (a new rollout)${rollout.state === 'rolling-back' ? ' once the rollback is over' : ''}`);
    }
    if (options.paused && rollout?.state === 'done') {
      throw new MoltError(ErrorCode.OperationRefused, `--paused: rollout ${old.rolloutId} (${type}@${to}) is already done — every live node runs ${type}@${to}, so there is no upgrade left to hold. Publish the fix without --paused: nodes load it at once`);
    }
    const def = loaded.version(type, to);
    if (!def) throw new MoltError(ErrorCode.OperationRefused, `the module has no ${type}@${to} to replace the published one with`);
    // The same bundle under another key is a re-signature (e.g. the first publish used a key no node trusts).
    if (old.bundle.digest === digest && old.publisher === options.signer.publicKey) {
      throw new MoltError(ErrorCode.OperationRefused, `${type}@${to} is already published with exactly this bundle, signed by this key: nothing changed. To sign it with another key, pass that key's seed with --key`);
    }
    const oldBytes = await store.getBundle(old.bundle.digest);
    const oldDef = oldBytes && sha256Hex(oldBytes) === old.bundle.digest ? (await importBundle(oldBytes)).version(type, to) : undefined;
    if (oldDef) {
      const names = (m: object) => Object.keys(m).sort().join(', ');
      if (names(oldDef.messages) !== names(def.messages)) {
        throw new MoltError(ErrorCode.OperationRefused, `a fix may change ${type}@${to}'s transform and simulation objects, not its messages (published: ${names(oldDef.messages)}; now: ${names(def.messages)}): publish a new version instead`);
      }
    }
    const { replaces: _previous, unverified: wasUnverified, ...unchanged } = old;
    const resign = old.bundle.digest === digest;
    const d: UpgradeDescriptor = {
      ...unchanged,
      // Checked now, it is verified; skipped now (or unset, as before), it says so.
      ...(options.verify === false || (options.verify === undefined && wasUnverified) ? { unverified: true as const } : {}),
      bundle: { digest, size: bytes.length },
      publisher: options.signer.publicKey,
      createdAt: Math.max(clock.now(), old.createdAt + 1),
      ...(resign ? (old.replaces ? { replaces: old.replaces } : {}) : { replaces: old.bundle.digest }),
    };
    out.push(d);
    if (resign) resigned.push(d.rolloutId);
    const revision = entry.revision;
    writes.push(() => store.descriptors.update(key, JSON.stringify(signDescriptor(d, options.signer)), revision));
  }
  if (!options.dryRun) {
    await store.putBundle(bytes);
    // Paused before the fix is written, as a publish --paused is: no node sees the fixed code on a running rollout.
    if (options.paused) for (const d of out) await pauseForFix(udb, d.rolloutId, clock.now());
    for (const write of writes) {
      try {
        await write();
      } catch (e) {
        throw new MoltError(ErrorCode.OperationRefused, `the descriptor changed while fixing it (${(e as Error).message}); run \`molt status\` and try again`, { cause: e });
      }
    }
  }
  return { service: service.name, bundle: { digest, size: bytes.length }, upgrades: out, warnings, resigned };
}

/** Pauses a rollout for a fix published with `paused` (control record first: nodes act on it). */
async function pauseForFix(udb: Udb, rolloutId: string, now: number): Promise<void> {
  const reason = 'fix published paused: nodes load the fixed code and hold until `molt resume`';
  await udb.setControl({ rolloutId, command: 'pause', reason, by: PAUSED_BY_PUBLISHER, at: now });
  await udb.updateRollout(rolloutId, (r) => (r.state === 'running' || r.state === 'paused' ? { ...r, state: 'paused', reason, by: PAUSED_BY_PUBLISHER, updatedAt: now } : undefined));
}
