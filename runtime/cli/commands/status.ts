/**
 * `molt status`: the upgrade database at a glance — nodes with their versions
 * and status, one progress bar per rollout, and refused or failed upgrades.
 * `--watch` keeps it live (redrawn on a terminal; plain lines of what changed
 * otherwise), `--json` prints the data for scripts.
 *
 * Also home of the connection and service helpers the other operator
 * commands share.
 *
 * @module
 */
import type { Command } from 'commander';
import type { NatsConnection } from '@nats-io/transport-node';
import { Kvm } from '@nats-io/kv';
import { ErrorCode, MoltError } from '../../errors.ts';
import { addNatsFlags, connectFromFlags, type NatsFlags } from '../connection.ts';
import { Udb, UdbPrefix, type NodeRecord, type RolloutRecord, type UdbSnapshot } from '../../udb/index.ts';
import { bucketNames } from '../../wire/protocol.ts';

/** Connection flags shared by the operator commands (../connection.ts) and `--service`. */
export interface ConnectionFlags extends NatsFlags {
  service?: string;
}

/** Adds the NATS connection flags and `--service` to a command. */
export function addConnectionFlags(cmd: Command): Command {
  return addNatsFlags(cmd).option('--service <name>', 'the service (default: $MOLT_SERVICE, or the only one on this NATS)');
}

export { connectFromFlags };

/** The service to act on: `--service`, `$MOLT_SERVICE`, or the only service whose UDB exists. */
export async function serviceFromFlags(nc: NatsConnection, flags: ConnectionFlags): Promise<string> {
  const explicit = flags.service ?? process.env.MOLT_SERVICE;
  if (explicit) return explicit;
  const found: string[] = [];
  for await (const status of new Kvm(nc).list()) {
    const m = /^molt_([a-z][a-z0-9-]*)_udb$/.exec(status.bucket);
    if (m) found.push(m[1]!);
  }
  if (found.length === 1) return found[0]!;
  if (found.length === 0) throw new MoltError(ErrorCode.OperationRefused, 'no Molt service on this NATS yet (no molt_<service>_udb bucket): start a node first, or pass --service');
  throw new MoltError(ErrorCode.OperationRefused, `several services on this NATS (${found.join(', ')}): pass --service <name>`);
}

/** Opens a service's UDB without creating it. */
export async function openUdbFor(nc: NatsConnection, service: string): Promise<Udb> {
  const kv = await new Kvm(nc).open(bucketNames(service).udb);
  try {
    await kv.status();
  } catch {
    throw new MoltError(ErrorCode.OperationRefused, `service '${service}' has no upgrade database on this NATS (bucket ${bucketNames(service).udb}): is the name right, and has a node run?`);
  }
  return new Udb(kv, service);
}

// ---- the view ----------------------------------------------------------------

/** A node as `molt status` shows it. */
export interface NodeStatusView {
  id: string;
  live: boolean;
  status: NodeRecord['status'];
  versions: Record<string, number>;
  heartbeatAgoMs: number;
  host: string;
  pid: number;
  lastError?: string;
}

/** A rollout as `molt status` shows it. */
export interface RolloutStatusView extends RolloutRecord {
  /** Live nodes running `to` or later, out of live nodes hosting the type. */
  upgraded: number;
  total: number;
  /** Per node: its step in this rollout and what it waits for. */
  nodes: Array<{ nodeId: string; step: string; note?: string; error?: string }>;
}

/** Everything `molt status` prints (`--json` prints exactly this). */
export interface StatusView {
  service: string;
  at: number;
  nodes: NodeStatusView[];
  rollouts: RolloutStatusView[];
  retired: Array<{ type: string; version: number }>;
  problems: Array<{ nodeId: string; key: string; code: string; reason?: string; message: string; at: number }>;
}

/** Builds the view from a UDB snapshot. */
export function statusView(service: string, snap: UdbSnapshot, now: number, leaseMs: number): StatusView {
  const nodes: NodeStatusView[] = snap.nodes
    .map((n) => ({
      id: n.id,
      live: n.status !== 'stopped' && now - n.heartbeatAt <= leaseMs,
      status: n.status,
      versions: n.versions,
      heartbeatAgoMs: Math.max(0, now - n.heartbeatAt),
      host: n.host,
      pid: n.pid,
      ...(n.lastError ? { lastError: n.lastError } : {}),
    }))
    .sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  const rollouts: RolloutStatusView[] = snap.rollouts
    .map((r) => {
      const hosting = nodes.filter((n) => n.live && typeof n.versions[r.type] === 'number');
      const progress = snap.progress
        .filter((p) => p.rolloutId === r.rolloutId)
        .map((p) => ({ nodeId: p.nodeId, step: p.step, ...(p.note ? { note: p.note } : {}), ...(p.error ? { error: p.error } : {}) }))
        .sort((a, b) => (a.nodeId < b.nodeId ? -1 : 1));
      return { ...r, upgraded: hosting.filter((n) => n.versions[r.type]! >= r.to).length, total: hosting.length, nodes: progress };
    })
    .sort((a, b) => a.startedAt - b.startedAt);
  return {
    service,
    at: now,
    nodes,
    rollouts,
    retired: snap.retired.map((r) => ({ type: r.type, version: r.version })),
    problems: snap.reports.map((r) => ({ nodeId: r.nodeId, key: r.key, code: r.code, ...(r.reason ? { reason: r.reason } : {}), message: r.message, at: r.at })).sort((a, b) => a.at - b.at),
  };
}

function bar(done: number, total: number, width: number, unicode: boolean): string {
  const filled = total === 0 ? 0 : Math.round((done / total) * width);
  return unicode ? `${'█'.repeat(filled)}${'░'.repeat(width - filled)}` : `${'#'.repeat(filled)}${'-'.repeat(width - filled)}`;
}

/** The progress bar of a rollout: nodes upgraded, or, once it is rolling back, nodes back at `from`. */
function progressCell(r: RolloutStatusView, width: number, unicode: boolean): string {
  if (r.state === 'rolling-back' || r.state === 'rolled-back') {
    const back = r.total - r.upgraded;
    return `[${bar(back, r.total, width, unicode)}] ${back}/${r.total} back at ${r.from}`;
  }
  return `[${bar(r.upgraded, r.total, width, unicode)}] ${r.upgraded}/${r.total}`;
}

function ago(ms: number): string {
  return ms < 1000 ? `${ms}ms` : ms < 120_000 ? `${(ms / 1000).toFixed(1)}s` : `${Math.round(ms / 60_000)}m`;
}

function table(rows: string[][]): string[] {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)));
  return rows.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!))).join('  ').trimEnd());
}

/** The full report, as lines. */
export function renderStatus(view: StatusView, options: { unicode: boolean }): string[] {
  const lines: string[] = [];
  const live = view.nodes.filter((n) => n.live).length;
  lines.push(`service ${view.service}: ${live} live node${live === 1 ? '' : 's'}${view.nodes.length > live ? `, ${view.nodes.length - live} gone` : ''}`);
  if (view.nodes.length > 0) {
    lines.push('');
    const rows = [['NODE', 'STATUS', 'VERSIONS', 'HEARTBEAT', 'LAST ERROR']];
    for (const n of view.nodes) {
      const versions = Object.entries(n.versions).map(([t, v]) => `${t}@${v}`).join(' ');
      rows.push([n.id, n.live ? n.status : n.status === 'stopped' ? 'stopped' : 'dead', versions, `${ago(n.heartbeatAgoMs)} ago`, n.lastError ? n.lastError.slice(0, 100) : '']);
    }
    lines.push(...table(rows));
  }
  if (view.rollouts.length > 0) {
    lines.push('');
    const rows = [['ROLLOUT', 'UPGRADE', 'SCHEDULE', 'STATE', 'PROGRESS']];
    for (const r of view.rollouts) {
      const params = Object.keys(r.schedule.params).length ? ` ${JSON.stringify(r.schedule.params)}` : '';
      rows.push([r.rolloutId, `${r.type} ${r.from}→${r.to}`, `${r.schedule.name}${params}`, r.state + (r.reason && r.state !== 'done' ? ` (${r.reason})` : ''), progressCell(r, 20, options.unicode)]);
    }
    lines.push(...table(rows));
    for (const r of view.rollouts) {
      if (r.state === 'done' || r.state === 'rolled-back') continue;
      for (const p of r.nodes) {
        if (p.step === 'upgraded' || p.step === 'rolled-back') continue;
        lines.push(`  ${r.rolloutId} ${p.nodeId}: ${p.step}${p.note ? ` — ${p.note}` : ''}${p.error ? ` — ${p.error}` : ''}`);
      }
    }
  }
  if (view.retired.length > 0) {
    lines.push('', `retired: ${view.retired.map((r) => `${r.type}@${r.version}`).join(', ')}`);
  }
  if (view.problems.length > 0) {
    lines.push('', 'PROBLEMS');
    for (const p of view.problems) lines.push(`  ${new Date(p.at).toISOString()} ${p.nodeId} ${p.key}: ${p.code}${p.reason ? ` (${p.reason})` : ''}: ${p.message}`);
  }
  return lines;
}

/** One line per rollout and node, without times: what a non-terminal `--watch` prints when it changes. */
function changeLines(view: StatusView): string[] {
  return [
    ...view.nodes.map((n) => `node ${n.id} ${n.live ? n.status : 'dead'} ${Object.entries(n.versions).map(([t, v]) => `${t}@${v}`).join(' ')}${n.lastError ? ` error: ${n.lastError}` : ''}`),
    ...view.rollouts.map((r) => {
      const back = r.state === 'rolling-back' || r.state === 'rolled-back';
      const done = back ? r.total - r.upgraded : r.upgraded;
      return `rollout ${r.rolloutId} ${r.type} ${r.from}→${r.to} ${r.state} ${done}/${r.total}${back ? ` back at ${r.from}` : ''} [${bar(done, r.total, 10, false)}]`;
    }),
    ...view.problems.map((p) => `problem ${p.nodeId} ${p.key} ${p.code}${p.reason ? ` (${p.reason})` : ''}`),
  ];
}

interface StatusFlags extends ConnectionFlags {
  watch?: boolean;
  json?: boolean;
  lease: string;
  untilDone?: boolean;
}

function allOver(view: StatusView): boolean {
  return view.rollouts.length > 0 && view.rollouts.every((r) => r.state === 'done' || r.state === 'aborted' || r.state === 'rolled-back');
}

export function registerStatusCommand(program: Command): void {
  addConnectionFlags(program.command('status'))
    .description('nodes, versions and rollouts of a service, from its upgrade database')
    .option('--watch', 'keep watching (redraws on a terminal; prints changed lines otherwise)')
    .option('--json', 'print JSON (with --watch: one document per line on each change)')
    .option('--until-done', 'with --watch: exit once every rollout is done, aborted or rolled back')
    .option('--lease <ms>', 'a node silent this long is shown dead', '5000')
    .action(async (flags: StatusFlags) => {
      const nc = await connectFromFlags(flags, 'molt status');
      try {
        const service = await serviceFromFlags(nc, flags);
        const udb = await openUdbFor(nc, service);
        const leaseMs = Number(flags.lease);
        const read = async () => statusView(service, await udb.snapshot(), Date.now(), leaseMs);
        const tty = process.stdout.isTTY === true && !flags.json;
        const print = (view: StatusView) => {
          if (flags.json) process.stdout.write(`${JSON.stringify(view)}\n`);
          else process.stdout.write(`${renderStatus(view, { unicode: tty }).join('\n')}\n`);
        };
        if (!flags.watch) {
          print(await read());
          return;
        }
        await watchStatus(udb, read, { tty, json: flags.json === true, untilDone: flags.untilDone === true, print });
      } finally {
        await nc.drain().catch(() => undefined);
      }
    });
}

async function watchStatus(
  udb: Udb,
  read: () => Promise<StatusView>,
  o: { tty: boolean; json: boolean; untilDone: boolean; print: (v: StatusView) => void },
): Promise<void> {
  let printed = new Set<string>();
  let lastJson = '';
  let finish: () => void = () => undefined;
  const finished = new Promise<void>((resolve) => (finish = resolve));
  let pending: ReturnType<typeof setTimeout> | undefined;
  let busy = false;
  const refresh = async () => {
    if (busy) return schedule();
    busy = true;
    try {
      const view = await read();
      if (o.tty) {
        process.stdout.write('\x1b[H\x1b[2J' + renderStatus(view, { unicode: true }).join('\n') + '\n\n(watching; Ctrl-C to stop)\n');
      } else if (o.json) {
        const { at: _at, ...rest } = view;
        const key = JSON.stringify({ ...rest, nodes: rest.nodes.map(({ heartbeatAgoMs: _h, ...n }) => n) });
        if (key !== lastJson) {
          lastJson = key;
          o.print(view);
        }
      } else {
        const lines = changeLines(view);
        const time = new Date(view.at).toISOString();
        for (const line of lines) if (!printed.has(line)) process.stdout.write(`${time} ${line}\n`);
        printed = new Set(lines);
      }
      if (o.untilDone && allOver(view)) finish();
    } catch (e) {
      process.stderr.write(`molt status: ${(e as Error).message}\n`);
    } finally {
      busy = false;
    }
  };
  function schedule(): void {
    if (pending) return;
    pending = setTimeout(() => {
      pending = undefined;
      void refresh();
    }, 100);
  }
  const stops = await Promise.all(
    [UdbPrefix.nodes, UdbPrefix.rollouts, UdbPrefix.control, UdbPrefix.progress, UdbPrefix.reports, UdbPrefix.retired].map((p) => udb.watch(p, schedule)),
  );
  // Heartbeat ages and liveness change with time alone.
  const timer = setInterval(() => void refresh(), 1000);
  process.once('SIGINT', finish);
  process.once('SIGTERM', finish);
  await refresh();
  await finished;
  clearInterval(timer);
  if (pending) clearTimeout(pending);
  for (const stop of stops) stop();
}
