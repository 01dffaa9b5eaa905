/**
 * The roles of the rollout benchmarks (dissemination, availability):
 *
 * - **upgradable nodes**: one or many Molt nodes in this agent, each with its
 *   own NATS connection and its own upgrade manager (as `molt node --trust`
 *   runs them), started from a module of `bench/fixtures/`. Each node records
 *   when its manager loaded a version (`loadVersion`: the future SO serves from
 *   that moment) and when it finished upgrading to one, and when its periodic
 *   reconciliation ran, so the harness can tell which path delivered an
 *   upgrade: the KV watch, or a reconciliation read.
 * - **rollout load**: closed-loop callers of `account` v1 and v2 at once that
 *   count every call (ok, disallowed by design, failed by error code) and keep
 *   a ledger of acknowledged increments per actor, checked at the end against
 *   what the actors say (lost updates).
 *
 * @module
 */
import { isAbsolute, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import {
  createClient,
  createNode,
  isMoltError,
  startUpgradeManager,
  systemClock,
  type ActorInterface,
  type Clock,
  type Logger,
  type MoltClient,
  type MoltNode,
  type ServiceDefinition,
  type UpgradeManager,
} from '../../runtime/index.ts';
import { messages, PAYLOAD } from '../fixtures/service.ts';
import { accountV1, accountV2, feedVersions } from '../fixtures/rollout.ts';
import { callers, cleanups, type Command } from './common.ts';

/** Wall-clock time in ms with sub-ms resolution (comparable with NATS server timestamps on this host). */
const wallNow = () => performance.timeOrigin + performance.now();

const repoRoot = new URL('../../', import.meta.url).pathname;

async function loadService(module: string, exportName: string): Promise<ServiceDefinition> {
  const file = isAbsolute(module) ? module : resolve(repoRoot, module);
  const mod = (await import(pathToFileURL(file).href)) as Record<string, unknown>;
  const service = mod[exportName] as ServiceDefinition | undefined;
  if (!service || typeof service.name !== 'string') throw new Error(`${module} has no service export '${exportName}'`);
  return service;
}

/** One node of this agent and what it recorded. */
interface Managed {
  id: string;
  node: MoltNode;
  manager: UpgradeManager;
  /** `type@version` → when `loadVersion` returned. */
  loaded: Map<string, number>;
  /** `type@version` → when the in-place upgrade to it returned, and what it did. */
  upgraded: Map<string, { at: number; transformed: number; failed: number }>;
  /** When each periodic reconciliation started. */
  reconciles: number[];
  /** Last warnings and errors of the node's manager. */
  problems: string[];
}

const managed: Managed[] = [];
/** Called after anything is recorded: waiters re-check. */
const listeners = new Set<() => void>();
const notify = () => {
  for (const l of [...listeners]) l();
};

/** Resolves when `done()` returns a value; rejects with `describe()` after `timeoutMs`. */
function until<T>(done: () => T | undefined, timeoutMs: number, describe: () => string): Promise<T> {
  return new Promise((resolvePromise, reject) => {
    const check = () => {
      const v = done();
      if (v === undefined) return;
      listeners.delete(check);
      clearTimeout(timer);
      resolvePromise(v);
    };
    const timer = setTimeout(() => {
      listeners.delete(check);
      reject(new Error(`timed out after ${timeoutMs} ms: ${describe()}`));
    }, timeoutMs);
    listeners.add(check);
    check();
  });
}

/** A logger keeping a node's last warnings and errors (for failure messages), dropping the rest. */
function problemLogger(problems: string[]): Logger {
  const keep = (level: string) => (message: string, fields?: Record<string, unknown>) => {
    problems.push(`${level} ${message}${fields ? ` ${JSON.stringify(fields)}` : ''}`);
    if (problems.length > 10) problems.shift();
  };
  const logger: Logger = { debug() {}, info() {}, warn: keep('warn'), error: keep('error'), child: () => logger };
  return logger;
}

/**
 * The system clock, noting when the manager's periodic reconciliation fires
 * (the only timer the manager arms with exactly `reconcileMs`).
 */
function observedClock(reconcileMs: number, fired: number[]): Clock {
  return {
    now: systemClock.now,
    monotonic: systemClock.monotonic,
    clearTimeout: systemClock.clearTimeout,
    setTimeout(fn, ms) {
      if (ms !== reconcileMs) return systemClock.setTimeout(fn, ms);
      return systemClock.setTimeout(() => {
        fired.push(wallNow());
        if (fired.length > 100) fired.shift();
        fn();
      }, ms);
    },
  };
}

async function startOne(args: Record<string, unknown>, service: ServiceDefinition, id: string): Promise<Managed> {
  const problems: string[] = [];
  const logger = problemLogger(problems);
  const node = await createNode({
    service,
    nats: { servers: String(args.url), name: `bench node ${id}` },
    nodeId: id,
    logger,
    ...(args.versions ? { versions: args.versions as Record<string, number> } : {}),
    ...(args.passivateAfterMs ? { passivateAfterMs: Number(args.passivateAfterMs) } : {}),
  });
  const noManager: UpgradeManager = { upgrades: () => [], reconcile: async () => undefined, stop: async () => undefined };
  const m: Managed = { id, node, manager: noManager, loaded: new Map(), upgraded: new Map(), reconciles: [], problems };
  const load = node.loadVersion.bind(node);
  node.loadVersion = (def) => {
    load(def);
    m.loaded.set(`${def.type}@${def.version}`, wallNow());
    notify();
  };
  const upgrade = node.upgrade.bind(node);
  node.upgrade = async (type, version, def) => {
    if (def && !m.loaded.has(`${type}@${version}`)) m.loaded.set(`${type}@${version}`, wallNow());
    const result = await upgrade(type, version, def);
    m.upgraded.set(`${type}@${version}`, { at: wallNow(), ...result });
    notify();
    return result;
  };
  if (args.manager === false) return m;
  // The manager's own defaults unless the benchmark says otherwise (it says so in its report).
  const reconcileMs = args.reconcileMs !== undefined ? Number(args.reconcileMs) : 5000;
  m.manager = await startUpgradeManager(node, {
    trustedKeys: args.trust as string[],
    reconcileMs,
    ...(args.tickMs !== undefined ? { tickMs: Number(args.tickMs) } : {}),
    clock: observedClock(reconcileMs, m.reconciles),
    logger,
  });
  return m;
}

type Iface = ActorInterface<string, number, typeof messages>;

/** Interfaces the rollout callers speak, by `type@version` (`feed` at any version). */
const interfaces = new Map<string, Iface>([
  ['account@1', accountV1],
  ['account@2', accountV2],
]);

function iface(type: string, version: number): Iface {
  const key = `${type}@${version}`;
  if (type === 'feed' && !interfaces.has(key)) interfaces.set(key, feedVersions(version)[version - 1] as unknown as Iface);
  const i = interfaces.get(key);
  if (!i) throw new Error(`no interface ${key} in bench/fixtures/rollout.ts`);
  return i;
}

// ---- the rollout load ------------------------------------------------------------

/** Outcome counts of a load run. */
export interface LoadTally {
  calls: number;
  ok: number;
  /** Refused by a simulation object by design (`Disallowed`). */
  disallowed: number;
  /** Everything else that failed, by error code. */
  failedByCode: Record<string, number>;
  failed: number;
  /** Per caller version: calls and failures. */
  byVersion: Record<string, { calls: number; ok: number; disallowed: number; failed: number }>;
  /** First message seen per error code. */
  examples: Record<string, string>;
  /** The same counts per phase of the run (see `upgrade.load.phase`). */
  byPhase: Record<string, { calls: number; ok: number; disallowed: number; failed: number }>;
  /** When the first and the last failure happened (ms since the load started), if any. */
  failureWindowMs?: [number, number];
  durationMs: number;
}

interface LoadRun {
  client: MoltClient;
  type: string;
  keys: string[];
  stopping: boolean;
  loops: Promise<void>[];
  /** Acknowledged increments per key. */
  acked: Map<string, number>;
  /** Increments whose outcome is unknown (timeouts): they may have been applied. */
  uncertain: Map<string, number>;
  tally: LoadTally;
  started: number;
  phase: string;
}

let load: LoadRun | undefined;

const bump = (m: Map<string, number>, k: string) => m.set(k, (m.get(k) ?? 0) + 1);

async function worker(run: LoadRun, version: number, thinkMs: number): Promise<void> {
  const { tally } = run;
  const zero = () => ({ calls: 0, ok: 0, disallowed: 0, failed: 0 });
  const i = iface(run.type, version);
  while (!run.stopping) {
    const key = run.keys[Math.floor(Math.random() * run.keys.length)]!;
    const ref = run.client.actor(i, key);
    const isInc = Math.random() < 0.75;
    // Counted under the phase the call started in, for this caller version and overall.
    const counts = [tally, (tally.byVersion[`v${version}`] ??= zero()), (tally.byPhase[run.phase] ??= zero())];
    for (const c of counts) c.calls++;
    try {
      if (isInc) await ref.inc(PAYLOAD);
      else await ref.get();
      for (const c of counts) c.ok++;
      if (isInc) bump(run.acked, key);
    } catch (e) {
      const code = isMoltError(e) ? e.code : 'Error';
      if (code === 'Disallowed') {
        for (const c of counts) c.disallowed++;
      } else {
        for (const c of counts) c.failed++;
        tally.failedByCode[code] = (tally.failedByCode[code] ?? 0) + 1;
        tally.examples[code] ??= e instanceof Error ? e.message : String(e);
        const at = performance.now() - run.started;
        tally.failureWindowMs = [tally.failureWindowMs?.[0] ?? at, at];
        // A timed-out increment may or may not have been applied.
        if (isInc && (code === 'Timeout' || code === 'Error')) bump(run.uncertain, key);
      }
    }
    if (thinkMs > 0) await new Promise((r) => setTimeout(r, Math.random() * thinkMs));
  }
}

export const commands: Record<string, Command> = {
  /**
   * Starts `count` nodes of `module`'s `export` (default `default`), ids
   * `<idPrefix>0…` (or the one node `id`), each with its own connection and an
   * upgrade manager trusting `trust` (none with `manager: false`);
   * `reconcileMs` / `tickMs` override the manager's defaults. At most
   * `parallel` (default 8) start at once.
   */
  'upgrade.nodes': async (args) => {
    const service = await loadService(String(args.module), String(args.export ?? 'default'));
    const count = Number(args.count ?? 1);
    const ids = args.id !== undefined ? [String(args.id)] : Array.from({ length: count }, (_, i) => `${String(args.idPrefix ?? 'n')}${i}`);
    let next = 0;
    const starter = async () => {
      while (next < ids.length) {
        const id = ids[next++]!;
        const m = await startOne(args, service, id);
        managed.push(m);
      }
    };
    const t0 = performance.now();
    await Promise.all(Array.from({ length: Math.min(ids.length, Number(args.parallel ?? 8)) }, starter));
    if (managed.length === ids.length) {
      cleanups.push(async () => {
        await Promise.allSettled(managed.map(async (m) => {
          await m.manager.stop().catch(() => undefined);
          await m.node.stop().catch(() => undefined);
        }));
      });
    }
    return { ids, ms: performance.now() - t0 };
  },
  /** Stops this agent's nodes gracefully (manager first, then the node leaves and drains), as a restart would. */
  'upgrade.stop': async () => {
    const all = managed.splice(0);
    await Promise.all(all.map(async (m) => {
      await m.manager.stop();
      await m.node.stop();
    }));
    return { stopped: all.length };
  },
  /**
   * Waits until every node of this agent loaded `type@version`; returns when
   * each did, and whether a periodic reconciliation started between `since`
   * (minus a margin for one in flight) and that moment (else only the KV watch
   * can have delivered it).
   */
  'upgrade.loaded': async (args) => {
    const key = `${String(args.type)}@${Number(args.version)}`;
    const since = Number(args.since ?? 0) - Number(args.marginMs ?? 250);
    return until(
      () => (managed.every((m) => m.loaded.has(key)) ? managed.map((m) => {
        const at = m.loaded.get(key)!;
        return { id: m.id, at, reconciled: m.reconciles.some((r) => r >= since && r <= at) };
      }) : undefined),
      Number(args.timeoutMs ?? 30_000),
      () => `${managed.filter((m) => !m.loaded.has(key)).length} of ${managed.length} nodes have not loaded ${key}; ${managed.find((m) => !m.loaded.has(key))?.problems.join(' | ') ?? ''}`,
    );
  },
  /** Waits until every node of this agent upgraded to `type@version`; returns when each did. */
  'upgrade.upgraded': async (args) => {
    const key = `${String(args.type)}@${Number(args.version)}`;
    return until(
      () => (managed.every((m) => m.upgraded.has(key)) ? managed.map((m) => ({ id: m.id, ...m.upgraded.get(key)! })) : undefined),
      Number(args.timeoutMs ?? 60_000),
      () => `${managed.filter((m) => !m.upgraded.has(key)).length} of ${managed.length} nodes have not upgraded to ${key}; ${managed.find((m) => !m.upgraded.has(key))?.problems.join(' | ') ?? ''}`,
    );
  },
  /** Per node: current and known versions, resident actors of `type`, and the shards it owns. */
  'upgrade.status': async (args) =>
    managed.map((m) => {
      const status = m.node.status();
      const t = status.types[String(args.type)]!;
      return { id: m.id, current: t.current, known: t.known, resident: t.resident, owned: status.owned, problems: m.problems };
    }),
  /**
   * Registers caller `name` for `sweep`: key i asks `inc` of actor `keys[i]`
   * (or `<keyPrefix><i>`) of `type`@`version` of `service`.
   */
  'upgrade.caller': async (args) => {
    const client = await createClient({ service: String(args.service), nats: { servers: String(args.url), name: 'bench rollout caller' } });
    cleanups.push(() => client.close());
    const i = iface(String(args.type), Number(args.version ?? 1));
    const keys = args.keys as string[] | undefined;
    const prefix = String(args.keyPrefix ?? 'k');
    const keyOf = (k: number) => keys?.[k] ?? `${prefix}${k}`;
    callers.set(String(args.name), {
      call: (w) => client.actor(i, keyOf(w)).inc(PAYLOAD),
      callKey: (k) => client.actor(i, keyOf(k)).inc(PAYLOAD),
    });
    return {};
  },
  /**
   * Starts the rollout load on `keys` actors of `type` of `service`:
   * `workers` is `{ "<version>": count }`; each worker loops: a random actor,
   * `inc` (3 in 4) or `get`, then a random pause of up to `thinkMs`.
   * Client options are the defaults (5 s timeout).
   */
  'upgrade.load.start': async (args) => {
    if (load) throw new Error('a load is already running in this agent');
    const client = await createClient({ service: String(args.service), nats: { servers: String(args.url), name: 'bench rollout load' } });
    cleanups.push(() => client.close());
    const keys = Array.from({ length: Number(args.keys) }, (_, i) => `${String(args.keyPrefix ?? 'a')}${i}`);
    const run: LoadRun = {
      client,
      type: String(args.type),
      keys,
      stopping: false,
      loops: [],
      acked: new Map(),
      uncertain: new Map(),
      tally: { calls: 0, ok: 0, disallowed: 0, failed: 0, failedByCode: {}, byVersion: {}, byPhase: {}, examples: {}, durationMs: 0 },
      started: performance.now(),
      phase: String(args.phase ?? 'start'),
    };
    for (const [version, count] of Object.entries(args.workers as Record<string, number>)) {
      for (let w = 0; w < count; w++) run.loops.push(worker(run, Number(version), Number(args.thinkMs ?? 0)));
    }
    load = run;
    return {};
  },
  /** Calls started from now on are counted under phase `name`. */
  'upgrade.load.phase': async (args) => {
    if (!load) throw new Error('no load running');
    load.phase = String(args.name);
    return {};
  },
  /** Snapshot of the running load's counts. */
  'upgrade.load.tally': async () => {
    if (!load) throw new Error('no load running');
    return { ...load.tally, durationMs: performance.now() - load.started };
  },
  /**
   * Stops the load (each worker finishes its call in flight), then reads every
   * actor through `checkVersion` and compares with the ledger: lost updates are
   * acknowledged increments the actor does not have; `extra` are increments it
   * has beyond those acknowledged or possibly applied (should be 0 too).
   */
  'upgrade.load.stop': async (args) => {
    const run = load;
    if (!run) throw new Error('no load running');
    run.stopping = true;
    await Promise.all(run.loops);
    load = undefined;
    run.tally.durationMs = performance.now() - run.started;
    const check = iface(run.type, Number(args.checkVersion));
    let lostUpdates = 0;
    let extra = 0;
    let acknowledged = 0;
    const problems: string[] = [];
    await Promise.all(run.keys.map(async (key) => {
      const final = (await run.client.actor(check, key).get()) as number;
      const acked = run.acked.get(key) ?? 0;
      const maybe = run.uncertain.get(key) ?? 0;
      acknowledged += acked;
      if (final < acked) {
        lostUpdates += acked - final;
        if (problems.length < 5) problems.push(`${key}: ${acked} increments acknowledged, the actor has ${final}`);
      } else if (final > acked + maybe) {
        extra += final - acked - maybe;
        if (problems.length < 5) problems.push(`${key}: the actor has ${final}, only ${acked} (+${maybe} uncertain) were sent`);
      }
    }));
    return { tally: run.tally, lostUpdates, extra, acknowledged, problems };
  },
};
