/**
 * Test support: a 3-server (or n-server) nats-server cluster on loopback, with
 * JetStream on every server, for failover tests.
 *
 * Each server has its own client port, cluster port, `server_name` and
 * JetStream store directory, and routes to every other server. A server can
 * be killed (SIGKILL, like a crashed machine) or stopped, and started again
 * on the same ports and store: it rejoins the cluster and catches up.
 *
 * `startNatsCluster()` resolves only once JetStream has a meta leader and
 * every server answers JetStream API calls, so buckets can be created with
 * `replicas: 3` at once.
 *
 * With `partitionable`, every route runs through a TCP proxy of its own (one
 * per ordered pair of servers: the routes server i solicits go through its
 * own proxies), so a test can cut one server off from the others — a
 * partition between the servers, each server still up and serving its
 * clients — and heal it.
 */
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { jetstreamManager } from '@nats-io/jetstream';
import { freePort, startEmbeddedNats, type EmbeddedNats } from '../../runtime/internal.ts';
import { startNatsProxy, type NatsProxy } from './proxy.ts';
import type { ChildNode } from './nats.ts';

/** One server of a test cluster. */
export interface ClusterServer {
  readonly index: number;
  readonly name: string;
  /** `nats://127.0.0.1:<port>` */
  readonly url: string;
  readonly port: number;
  readonly clusterPort: number;
  /** HTTP monitoring port (`/jsz` shows this server's own replica of each stream). */
  readonly monitorPort: number;
  readonly storeDir: string;
  /** The running process, or undefined while the server is down. */
  readonly embedded: EmbeddedNats | undefined;
  readonly running: boolean;
}

/** A running test cluster. */
export interface NatsCluster {
  readonly servers: readonly ClusterServer[];
  /** Every client URL, in server order. */
  readonly urls: string[];
  /** The URLs joined with commas, as `molt node --nats` takes them. */
  readonly natsArg: string;
  /** Kills server `i` (default SIGKILL: no clean shutdown, like a crashed machine). */
  kill(i: number, signal?: NodeJS.Signals): Promise<void>;
  /** Starts server `i` again on the same ports and store directory. */
  restart(i: number): Promise<void>;
  /** Resolves once JetStream has a meta leader and every running server answers. */
  waitReady(timeoutMs?: number): Promise<void>;
  /**
   * Cuts server `i` off from every other server (needs `partitionable`): its
   * routes stop forwarding in both directions, nothing is closed, and new
   * routes to or from it hang the same way. Its clients stay connected to it.
   */
  isolate(i: number): void;
  /** Ends {@link NatsCluster.isolate}: the stalled routes are reset, and the servers route again. */
  rejoin(i: number): void;
  /**
   * Ends a brief {@link NatsCluster.isolate} as a network hiccup ends: what
   * the routes held is delivered, in order, and they carry on (for cuts
   * shorter than any of the servers' timeouts).
   */
  heal(i: number): void;
  /** Stops every server and removes the store directories. */
  stop(): Promise<void>;
}

export interface NatsClusterOptions {
  /** Number of servers (default 3). */
  size?: number;
  /** Cluster name (default `molt-test`). */
  name?: string;
  /** Print the servers' logs to stderr. */
  verbose?: boolean;
  /** Route every pair of servers through a proxy, so that a server can be isolated (see {@link NatsCluster.isolate}). */
  partitionable?: boolean;
}

interface ServerSlot {
  index: number;
  name: string;
  port: number;
  clusterPort: number;
  monitorPort: number;
  storeDir: string;
  embedded: EmbeddedNats | undefined;
  /** With `partitionable`: the proxy this server's route to server j goes through, by j. */
  routeProxies?: Map<number, NatsProxy>;
  /** With `partitionable`: a port nothing listens on, advertised as this server's route address. */
  deadPort?: number;
}

/** The configuration text of one server; startEmbeddedNats's flags add host, port, `-js`, the store directory and the name. */
function serverConfig(cluster: string, slot: ServerSlot, all: ServerSlot[]): string {
  const routeTo = (s: ServerSlot) => {
    const proxy = slot.routeProxies?.get(s.index);
    return proxy ? proxy.url.replace(/^nats:/, 'nats-route:') : `nats-route://127.0.0.1:${s.clusterPort}`;
  };
  const routes = all.filter((s) => s !== slot).map((s) => `    "${routeTo(s)}"`);
  return [
    `server_name: "${slot.name}"`,
    `http_port: ${slot.monitorPort}`,
    // Lame-duck and ping settings short enough that a dead peer is noticed in a test's time.
    `ping_interval: "2s"`,
    `ping_max: 2`,
    `cluster {`,
    `  name: "${cluster}"`,
    `  listen: "127.0.0.1:${slot.clusterPort}"`,
    // Servers tell each other their route addresses and connect to those they
    // learn of: through the proxies, a dead address leaves them only the
    // routes configured here, each through its own proxy.
    ...(slot.deadPort === undefined ? [] : [`  advertise: "127.0.0.1:${slot.deadPort}"`]),
    `  routes: [`,
    routes.join(',\n'),
    `  ]`,
    `}`,
    '',
  ].join('\n');
}

/** Starts an n-server JetStream cluster on loopback and waits until it has a meta leader. */
export async function startNatsCluster(options: NatsClusterOptions = {}): Promise<NatsCluster> {
  const size = options.size ?? 3;
  const clusterName = options.name ?? 'molt-test';
  const base = mkdtempSync(join(tmpdir(), 'molt-cluster-'));
  const slots: ServerSlot[] = [];
  const taken = new Set<number>();
  const port = async () => {
    for (;;) {
      const p = await freePort();
      if (!taken.has(p)) {
        taken.add(p);
        return p;
      }
    }
  };
  for (let i = 0; i < size; i++) {
    slots.push({ index: i, name: `n${i + 1}`, port: await port(), clusterPort: await port(), monitorPort: await port(), storeDir: join(base, `n${i + 1}`), embedded: undefined });
  }

  if (options.partitionable) {
    for (const from of slots) {
      from.deadPort = await port();
      from.routeProxies = new Map();
      for (const to of slots) if (to !== from) from.routeProxies.set(to.index, await startNatsProxy(`nats://127.0.0.1:${to.clusterPort}`));
    }
  }
  /** Every proxy of a route to or from server i. */
  const routesOf = (i: number): NatsProxy[] => {
    const out: NatsProxy[] = [];
    for (const s of slots) {
      if (!s.routeProxies) throw new Error('the cluster was started without partitionable: true');
      for (const [to, proxy] of s.routeProxies) if (s.index === i || to === i) out.push(proxy);
    }
    return out;
  };
  const closeProxies = () => Promise.allSettled(slots.flatMap((s) => [...(s.routeProxies?.values() ?? [])].map((p) => p.close())));

  const startSlot = async (slot: ServerSlot) => {
    slot.embedded = await startEmbeddedNats({
      port: slot.port,
      storeDir: slot.storeDir,
      name: slot.name,
      config: serverConfig(clusterName, slot, slots),
      verbose: options.verbose ?? false,
    });
  };

  // startEmbeddedNats writes its config file into the store directory, so it must exist.
  for (const s of slots) mkdirSync(s.storeDir, { recursive: true });

  try {
    await Promise.all(slots.map(startSlot));
  } catch (e) {
    await Promise.allSettled(slots.map((s) => s.embedded?.stop()));
    await closeProxies();
    rmSync(base, { recursive: true, force: true });
    throw e;
  }

  const view = (s: ServerSlot): ClusterServer => ({
    index: s.index,
    name: s.name,
    url: `nats://127.0.0.1:${s.port}`,
    port: s.port,
    clusterPort: s.clusterPort,
    monitorPort: s.monitorPort,
    storeDir: s.storeDir,
    get embedded() {
      return s.embedded;
    },
    get running() {
      return s.embedded !== undefined;
    },
  });

  const cluster: NatsCluster = {
    servers: slots.map(view),
    urls: slots.map((s) => `nats://127.0.0.1:${s.port}`),
    get natsArg() {
      return this.urls.join(',');
    },
    async kill(i, signal = 'SIGKILL') {
      const slot = slots[i];
      if (!slot?.embedded) return;
      const child = slot.embedded.process;
      await new Promise<void>((resolve) => {
        if (child.exitCode !== null || child.signalCode !== null) return resolve();
        child.once('exit', () => resolve());
        child.kill(signal);
      });
      slot.embedded = undefined;
    },
    async restart(i) {
      const slot = slots[i];
      if (!slot) throw new Error(`no server ${i}`);
      if (slot.embedded) return;
      await startSlot(slot);
    },
    async waitReady(timeoutMs = 30_000) {
      const deadline = Date.now() + timeoutMs;
      for (const slot of slots) {
        if (!slot.embedded) continue;
        await waitForJetStream(`nats://127.0.0.1:${slot.port}`, deadline);
      }
      // A meta leader answers before every peer has joined the meta group; a
      // replicated stream created then fails with "no suitable peers".
      await waitForMetaPeers(slots.filter((s) => s.embedded).map((s) => s.monitorPort), deadline);
    },
    isolate(i) {
      for (const proxy of routesOf(i)) proxy.cut('both');
    },
    rejoin(i) {
      // Reset, not healed: a route the servers gave up on during the cut must not get its held bytes late.
      for (const proxy of routesOf(i)) proxy.drop();
    },
    heal(i) {
      for (const proxy of routesOf(i)) proxy.heal();
    },
    async stop() {
      await Promise.allSettled(slots.map((s) => s.embedded?.stop({ keepStore: true })));
      await closeProxies();
      for (const s of slots) s.embedded = undefined;
      rmSync(base, { recursive: true, force: true });
    },
  };

  try {
    await cluster.waitReady();
  } catch (e) {
    await cluster.stop();
    throw e;
  }
  return cluster;
}

/** Polls `$JS.API.INFO` through `url` until it answers (which needs a meta leader). */
async function waitForJetStream(url: string, deadline: number): Promise<void> {
  let last: unknown;
  while (Date.now() < deadline) {
    let nc: NatsConnection | undefined;
    try {
      nc = await connect({ servers: url, reconnect: false, timeout: 1000 });
      const jsm = await jetstreamManager(nc, { timeout: 1000 });
      await jsm.getAccountInfo();
      return;
    } catch (e) {
      last = e;
    } finally {
      await nc?.close().catch(() => undefined);
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`JetStream on ${url} has no meta leader: ${String(last)}`);
}

/** Polls each server's `/jsz` until they agree on a meta leader that has every running server as a current peer. */
async function waitForMetaPeers(monitorPorts: number[], deadline: number): Promise<void> {
  let last = '';
  while (Date.now() < deadline) {
    try {
      const views = await Promise.all(
        monitorPorts.map(async (port) => {
          const jsz = (await (await fetch(`http://127.0.0.1:${port}/jsz`)).json()) as { meta_cluster?: { leader?: string; replicas?: Array<{ current?: boolean }> } };
          return jsz.meta_cluster;
        }),
      );
      // Every server names the same leader, and the leader (the only one that
      // lists them) sees every other server as a current peer.
      const leader = views[0]?.leader;
      const agreed = leader !== undefined && views.every((m) => m?.leader === leader);
      const gathered = views.some((m) => (m?.replicas ?? []).filter((r) => r.current).length >= monitorPorts.length - 1);
      const ready = agreed && gathered;
      if (ready) return;
      last = JSON.stringify(views);
    } catch (e) {
      last = String(e);
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`the JetStream meta group did not gather every server: ${last.slice(0, 500)}`);
}

/** One server's own replica of a stream, from its `/jsz` monitoring endpoint. */
export interface ReplicaState {
  server: string;
  messages: number;
  bytes: number;
  firstSeq: number;
  lastSeq: number;
}

/**
 * The state of `stream` as each running server's replica holds it (not the
 * leader's view): equal message counts, bytes and sequences on every server
 * mean the replicas hold the same log.
 */
export async function replicaStates(cluster: NatsCluster, stream: string): Promise<ReplicaState[]> {
  const out: ReplicaState[] = [];
  for (const s of cluster.servers) {
    if (!s.running) continue;
    const res = await fetch(`http://127.0.0.1:${s.monitorPort}/jsz?accounts=true&streams=true`);
    const jsz = (await res.json()) as { account_details?: Array<{ stream_detail?: Array<{ name: string; state: { messages: number; bytes: number; first_seq: number; last_seq: number } }> }> };
    const detail = (jsz.account_details ?? []).flatMap((a) => a.stream_detail ?? []).find((d) => d.name === stream);
    if (!detail) throw new Error(`server ${s.name} holds no replica of ${stream}`);
    out.push({ server: s.name, messages: detail.state.messages, bytes: detail.state.bytes, firstSeq: detail.state.first_seq, lastSeq: detail.state.last_seq });
  }
  return out;
}

/** One KV entry as one server's replica holds it. */
export interface ReplicaEntry {
  revision: number;
  bytes: Uint8Array;
}

/**
 * Reads every key of KV bucket `bucket` through the server at `url`. (With
 * `allow_direct` off, as Molt sets it for replicated state, the stream leader
 * answers, whichever server the request enters: compare replicas with
 * {@link replicaStates}.)
 */
export async function readBucketVia(url: string, bucket: string, prefix = '>'): Promise<Map<string, ReplicaEntry>> {
  const { Kvm } = await import('@nats-io/kv');
  const nc = await connect({ servers: url, reconnect: false, timeout: 2000 });
  try {
    const kv = await new Kvm(nc).open(bucket);
    const out = new Map<string, ReplicaEntry>();
    const keys: string[] = [];
    for await (const k of await kv.keys(prefix)) keys.push(k);
    for (const k of keys) {
      const e = await kv.get(k);
      if (e && e.operation === 'PUT') out.set(k, { revision: e.revision, bytes: e.value });
    }
    return out;
  } finally {
    await nc.close().catch(() => undefined);
  }
}

/** The replication state of a stream as its leader reports it: every replica current with no lag? */
export async function streamReplicas(url: string, stream: string): Promise<{ leader: string | undefined; replicas: Array<{ name: string; current: boolean; lag: number }>; messages: number; lastSeq: number }> {
  const nc = await connect({ servers: url, reconnect: false, timeout: 2000 });
  try {
    const jsm = await jetstreamManager(nc, { timeout: 3000 });
    const info = await jsm.streams.info(stream);
    return {
      leader: info.cluster?.leader,
      replicas: (info.cluster?.replicas ?? []).map((r) => ({ name: r.name, current: r.current, lag: r.lag ?? 0 })),
      messages: info.state.messages,
      lastSeq: info.state.last_seq,
    };
  } finally {
    await nc.close().catch(() => undefined);
  }
}

/**
 * Moves the leadership of `stream` where a test needs it — `{ off: name }`
 * (`n1`, …) or `{ onto: name }` — by asking each leader that does not fit to
 * step down until one that does is elected (on three servers a few tries at
 * most). A test that cuts off one stream's leader uses it to keep other
 * streams' leaders in or out of the cut, so that it tests the case it names.
 */
export async function moveStreamLeader(url: string, stream: string, where: { off: string } | { onto: string }, timeoutMs = 30_000): Promise<void> {
  const fits = (leader: string) => ('off' in where ? leader !== where.off : leader === where.onto);
  const deadline = Date.now() + timeoutMs;
  const nc = await connect({ servers: url, reconnect: false, timeout: 2000 });
  try {
    for (;;) {
      const { leader } = await streamReplicas(url, stream).catch(() => ({ leader: undefined }));
      if (leader !== undefined && fits(leader)) return;
      if (Date.now() > deadline) throw new Error(`the leader of ${stream} is still ${leader ?? 'unknown'} (wanted ${JSON.stringify(where)}) after ${timeoutMs} ms`);
      if (leader !== undefined) await nc.request(`$JS.API.STREAM.LEADER.STEPDOWN.${stream}`, undefined, { timeout: 3000 }).catch(() => undefined);
      await new Promise((r) => setTimeout(r, 500));
    }
  } finally {
    await nc.close().catch(() => undefined);
  }
}

/** The server leading the JetStream meta group (which places every stream and consumer), as server `i` sees it. */
export async function metaLeader(cluster: NatsCluster, i = 0): Promise<string | undefined> {
  const res = await fetch(`http://127.0.0.1:${cluster.servers[i]!.monitorPort}/jsz`, { signal: AbortSignal.timeout(2000) });
  return ((await res.json()) as { meta_cluster?: { leader?: string } }).meta_cluster?.leader;
}

/**
 * Who leads what, as each running server sees it of `streamNames` (for failure messages): a
 * stream without a leader means JetStream itself is unavailable (an election
 * that has not finished), not that Molt failed to recover.
 */
export async function jetStreamView(cluster: NatsCluster, streamNames: readonly string[]): Promise<string> {
  const lines: string[] = [];
  // A leader that is down has not been replaced yet (its followers have not noticed, or cannot elect).
  const named = (leader: string | undefined) => (!leader ? 'NONE' : cluster.servers.some((s) => s.name === leader && !s.running) ? `${leader} (down)` : leader);
  for (const s of cluster.servers) {
    if (!s.running) {
      lines.push(`  ${s.name}: down`);
      continue;
    }
    try {
      const res = await fetch(`http://127.0.0.1:${s.monitorPort}/jsz?accounts=true&streams=true`, { signal: AbortSignal.timeout(2000) });
      const jsz = (await res.json()) as { meta_cluster?: { leader?: string }; account_details?: Array<{ stream_detail?: Array<{ name: string; cluster?: { leader?: string } }> }> };
      const streams = (jsz.account_details ?? []).flatMap((a) => a.stream_detail ?? []).filter((d) => streamNames.includes(d.name));
      lines.push(`  ${s.name}: meta leader ${named(jsz.meta_cluster?.leader)}; ${streams.map((d) => `${d.name} leader ${named(d.cluster?.leader)}`).join(', ')}`);
    } catch (e) {
      lines.push(`  ${s.name}: /jsz failed: ${String(e)}`);
    }
  }
  return `JetStream now:\n${lines.join('\n')}`;
}

/** A node's placement events from its log (fences, renewals, watch restarts; runs of failed heartbeats folded into one line). */
export function placementEvents(node: ChildNode): string {
  const out: string[] = [];
  let failed: { from: string; to: string; n: number; error: string } | undefined;
  const flush = () => {
    if (failed) out.push(`  ${failed.from}..${failed.to} heartbeat failed ×${failed.n} (${failed.error})`);
    failed = undefined;
  };
  for (const line of node.output().split('\n')) {
    if (!line.startsWith('{')) continue;
    let rec: { time?: string; msg?: string; error?: string; node?: string };
    try {
      rec = JSON.parse(line) as typeof rec;
    } catch {
      continue;
    }
    const at = rec.time?.slice(11, 23) ?? '?';
    if (rec.msg === 'heartbeat failed') {
      if (failed) Object.assign(failed, { to: at, n: failed.n + 1 });
      else failed = { from: at, to: at, n: 1, error: String(rec.error).slice(0, 80) };
      continue;
    }
    if (!/lease|membership watch|fence/.test(rec.msg ?? '')) continue;
    flush();
    out.push(`  ${at} ${rec.msg}`);
  }
  flush();
  return `node ${/--id (\S+)/.exec(node.process.spawnargs.join(' '))?.[1] ?? '?'}:\n${out.slice(-30).join('\n')}`;
}
