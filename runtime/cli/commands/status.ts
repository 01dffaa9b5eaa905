/**
 * `molt status`: the upgrade database at a glance (runtime/operate/status.ts
 * builds the view and the report). `--watch` keeps it live (redrawn on a
 * terminal; plain lines of what changed otherwise), `--json` prints the data
 * for scripts.
 *
 * @module
 */
import type { Command } from 'commander';
import type { Udb } from '../../udb/index.ts';
import type { StatusErrorView, StatusView } from '../../operate/status.ts';
import { addConnectionFlags, type ConnectionFlags } from '../flags.ts';
import { withService } from '../session.ts';

interface StatusFlags extends ConnectionFlags {
  watch?: boolean;
  json?: boolean;
  lease: string;
  untilDone?: boolean;
  all?: boolean;
}

export function registerStatusCommand(program: Command): void {
  addConnectionFlags(program.command('status'))
    .description('nodes, versions and rollouts of a service, from its upgrade database')
    .option('--watch', 'keep watching (redraws on a terminal; prints changed lines otherwise)')
    .option('--json', 'print JSON (with --watch: one document per line on each change)')
    .option('--until-done', 'with --watch: exit once every rollout is done, aborted or rolled back')
    .option('--lease <ms>', 'a node silent this long is shown dead', '5000')
    .option('--all', 'list every node and rollout on record, not only the live nodes, those gone within the hour, the rollouts not over and the newest of each type')
    .action(async (flags: StatusFlags) => {
      const { statusView, statusErrorView, renderStatus } = await import('../../operate/status.ts');
      await withService(flags, 'molt status', async ({ service, udb }) => {
        const leaseMs = Number(flags.lease);
        const read = async () => statusView(service, await udb.snapshot(), Date.now(), leaseMs);
        const tty = process.stdout.isTTY === true && !flags.json;
        const print = (view: StatusView | StatusErrorView) => {
          if (flags.json) process.stdout.write(`${JSON.stringify(view)}\n`);
          else if ('error' in view) process.stderr.write(`molt status: ${new Date(view.at).toISOString()} ${view.error.code}: ${view.error.message} (the next read may succeed)\n`);
          else process.stdout.write(`${renderStatus(view, { unicode: tty, all: flags.all === true }).join('\n')}\n`);
        };
        if (!flags.watch) {
          let view: StatusView;
          try {
            view = await read();
          } catch (e) {
            // Scripts get the error as a document too; people get the usual `molt: …` line.
            if (!flags.json) throw e;
            print(statusErrorView(service, e, Date.now()));
            process.exitCode = 1;
            return;
          }
          print(view);
          return;
        }
        await watchStatus(udb, read, { tty, json: flags.json === true, untilDone: flags.untilDone === true, all: flags.all === true, print, service });
      });
    });
}

/** `--watch`: prints on every change the UDB's watches announce, and once a second for the ages. */
async function watchStatus(
  udb: Udb,
  read: () => Promise<StatusView>,
  o: { tty: boolean; json: boolean; untilDone: boolean; all: boolean; print: (v: StatusView | StatusErrorView) => void; service: string },
): Promise<void> {
  const { statusErrorView, renderStatus, watchKey, changeLines, allOver } = await import('../../operate/status.ts');
  const { UdbPrefix } = await import('../../udb/index.ts');
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
      let view: StatusView;
      try {
        view = await read();
      } catch (e) {
        // A read that failed is said as such (an error record with --json), never
        // shown as a world without nodes or rollouts; the next read tries again.
        const error = statusErrorView(o.service, e, Date.now());
        const key = JSON.stringify(error.error);
        if (key !== lastJson) {
          lastJson = key;
          o.print(error);
        }
        return;
      }
      if (o.tty) {
        process.stdout.write('\x1b[H\x1b[2J' + renderStatus(view, { unicode: true, all: o.all }).join('\n') + '\n\n(watching; Ctrl-C to stop)\n');
      } else if (o.json) {
        const key = watchKey(view);
        if (key !== lastJson) {
          lastJson = key;
          o.print(view);
        }
      } else {
        const lines = changeLines(view, { all: o.all });
        const time = new Date(view.at).toISOString();
        for (const line of lines) if (!printed.has(line)) process.stdout.write(`${time} ${line}\n`);
        printed = new Set(lines);
        lastJson = '';
      }
      if (o.untilDone && allOver(view)) finish();
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
  // The watches only say when to read again; what is printed always comes from a complete read.
  const stops = await Promise.all(
    [UdbPrefix.nodes, UdbPrefix.rollouts, UdbPrefix.control, UdbPrefix.progress, UdbPrefix.reports, UdbPrefix.retired].map((p) => udb.watch(p, schedule).catch(() => () => undefined)),
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
