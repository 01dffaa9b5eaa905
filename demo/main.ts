/**
 * `npm run demo`: a bank service upgrades itself twice, live, under load.
 *
 * 1. An embedded nats-server (unless NATS_URL is set), a publisher key pair
 *    made for this run, and three `molt node demo/service.ts` processes that
 *    trust it, all running `account@1` (whole units).
 * 2. Versions 2 (cents, operation count, `statement`) and 3 (holds, available
 *    balance) are published as signed bundles, staged (`--paused`): every node
 *    loads them at once, so from the first call on it serves callers of v1,
 *    v2 and v3 — v2 through the future SO, v3 through the two future SOs
 *    chained.
 * 3. Concurrent callers of v1, v2 and v3 start. After a baseline, the v2
 *    rollout is released: `rolling`, one node at a time.
 * 4. Once every node runs v2, the v1 callers migrate to v2 (as a real team
 *    does before the next release: a v3 node does not serve v1, which is two
 *    versions back), then the v3 rollout is released: `canary`, one canary,
 *    a short soak, then the rest.
 * 5. Load runs on; then every account is read back through a v3 client and
 *    checked against the ledger of acknowledged operations.
 *
 * Ends with a summary and one JSON line:
 * {"calls","ok","disallowed","failed","lostUpdates","finalVersions","durationMs"}.
 * Exit code 0 only if failed = 0, lostUpdates = 0 and every node runs v3.
 *
 * Tuning: DEMO_SECONDS (load time, default 40), DEMO_CALLERS (callers per
 * version, default 8), DEMO_ACCOUNTS (default 32), DEMO_THINK_MS (pause
 * between a caller's calls, up to; default 10). With NATS_URL, the demo
 * refuses to run over the `bank` service of an earlier run unless
 * DEMO_RESET=1, which deletes its buckets first.
 *
 * @module
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createClient, connectNats, startEmbeddedNats, type EmbeddedNats, type MoltClient } from '../runtime/index.ts';
import type { NatsConnection } from '@nats-io/transport-node';
import { jetstreamManager } from '@nats-io/jetstream';
import { generatePublisherKeys, signerFromSeed } from '../runtime/server/keys.ts';
import { publishUpgrade } from '../runtime/server/publish.ts';
import { openUdb } from '../runtime/udb/index.ts';
import { controlRollout } from '../runtime/operate/rollouts.ts';
import { checkAccounts, createLoadContext, startCallers, type Callers, type CallerVersion, type LoadContext } from './load.ts';
import { watchUdb, type UdbWatcher } from './watch.ts';

const root = new URL('..', import.meta.url).pathname;
const seconds = Number(process.env.DEMO_SECONDS ?? 40);
const callersPerVersion = Number(process.env.DEMO_CALLERS ?? 8);
const accountCount = Number(process.env.DEMO_ACCOUNTS ?? 32);
/** Each caller pauses up to this long between calls (a random share of it). */
const thinkMs = Number(process.env.DEMO_THINK_MS ?? 10);
const SERVICE = 'bank';
const nodeIds = ['node-a', 'node-b', 'node-c'];
const TYPE = 'account';
/** Node timings: heartbeat, lease (a node silent this long is dead), reconciliation, SF tick. */
const timings = { heartbeatMs: 500, leaseMs: 4000, reconcileMs: 1000, tickMs: 250 };

const started = Date.now();
const ms = (s: number) => Math.round(s * 1000);
const sleep = (t: number) => new Promise((r) => setTimeout(r, t));

function log(line: string): void {
  process.stdout.write(`[demo ${((Date.now() - started) / 1000).toFixed(1).padStart(5)}s] ${line}\n`);
}

// ---- processes and cleanup --------------------------------------------------------

let embedded: EmbeddedNats | undefined;
const nodes = new Map<string, ChildProcess>();
let cleaning: Promise<void> | undefined;

function exited(child: ChildProcess): boolean {
  return child.exitCode !== null || child.signalCode !== null;
}

/** Stops every node (SIGTERM, SIGKILL after 5 s) and the embedded server. Idempotent. */
function cleanup(): Promise<void> {
  cleaning ??= (async () => {
    await Promise.all(
      [...nodes.values()].map(
        (child) =>
          new Promise<void>((resolve) => {
            if (exited(child)) return resolve();
            const kill = setTimeout(() => child.kill('SIGKILL'), 5000);
            child.once('exit', () => (clearTimeout(kill), resolve()));
            child.kill('SIGTERM');
          }),
      ),
    );
    await embedded?.stop().catch(() => undefined);
  })();
  return cleaning;
}

// Ctrl-C: stop everything, then exit. A second Ctrl-C exits at once (the 'exit' hook still kills).
let interrupted = false;
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => {
    if (interrupted) process.exit(130);
    interrupted = true;
    log(`${signal}: stopping the nodes and the nats-server`);
    void cleanup().finally(() => process.exit(130));
  });
}
// Last resort (an uncaught error, process.exit): no child outlives the demo.
process.on('exit', () => {
  for (const child of nodes.values()) if (!exited(child)) child.kill('SIGKILL');
  if (embedded && !exited(embedded.process)) embedded.process.kill('SIGKILL');
});

/** Starts `molt node demo/service.ts` trusting `publicKey`; resolves once it serves. */
function startNode(url: string, id: string, publicKey: string): Promise<ChildProcess> {
  const args = [
    `${root}bin/molt.js`, 'node', `${root}demo/service.ts`,
    '--nats', url,
    '--id', id,
    '--trust', publicKey,
    '--heartbeat', String(timings.heartbeatMs),
    '--lease', String(timings.leaseMs),
    '--reconcile', String(timings.reconcileMs),
    '--tick', String(timings.tickMs),
  ];
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, MOLT_LOG: 'warn' } });
  nodes.set(id, child);
  return new Promise((resolve, reject) => {
    let out = '';
    let serving = false;
    const onData = (d: Buffer) => {
      if (serving) return forward(id, d.toString());
      out += d;
      if (/serving/.test(out)) {
        serving = true;
        resolve(child);
      }
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
    child.once('exit', (code, signal) => {
      if (!serving) reject(new Error(`node ${id} exited (${code ?? signal}) before serving:\n${out}`));
      else if (!cleaning) log(`${id}  exited unexpectedly (${code ?? signal})`);
    });
  });
}

/** Node warnings and errors (JSON log lines) shown as `node-a WARN message {fields}`. */
function forward(id: string, text: string): void {
  for (const line of text.split('\n')) {
    if (!line.trim()) continue;
    try {
      const { time: _t, level, msg, node: _n, service: _s, ...fields } = JSON.parse(line) as Record<string, unknown>;
      log(`${id}  ${String(level).toUpperCase()} ${String(msg)}${Object.keys(fields).length ? ` ${JSON.stringify(fields)}` : ''}`);
    } catch {
      log(`${id}  ${line}`);
    }
  }
}

/**
 * On a server we did not start, an earlier run's `bank` buckets (accounts,
 * upgrade database, published upgrades) would spoil this one: refuse, or
 * delete them with DEMO_RESET=1.
 */
async function prepareServer(nc: NatsConnection): Promise<void> {
  const jsm = await jetstreamManager(nc);
  const streams = ['state', 'udb', 'upgrades'].map((b) => `KV_molt_${SERVICE}_${b}`).concat(`OBJ_molt_${SERVICE}_bundles`);
  const found: string[] = [];
  for (const name of streams) {
    const exists = await jsm.streams.info(name).then(() => true, () => false);
    if (exists) found.push(name);
  }
  if (found.length === 0) return;
  if (process.env.DEMO_RESET !== '1') {
    throw new Error(`the server at NATS_URL already holds service '${SERVICE}' from an earlier run (${found.join(', ')}); run with DEMO_RESET=1 to delete those streams first, or unset NATS_URL to use an embedded server`);
  }
  for (const name of found) await jsm.streams.delete(name);
  log(`DEMO_RESET=1: deleted ${found.join(', ')}`);
}

// ---- the run ---------------------------------------------------------------------

let phase = 'start';
function enter(next: string, line: string): void {
  phase = next;
  log(`── ${line}`);
}

function loadLine(ctx: LoadContext, watcher: UdbWatcher, last: { at: number; calls: Record<CallerVersion, number> }): void {
  const now = Date.now();
  const dt = Math.max(1, now - last.at) / 1000;
  const rate = (v: CallerVersion) => Math.round((ctx.byVersion[v].calls - last.calls[v]) / dt);
  const perVersion = ([1, 2, 3] as const).map((v) => `v${v} ${rate(v)}`).join(' · ');
  const total = rate(1) + rate(2) + rate(3);
  const versions = watcher.nodes().map((n) => `${n.id.replace('node-', '')}@${n.version}${n.status === 'upgrading' ? '↑' : ''}`).join(' ');
  log(`load  ${String(total).padStart(5)} calls/s (${perVersion}) | ok ${ctx.tally.ok} · disallowed ${ctx.tally.disallowed} · failed ${ctx.tally.failed} | nodes ${versions}`);
  last.at = now;
  last.calls = { 1: ctx.byVersion[1].calls, 2: ctx.byVersion[2].calls, 3: ctx.byVersion[3].calls };
}

async function run(): Promise<number> {
  log(`Molt demo: a bank service upgrades account v1 → v2 → v3 on three nodes under load (DEMO_SECONDS=${seconds})`);
  log(`  v1 (demo/service.ts): deposit / withdraw / balance in whole units`);
  log(`  v2 (demo/account-v2.ts): cents, a count of operations, and statement`);
  log(`  v3 (demo/account-v3.ts): holds (placeHold / releaseHold) and the available balance`);
  let url = process.env.NATS_URL;
  if (!url) {
    embedded = await startEmbeddedNats();
    url = embedded.url;
    log(`embedded nats-server on ${url} (JetStream in ${embedded.storeDir})`);
  } else log(`using the nats-server at NATS_URL=${url}`);

  const nc: NatsConnection = await connectNats({ servers: url, name: 'molt-demo' });
  let client: MoltClient | undefined;
  let watcher: UdbWatcher | undefined;
  const running: Callers[] = [];
  let reporter: ReturnType<typeof setInterval> | undefined;
  try {
    if (process.env.NATS_URL) await prepareServer(nc);

    const keys = generatePublisherKeys();
    const signer = signerFromSeed(keys.seed);
    log(`publisher key pair generated for this run; nodes trust ${keys.publicKey.slice(0, 12)}… (molt keys generate / molt node --trust)`);

    await Promise.all(nodeIds.map((id) => startNode(url!, id, keys.publicKey)));
    log(`${nodeIds.join(', ')} are serving ${TYPE}@1 (molt node demo/service.ts --trust …); the module they run has only version 1`);

    const udb = await openUdb(nc, SERVICE);
    watcher = await watchUdb(udb, TYPE, log);
    client = await createClient({ service: SERVICE, nats: nc, timeoutMs: 10_000 });

    // Stage both upgrades: nodes load them (future SOs in service) but none upgrades yet.
    const canaryWaitMs = Math.max(1500, ms(seconds * 0.15));
    const v2 = await publishUpgrade({ nats: nc, module: `${root}demo/account-v2.ts`, signer, schedule: { name: 'rolling', params: { batch: 1 } }, versions: { [TYPE]: 2 }, paused: true });
    const v2Id = v2.upgrades[0]!.rolloutId;
    log(`published ${TYPE}@2 as a signed bundle (${(v2.bundle.size / 1024).toFixed(1)} KiB, sha256 ${v2.bundle.digest.slice(0, 12)}…), schedule rolling batch 1, staged paused (molt publish demo/account-v2.ts --schedule rolling --param batch=1 --paused)`);
    const v3 = await publishUpgrade({ nats: nc, module: `${root}demo/account-v3.ts`, signer, schedule: { name: 'canary', params: { canaries: 1, waitMs: canaryWaitMs } }, versions: { [TYPE]: 3 }, paused: true });
    const v3Id = v3.upgrades[0]!.rolloutId;
    log(`published ${TYPE}@3 as a signed bundle (${(v3.bundle.size / 1024).toFixed(1)} KiB), schedule canary (1 canary, soak ${(canaryWaitMs / 1000).toFixed(1)}s), staged paused`);
    await watcher.until('every node to load v2 and v3', (ns) => ns.length === nodeIds.length && ns.every((n) => n.known.includes(2) && n.known.includes(3)), 30_000);
    log(`every node runs v1 and serves v1 (natively), v2 (future SO) and v3 (future SOs of v3 and v2, chained)`);

    // Load: callers of every version from the first call on.
    const accounts = Array.from({ length: accountCount }, (_, i) => `acct-${String(i).padStart(3, '0')}`);
    const ctx = createLoadContext(client, accounts, () => phase);
    enter('baseline', `load: ${callersPerVersion} callers each of ${TYPE} v1, v2 and v3 on ${accountCount} accounts, for ~${seconds}s`);
    const loadStarted = Date.now();
    const v1Callers = startCallers(ctx, 1, callersPerVersion, { thinkMs });
    running.push(v1Callers, startCallers(ctx, 2, callersPerVersion), startCallers(ctx, 3, callersPerVersion));
    const last = { at: Date.now(), calls: { 1: 0, 2: 0, 3: 0 } as Record<CallerVersion, number> };
    reporter = setInterval(() => loadLine(ctx, watcher!, last), Math.min(4000, Math.max(1500, ms(seconds / 12))));
    await sleep(ms(seconds * 0.2));

    enter('v2 rollout', `releasing the ${TYPE}@2 rollout: rolling, one node at a time (molt resume ${v2Id})`);
    await controlRollout(udb, v2Id, 'resume', undefined, 'demo');
    await watcher.until(`every node at ${TYPE}@2`, (ns) => ns.length === nodeIds.length && ns.every((n) => n.version === 2 && n.status === 'running'), 60_000);

    enter('v1 migration', `every node runs ${TYPE}@2. v1 callers migrate to v2 before v3 goes out (a v3 node does not serve v1, two versions back): stopping the ${v1Callers.count} v1 callers`);
    await v1Callers.stop();
    running.splice(running.indexOf(v1Callers), 1);
    running.push(startCallers(ctx, 2, callersPerVersion, { thinkMs, name: 'v2-migrated' }));
    log(`no v1 call is made from here on (${ctx.byVersion[1].calls} v1 calls so far, ${ctx.byVersion[1].failed} failed); ${callersPerVersion} more v2 callers took their place`);
    phase = 'v2 soak';
    await sleep(ms(seconds * 0.15));

    enter('v3 rollout', `releasing the ${TYPE}@3 rollout: canary, then the rest (molt resume ${v3Id})`);
    await controlRollout(udb, v3Id, 'resume', undefined, 'demo');
    await watcher.until(`every node at ${TYPE}@3`, (ns) => ns.length === nodeIds.length && ns.every((n) => n.version === 3 && n.status === 'running'), 60_000 + canaryWaitMs);
    await watcher.untilRollout(v3Id, 'done', (r) => r.state === 'done', 10_000);

    enter('v3', `every node runs ${TYPE}@3; load goes on`);
    await sleep(Math.max(ms(seconds * 0.1), loadStarted + ms(seconds) - Date.now()));
    clearInterval(reporter);
    reporter = undefined;
    loadLine(ctx, watcher, last);
    phase = 'stopping';
    await Promise.all(running.splice(0).map((c) => c.stop()));
    const loadMs = Date.now() - loadStarted;

    enter('check', `reading back all ${accountCount} accounts through a v3 client`);
    const check = await checkAccounts(client, ctx.ledger);
    const finalVersions = Object.fromEntries((await udb.nodes()).filter((n) => nodeIds.includes(n.id)).sort((a, b) => (a.id < b.id ? -1 : 1)).map((n) => [n.id, n.versions[TYPE]!]));
    const durationMs = Date.now() - started;

    // ---- summary ----
    const { tally } = ctx;
    log(`${tally.calls} calls in ${(loadMs / 1000).toFixed(1)}s (${Math.round(tally.calls / (loadMs / 1000))}/s): ${tally.ok} ok, ${tally.disallowed} disallowed, ${tally.failed} failed`);
    for (const v of [1, 2, 3] as const) {
      const t = ctx.byVersion[v];
      log(`  v${v} callers: ${t.calls} calls, ${t.ok} ok, ${t.disallowed} disallowed, ${t.failed} failed`);
    }
    for (const [what, d] of ctx.disallowedBy) log(`  disallowed by design: ${what} × ${d.count}${d.by ? ` (refused by the simulation object of ${TYPE}@${d.by})` : ''}: "${d.reason}"`);
    for (const f of ctx.failures.values()) log(`  FAILED ${f.code} × ${f.count} during ${f.phase} (v${f.version} ${f.message}): ${f.example}`);
    log(`accounts: ${(check.totalCents / 100).toFixed(2)} in total, ${check.openHolds} open holds of ${(check.heldCents / 100).toFixed(2)}; lost updates: ${check.lostUpdates}`);
    for (const p of check.problems.slice(0, 20)) log(`  MISMATCH ${p}`);
    const atV3 = nodeIds.every((id) => finalVersions[id] === 3);
    log(`final versions: ${Object.entries(finalVersions).map(([id, v]) => `${id}@${v}`).join(', ')}`);
    const success = tally.failed === 0 && check.lostUpdates === 0 && check.problems.length === 0 && atV3;
    log(success ? 'OK: no failed call, no lost update, every node at v3' : 'NOT OK: see the lines above');
    console.log(JSON.stringify({ calls: tally.calls, ok: tally.ok, disallowed: tally.disallowed, failed: tally.failed, lostUpdates: check.lostUpdates, finalVersions, durationMs }));
    return success ? 0 : 1;
  } finally {
    if (reporter) clearInterval(reporter);
    await Promise.all(running.map((c) => c.stop()));
    watcher?.stop();
    await client?.close();
    await nc.drain().catch(() => undefined);
  }
}

try {
  process.exitCode = await run();
} catch (e) {
  log(`demo failed during ${phase}: ${e instanceof Error ? e.message : String(e)}`);
  process.exitCode = 1;
} finally {
  await cleanup();
}
// Nothing of the run may keep the process alive (a stray timer or socket would hang `npm run demo`).
process.exit();
