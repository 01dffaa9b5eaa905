/**
 * The JetStream buckets of a service, made in one place with the settings
 * Molt relies on, and opened everywhere else:
 *
 * | bucket | kind | history | what |
 * |---|---|---|---|
 * | `molt_<service>_state` | KV | 1 | actor state, one key per actor |
 * | `molt_<service>_udb` | KV | 5 | the upgrade database |
 * | `molt_<service>_upgrades` | KV | 10 | signed upgrade descriptors |
 * | `molt_<service>_bundles` | Object Store | — | upgrade bundles |
 *
 * Why an operator step: creating or changing a stream is what let a node plant
 * an upgrade descriptor (a stream whose RePublish wrote into the upgrades
 * bucket), so under docs/permissions.md only the operator may — once, with
 * `molt setup` ({@link setupServiceBuckets}). Nodes and publishers then only
 * open the buckets ({@link ensureServiceBuckets}); a node started before the
 * setup fails with a message naming the command. On a server that asks for no
 * credentials (`molt dev`, the demo, tests) there are no roles to keep apart,
 * so whoever comes first does the setup itself.
 *
 * Replicas default to min(3, servers in the cluster), as the server reports
 * them; a node or publisher asked for other replicas than an existing
 * bucket's refuses to start, with the fix in the message, rather than run on
 * buckets replicated otherwise than the operator believes.
 *
 * @module
 */
import type { NatsConnection } from '@nats-io/transport-node';
import { jetstream, jetstreamManager, type JetStreamManager, type StreamInfo } from '@nats-io/jetstream';
import { Kvm, type KV } from '@nats-io/kv';
import { Objm } from '@nats-io/obj';
import { ErrorCode, MoltError } from '../errors.ts';
import type { Logger } from '../env.ts';

/** One bucket of a service. */
export interface BucketSpec {
  /** Bucket name, `molt_<service>_<role>`. */
  readonly name: string;
  /** The JetStream stream behind it (`KV_<name>` or `OBJ_<name>`). */
  readonly stream: string;
  readonly kind: 'kv' | 'object';
  /** Revisions kept per key (KV only). */
  readonly history?: number;
  readonly what: string;
}

/** The four buckets of a service, in the order setup creates them. */
export function serviceBuckets(service: string): { state: BucketSpec; udb: BucketSpec; upgrades: BucketSpec; bundles: BucketSpec } {
  const kv = (role: string, history: number, what: string): BucketSpec => ({ name: `molt_${service}_${role}`, stream: `KV_molt_${service}_${role}`, kind: 'kv', history, what });
  return {
    state: kv('state', 1, 'actor state'),
    udb: kv('udb', 5, 'upgrade database'),
    upgrades: kv('upgrades', 10, 'upgrade descriptors'),
    bundles: { name: `molt_${service}_bundles`, stream: `OBJ_molt_${service}_bundles`, kind: 'object', what: 'upgrade bundles' },
  };
}

function allBuckets(service: string): BucketSpec[] {
  return Object.values(serviceBuckets(service));
}

/** JetStream error codes that mean "the cluster cannot place this many replicas". */
const PLACEMENT_ERRORS = new Set([10005 /* no suitable peers */, 10023 /* insufficient resources */, 10074 /* replicas > 1 not supported in non-clustered mode */]);

function apiErrorCode(e: unknown): number | undefined {
  const err = e as { api_error?: { err_code?: number }; code?: unknown };
  if (typeof err?.api_error?.err_code === 'number') return err.api_error.err_code;
  return typeof err?.code === 'number' ? err.code : undefined;
}

function isStreamNotFound(e: unknown): boolean {
  return apiErrorCode(e) === 10059 || /stream not found/i.test(String((e as Error)?.message ?? e));
}

function isPermissionError(e: unknown): boolean {
  return /permissions? violation/i.test(String((e as Error)?.message ?? e)) || (e as { name?: string })?.name === 'PermissionViolationError';
}

/**
 * The replicas a new bucket gets by default: min(3, servers in the cluster).
 * A server outside a cluster says so in its INFO (no `cluster`); in a cluster,
 * INFO lists the client URLs of its servers. Setup steps down from this guess
 * if JetStream says it cannot place that many (servers without JetStream).
 */
export function defaultReplicas(nc: NatsConnection): number {
  const info = nc.info as (typeof nc.info & { connect_urls?: string[] }) | undefined;
  if (!info?.cluster) return 1;
  const servers = info.connect_urls?.length ?? 0;
  return Math.min(3, servers > 0 ? servers : 3);
}

/** How setup left one bucket. */
export interface BucketOutcome {
  bucket: BucketSpec;
  action: 'created' | 'existed' | 'updated';
  replicas: number;
  /** Replicas before an update that changed them. */
  from?: number;
  /** The actor-state bucket's size limit in bytes, when it has one. */
  maxBytes?: number;
}

/** What setup makes the buckets with. */
export interface SetupOptions {
  /** Replicas of every bucket (default {@link defaultReplicas}); existing buckets with others are changed. */
  replicas?: number;
  /**
   * Size limit of the actor-state bucket (default: none). Keep it below a
   * bounded JetStream storage, so the upgrade database always has room
   * (docs/operations.md, "JetStream storage runs out"); an existing state
   * bucket with another limit is changed.
   */
  stateMaxBytes?: number;
}

async function streamInfo(jsm: JetStreamManager, stream: string): Promise<StreamInfo | undefined> {
  try {
    return await jsm.streams.info(stream);
  } catch (e) {
    if (isStreamNotFound(e)) return undefined;
    throw e;
  }
}

function isState(spec: BucketSpec): boolean {
  return spec.name.endsWith('_state');
}

/**
 * How long one JetStream API request of the setup may take: on a cluster the
 * meta leader places the replicas first, and several nodes setting up at once
 * queue behind each other (nats.js's default of 5 s is too short there).
 */
const CREATE_TIMEOUT_MS = 10_000;

/**
 * How long the setup keeps trying when JetStream does not answer: a cluster
 * that has just started may still be electing its meta leader, and a request
 * sent to it meanwhile is never answered.
 */
const SETUP_DEADLINE_MS = 60_000;

/** A request JetStream did not answer in time, or answered "temporarily unavailable" (10008). */
function isNoAnswer(e: unknown): boolean {
  const err = e as { name?: string; message?: string };
  return err?.name === 'TimeoutError' || apiErrorCode(e) === 10008 || /\btime(d)? ?out\b/i.test(String(err?.message ?? e));
}

/**
 * Runs one setup request, again while JetStream does not answer and the
 * deadline allows; any other error is the caller's to judge.
 */
async function patiently<T>(deadline: number, request: () => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await request();
    } catch (e) {
      if (!isNoAnswer(e) || Date.now() >= deadline) throw e;
      await new Promise((r) => setTimeout(r, Math.min(2000, 250 * attempt)));
    }
  }
}

async function createBucket(nc: NatsConnection, spec: BucketSpec, replicas: number, stateMaxBytes: number | undefined): Promise<void> {
  const js = jetstream(nc, { timeout: CREATE_TIMEOUT_MS });
  if (spec.kind === 'object') {
    await new Objm(js).create(spec.name, { replicas });
    return;
  }
  // Replicated state is read from the stream leader (allow_direct off): a direct
  // get may be answered by a replica that lags, and an actor loaded from it
  // would answer reads from an older state.
  const direct = isState(spec) && replicas > 1 ? { allow_direct: false } : {};
  const limit = isState(spec) && stateMaxBytes !== undefined ? { max_bytes: stateMaxBytes } : {};
  await new Kvm(js).create(spec.name, { history: spec.history ?? 1, replicas, ...direct, ...limit });
}

/**
 * Creates every bucket of `service` that does not exist, with `replicas` (or
 * {@link defaultReplicas}, stepping down when the cluster cannot place them),
 * and — when `replicas` is given — changes the replicas of existing ones that
 * differ. Idempotent; needs the operator's permissions (docs/permissions.md).
 */
export async function setupServiceBuckets(nc: NatsConnection, service: string, options: SetupOptions = {}): Promise<BucketOutcome[]> {
  const deadline = Date.now() + SETUP_DEADLINE_MS;
  const jsm = await patiently(deadline, () => jetstreamManager(nc, { timeout: CREATE_TIMEOUT_MS }));
  const outcomes: BucketOutcome[] = [];
  let guess = options.replicas ?? defaultReplicas(nc);
  for (const spec of allBuckets(service)) {
    const info = await patiently(deadline, () => streamInfo(jsm, spec.stream)).catch((e: unknown) => {
      throw setupError(service, spec, e);
    });
    if (info) {
      const have = info.config.num_replicas || 1;
      const haveLimit = info.config.max_bytes > 0 ? info.config.max_bytes : undefined;
      const change: { num_replicas?: number; allow_direct?: boolean; max_bytes?: number } = {};
      if (options.replicas !== undefined && have !== options.replicas) {
        change.num_replicas = options.replicas;
        if (isState(spec)) change.allow_direct = options.replicas === 1;
      }
      if (isState(spec) && options.stateMaxBytes !== undefined && haveLimit !== options.stateMaxBytes) change.max_bytes = options.stateMaxBytes;
      if (Object.keys(change).length === 0) {
        outcomes.push({ bucket: spec, action: 'existed', replicas: have, ...(haveLimit !== undefined ? { maxBytes: haveLimit } : {}) });
        continue;
      }
      await jsm.streams.update(spec.stream, change).catch((e: unknown) => {
        throw setupError(service, spec, e);
      });
      const limit = change.max_bytes ?? haveLimit;
      outcomes.push({ bucket: spec, action: 'updated', replicas: change.num_replicas ?? have, ...(change.num_replicas !== undefined ? { from: have } : {}), ...(limit !== undefined ? { maxBytes: limit } : {}) });
      continue;
    }
    for (;;) {
      try {
        // A creation that timed out may still have been made: look before trying again.
        const made = await patiently(deadline, async () => {
          const existing = await streamInfo(jsm, spec.stream);
          if (!existing) await createBucket(nc, spec, guess, options.stateMaxBytes);
          return existing;
        });
        if (made) {
          outcomes.push({ bucket: spec, action: 'existed', replicas: made.config.num_replicas || 1, ...(made.config.max_bytes > 0 ? { maxBytes: made.config.max_bytes } : {}) });
          break;
        }
        outcomes.push({ bucket: spec, action: 'created', replicas: guess, ...(isState(spec) && options.stateMaxBytes !== undefined ? { maxBytes: options.stateMaxBytes } : {}) });
        break;
      } catch (e) {
        // Only a guess steps down; replicas the operator asked for are made or refused.
        if (options.replicas === undefined && guess > 1 && PLACEMENT_ERRORS.has(apiErrorCode(e) ?? 0)) {
          guess--;
          continue;
        }
        // Another process setting the service up at the same time may have made it.
        const made = await streamInfo(jsm, spec.stream).catch(() => undefined);
        if (made) {
          outcomes.push({ bucket: spec, action: 'existed', replicas: made.config.num_replicas || 1, ...(made.config.max_bytes > 0 ? { maxBytes: made.config.max_bytes } : {}) });
          break;
        }
        throw setupError(service, spec, e, guess);
      }
    }
  }
  return outcomes;
}

function setupError(service: string, spec: BucketSpec, e: unknown, replicas?: number): MoltError {
  const text = e instanceof Error ? e.message : String(e);
  if (isPermissionError(e)) {
    return new MoltError(ErrorCode.Environment, `cannot set up bucket ${spec.name} of service '${service}': these NATS credentials may not create or change streams (${text}). Run \`molt setup\` with the operator's credentials (docs/permissions.md)`, { cause: e });
  }
  if (replicas !== undefined && PLACEMENT_ERRORS.has(apiErrorCode(e) ?? 0)) {
    return new MoltError(ErrorCode.Environment, `cannot create bucket ${spec.name} with ${replicas} replica(s): ${text}. Give --replicas at most the number of JetStream servers in the cluster`, { cause: e });
  }
  return new MoltError(ErrorCode.Unavailable, `cannot set up bucket ${spec.name} of service '${service}': ${text}`, { cause: e });
}

/** Options of {@link ensureServiceBuckets}. */
export interface EnsureBucketsOptions {
  /** Replicas the caller was asked for (`--replicas`); every existing bucket must have them. */
  replicas?: number | undefined;
  /** The actor-state bucket's size limit, should this caller set the service up. */
  stateMaxBytes?: number | undefined;
  /** Who asks, for messages: e.g. `node n1`, `molt publish`. */
  asker: string;
  logger?: Logger;
}

/**
 * Makes sure every bucket of `service` exists — on a server without
 * authentication by setting them up, elsewhere by refusing with the command
 * that does — and that they have the replicas asked for. Returns the stream
 * info of each bucket by name.
 */
export async function ensureServiceBuckets(nc: NatsConnection, service: string, options: EnsureBucketsOptions): Promise<Map<string, StreamInfo>> {
  const deadline = Date.now() + SETUP_DEADLINE_MS;
  const jsm = await patiently(deadline, () => jetstreamManager(nc));
  const specs = allBuckets(service);
  const infos = new Map<string, StreamInfo>();
  const missing: BucketSpec[] = [];
  for (const spec of specs) {
    let info: StreamInfo | undefined;
    try {
      info = await patiently(deadline, () => streamInfo(jsm, spec.stream));
    } catch (e) {
      throw new MoltError(ErrorCode.Unavailable, `cannot read bucket ${spec.name} of service '${service}': ${(e as Error).message}`, { cause: e });
    }
    if (info) infos.set(spec.name, info);
    else missing.push(spec);
  }
  if (missing.length > 0) {
    if (nc.info?.auth_required) {
      throw new MoltError(
        ErrorCode.Environment,
        `service '${service}' is not set up on this NATS (missing: ${missing.map((s) => s.name).join(', ')}). ` +
          `The operator creates its buckets once: \`molt setup ${service} --nats <url>\` with the operator's credentials (${options.asker} may not create streams; see docs/permissions.md)`,
        { data: { service, missing: missing.map((s) => s.name) } },
      );
    }
    const outcomes = await setupServiceBuckets(nc, service, {
      ...(options.replicas !== undefined ? { replicas: options.replicas } : {}),
      ...(options.stateMaxBytes !== undefined ? { stateMaxBytes: options.stateMaxBytes } : {}),
    });
    options.logger?.info('set up the service buckets (this NATS asks for no credentials)', {
      created: outcomes.filter((o) => o.action === 'created').map((o) => `${o.bucket.name} R${o.replicas}`),
    });
    for (const spec of specs) {
      const info = await patiently(deadline, () => streamInfo(jsm, spec.stream));
      if (info) infos.set(spec.name, info);
    }
  }
  if (options.replicas !== undefined) {
    const differ = specs.filter((s) => (infos.get(s.name)?.config.num_replicas || 1) !== options.replicas);
    if (differ.length > 0) {
      const have = differ.map((s) => `${s.name} has ${infos.get(s.name)?.config.num_replicas || 1}`).join(', ');
      throw new MoltError(
        ErrorCode.Environment,
        `${options.asker} was asked for ${options.replicas} bucket replica(s) (--replicas), but ${have}. ` +
          `Leave out --replicas to use the buckets as they are, or have the operator change them: \`molt setup ${service} --replicas ${options.replicas}\``,
        { data: { service, asked: options.replicas, buckets: Object.fromEntries(differ.map((s) => [s.name, infos.get(s.name)?.config.num_replicas || 1])) } },
      );
    }
  }
  return infos;
}

/**
 * Opens the buckets a node serves from (state and UDB), after
 * {@link ensureServiceBuckets}: the service must be set up, with the replicas
 * the node was asked for.
 */
export async function openNodeBuckets(nc: NatsConnection, service: string, options: EnsureBucketsOptions): Promise<{ state: KV; udb: KV }> {
  const infos = await ensureServiceBuckets(nc, service, options);
  const { state, udb } = serviceBuckets(service);
  const kvm = new Kvm(nc);
  // Bound, not created: direct gets only where the stream allows them.
  const open = (spec: BucketSpec) => kvm.open(spec.name, { allow_direct: infos.get(spec.name)?.config.allow_direct === true });
  return { state: await open(state), udb: await open(udb) };
}
