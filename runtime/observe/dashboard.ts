/**
 * `molt dashboard`: a local web page over the upgrade database, live. The
 * server follows the UDB with the same watches as `molt status --watch`
 * (they only say when to read again: what is shown always comes from one
 * complete read), and pushes each new view to the page as a server-sent
 * event. The view is `molt status --json`'s, plus the traffic per version
 * that nodes publish in their records and which versions are ready to retire.
 *
 * Pause, resume and abort write the same control records as `molt pause`,
 * `molt resume` and `molt abort`. They act only when the dashboard's own NATS
 * user may write control records (the operator's): at start it asks
 * JetStream to store a control record on a condition that can never hold,
 * which a permitted user sees refused for the condition and any other user
 * for its permissions — nothing is written either way. The page says which.
 *
 * @module
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { NatsConnection } from '@nats-io/transport-node';
import { jetstream } from '@nats-io/jetstream';
import { ErrorCode, MoltError, isMoltError } from '../errors.ts';
import { UdbPrefix, type Udb } from '../udb/index.ts';
import { bucketNames } from '../wire/protocol.ts';
import { statusView, type StatusView } from '../operate/status.ts';
import { controlRollout } from '../operate/rollouts.ts';
import { dashboardPage } from './dashboard-page.ts';

export interface DashboardOptions {
  nc: NatsConnection;
  udb: Udb;
  service: string;
  /** TCP port (0 takes a free one). */
  port: number;
  /** Interface to listen on (default 127.0.0.1: the page is for whoever runs it). */
  host?: string;
  /** A node silent this long is shown dead (default 5000 ms). */
  leaseMs?: number;
  /** A version no caller has used for this long is shown as ready to retire (default 60 000 ms). */
  retireAfterMs?: number;
  /** Who the control records name (default `dashboard`). */
  by?: string;
}

/** A version's calls across live nodes, and whether it is ready to retire. */
export interface TrafficView {
  type: string;
  version: number;
  calls: number;
  simulated: number;
  disallowed: number;
  /** Native on some live node. */
  native: boolean;
  /** Older than every live node's version, and no new call for `retireAfterMs`. */
  readyToRetire: boolean;
  /** Milliseconds since its calls last changed (as this dashboard saw them). */
  idleMs: number;
}

/** What the page receives, in each event. */
export interface DashboardView extends StatusView {
  traffic: TrafficView[];
  /** Whether pause, resume and abort act (the dashboard's user may write control records). */
  control: { allowed: boolean; why: string };
}

export interface Dashboard {
  readonly port: number;
  /** The latest view sent to pages (undefined before the first read). */
  view(): DashboardView | undefined;
  close(): Promise<void>;
}

/**
 * Whether this connection may write the service's control records: a store
 * that JetStream refuses for its condition (permitted) or NATS for the
 * user's permissions (not). Nothing is ever written.
 */
export async function mayControl(nc: NatsConnection, service: string): Promise<{ allowed: boolean; why: string }> {
  const subject = `$KV.${bucketNames(service).udb}.${UdbPrefix.control}dashboard-probe`;
  try {
    await jetstream(nc).publish(subject, new Uint8Array(0), { expect: { lastSubjectSequence: Number.MAX_SAFE_INTEGER }, timeout: 3000 });
    // Stored: cannot happen (the sequence is never reached); say what was seen rather than guess.
    return { allowed: true, why: 'this dashboard may write control records' };
  } catch (e) {
    const text = e instanceof Error ? `${e.message} ${String((e as { cause?: unknown }).cause ?? '')}` : String(e);
    if (/wrong last sequence|last sequence mismatch/i.test(text)) return { allowed: true, why: "started with a user that may write control records (the operator's)" };
    if (/permission/i.test(text)) return { allowed: false, why: "started without the operator's credentials: its NATS user may not write control records. Start it as the operator to pause, resume and abort here" };
    return { allowed: false, why: `could not tell whether this dashboard may write control records (${text.trim().slice(0, 200)}); pause, resume and abort are off` };
  }
}

/** Starts the dashboard's web server. */
export async function startDashboard(options: DashboardOptions): Promise<Dashboard> {
  const { udb, service } = options;
  const leaseMs = options.leaseMs ?? 5000;
  const retireAfterMs = options.retireAfterMs ?? 60_000;
  const control = await mayControl(options.nc, service);
  const clients = new Set<ServerResponse>();
  let latest: DashboardView | undefined;
  let latestJson = '';
  /** Per `type@version`: total calls last seen, and since when. */
  const seen = new Map<string, { calls: number; since: number }>();

  function traffic(view: StatusView, records: Awaited<ReturnType<Udb['nodes']>>, now: number): TrafficView[] {
    const live = new Set(view.nodes.filter((n) => n.live).map((n) => n.id));
    const sums = new Map<string, { type: string; version: number; calls: number; simulated: number; disallowed: number }>();
    for (const r of records) {
      if (!live.has(r.id)) continue;
      for (const [type, byVersion] of Object.entries(r.traffic ?? {})) {
        for (const [version, t] of Object.entries(byVersion)) {
          const key = `${type}@${version}`;
          const sum = sums.get(key) ?? { type, version: Number(version), calls: 0, simulated: 0, disallowed: 0 };
          sum.calls += t.calls;
          sum.simulated += t.simulated;
          sum.disallowed += t.disallowed;
          sums.set(key, sum);
        }
      }
    }
    const out: TrafficView[] = [];
    for (const [key, s] of sums) {
      const before = seen.get(key);
      if (!before || before.calls !== s.calls) seen.set(key, { calls: s.calls, since: now });
      const idleMs = now - seen.get(key)!.since;
      const liveVersions = view.nodes.filter((n) => n.live && typeof n.versions[s.type] === 'number').map((n) => n.versions[s.type]!);
      const native = liveVersions.includes(s.version);
      const older = liveVersions.length > 0 && s.version < Math.min(...liveVersions);
      const retired = view.retired.some((r) => r.type === s.type && r.version >= s.version);
      // Version 0: the versions a node counts together (runtime/observe/calls.ts), never one to retire.
      out.push({ ...s, native, idleMs, readyToRetire: s.version > 0 && older && !retired && idleMs >= retireAfterMs });
    }
    return out.sort((a, b) => (a.type < b.type ? -1 : a.type > b.type ? 1 : a.version - b.version));
  }

  async function read(): Promise<DashboardView> {
    const snap = await udb.snapshot();
    const now = Date.now();
    const view = statusView(service, snap, now, leaseMs);
    return { ...view, traffic: traffic(view, snap.nodes, now), control };
  }

  function send(res: ServerResponse, json: string): void {
    res.write(`data: ${json}\n\n`);
  }

  let busy = false;
  let again = false;
  async function refresh(): Promise<void> {
    if (busy) {
      again = true;
      return;
    }
    busy = true;
    try {
      do {
        again = false;
        let view: DashboardView;
        try {
          view = await read();
        } catch (e) {
          // A failed read is shown as such, never as a world without nodes.
          const error = JSON.stringify({ error: { code: isMoltError(e) ? e.code : ErrorCode.Unavailable, message: e instanceof Error ? e.message : String(e) }, at: Date.now() });
          for (const res of clients) send(res, error);
          continue;
        }
        latest = view;
        const json = JSON.stringify(view);
        if (json === latestJson) continue;
        latestJson = json;
        for (const res of clients) send(res, json);
      } while (again);
    } finally {
      busy = false;
    }
  }

  let pending: ReturnType<typeof setTimeout> | undefined;
  const schedule = () => {
    if (pending) return;
    pending = setTimeout(() => {
      pending = undefined;
      void refresh();
    }, 100);
  };

  async function act(req: IncomingMessage, res: ServerResponse, rolloutId: string, command: 'pause' | 'resume' | 'abort'): Promise<void> {
    // A custom header: a page of another origin cannot send it without asking first (CORS), so it cannot press the buttons.
    if (req.headers['x-molt-dashboard'] !== '1') return json(res, 403, { error: { code: ErrorCode.OperationRefused, message: 'control requests come from the dashboard page only' } });
    if (!control.allowed) return json(res, 403, { error: { code: ErrorCode.OperationRefused, message: control.why } });
    try {
      const { message } = await controlRollout(udb, rolloutId, command, 'from the dashboard', options.by ?? 'dashboard');
      schedule();
      json(res, 200, { message });
    } catch (e) {
      const error = isMoltError(e) ? e : new MoltError(ErrorCode.Unavailable, e instanceof Error ? e.message : String(e));
      json(res, 409, { error: { code: error.code, message: error.message } });
    }
  }

  const page = dashboardPage(service);
  const server: Server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0]!;
    if (req.method === 'GET' && path === '/') {
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' }).end(page);
      return;
    }
    if (req.method === 'GET' && path === '/events') {
      res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-store', connection: 'keep-alive' });
      clients.add(res);
      if (latestJson) send(res, latestJson);
      req.on('close', () => clients.delete(res));
      return;
    }
    const m = /^\/api\/rollouts\/([A-Za-z0-9_.@-]{1,200})\/(pause|resume|abort)$/.exec(path);
    if (req.method === 'POST' && m) {
      void act(req, res, decodeURIComponent(m[1]!), m[2] as 'pause' | 'resume' | 'abort');
      return;
    }
    json(res, 404, { error: { code: 'NotFound', message: `no ${req.method} ${path} here` } });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', (e: NodeJS.ErrnoException) => reject(new MoltError(ErrorCode.Environment, `cannot serve the dashboard on ${options.host ?? '127.0.0.1'}:${options.port}: ${e.code ?? e.message}; choose another --port`, { cause: e })));
    server.listen(options.port, options.host ?? '127.0.0.1', () => resolve());
  });

  const stops = await Promise.all(
    [UdbPrefix.nodes, UdbPrefix.rollouts, UdbPrefix.control, UdbPrefix.progress, UdbPrefix.reports, UdbPrefix.retired].map((p) => udb.watch(p, schedule).catch(() => () => undefined)),
  );
  // Liveness and idle times change with time alone.
  const timer = setInterval(() => void refresh(), 1000);
  await refresh();

  return {
    port: (server.address() as AddressInfo).port,
    view: () => latest,
    async close() {
      clearInterval(timer);
      if (pending) clearTimeout(pending);
      for (const stop of stops) stop();
      for (const res of clients) res.end();
      clients.clear();
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
    },
  };
}

function json(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
}
