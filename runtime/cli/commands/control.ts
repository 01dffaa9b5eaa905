/**
 * `molt pause|resume|abort <rollout>`, `molt retire <type> [version]`,
 * `molt rollback <rollout>` and `molt prune`: the command lines of the
 * operator functions in runtime/operate/ (rollouts.ts, retire.ts, prune.ts),
 * which say what each does.
 *
 * A rollout is named by its id (`counter-v2-3f9a1c`), by `<type>@<version>`
 * (`counter@2`) or by a unique prefix of its id.
 *
 * @module
 */
import type { Command } from 'commander';
import { ErrorCode, MoltError } from '../../errors.ts';
import { addConnectionFlags, type ConnectionFlags } from '../flags.ts';
import { withService } from '../session.ts';

interface ControlFlags extends ConnectionFlags {
  reason?: string;
}

export function registerControlCommands(program: Command): void {
  for (const command of ['pause', 'resume', 'abort'] as const) {
    const help = {
      pause: 'pause a rollout: nodes that have not upgraded hold until resumed',
      resume: 'resume a paused (or health-halted) rollout',
      abort: 'abort a rollout for good: no further node upgrades; upgraded nodes keep the new version and its past SO',
    }[command];
    addConnectionFlags(program.command(`${command} <rollout>`))
      .description(help)
      .option('--reason <text>', 'why (shown by `molt status`)')
      .action(async (name: string, flags: ControlFlags) => {
        const { controlRollout } = await import('../../operate/rollouts.ts');
        await withService(flags, `molt ${command}`, async ({ udb }) => {
          const { message } = await controlRollout(udb, name, command, flags.reason);
          process.stdout.write(`${message}\n`);
        });
      });
  }

  addConnectionFlags(program.command('retire <type> [version]'))
    .description('stop serving an old version of a type on every node (its callers get VersionRetired)')
    .option('--when-unused [window]', 'only once no node has seen a caller of it for the window (30d, 12h, 15m; default: the type\'s retireWhenUnusedMs); without <version>, every old version of the type that is')
    .action(async (type: string, versionText: string | undefined, flags: ControlFlags & { whenUnused?: string | boolean }) => {
      const version = versionText === undefined ? undefined : Number(versionText);
      if (version !== undefined && (!Number.isInteger(version) || version < 1)) throw new MoltError(ErrorCode.InvalidDefinition, `<version> must be a positive integer, got '${versionText}'`);
      if (version === undefined && flags.whenUnused === undefined) throw new MoltError(ErrorCode.InvalidDefinition, 'give the <version> to retire, or --when-unused to retire the versions no caller has used (molt retire counter 1, molt retire counter --when-unused 30d)');
      const { retireVersion } = await import('../../operate/rollouts.ts');
      const { retireWhenUnused } = await import('../../operate/retire.ts');
      const { parseWindow } = await import('../../udb/evidence.ts');
      await withService(flags, 'molt retire', async ({ udb }) => {
        if (flags.whenUnused === undefined) {
          process.stdout.write(`${await retireVersion(udb, type, version!)}\n`);
          return;
        }
        const windowMs = typeof flags.whenUnused === 'string' ? parseWindow(flags.whenUnused) : undefined;
        const result = await retireWhenUnused(udb, { type, version, windowMs, now: Date.now(), leaseMs: 60_000 }, (t, v) => retireVersion(udb, t, v));
        for (const v of result.retired) process.stdout.write(`retired ${type}@${v}: no node has seen a caller of it for the window; its callers get VersionRetired\n`);
        for (const r of result.refused) process.stdout.write(`kept ${type}@${r.version}: ${r.why}\n`);
      });
    });

  addConnectionFlags(program.command('rollback <rollout>'))
    .description('carry every node of a rollout back to its previous version, where the upgrade declared a down transform')
    .option('--reason <text>', 'why (shown by `molt status`)')
    .action(async (name: string, flags: ControlFlags) => {
      const { rollbackRollout } = await import('../../operate/rollouts.ts');
      await withService(flags, 'molt rollback', async ({ nc, udb }) => {
        const { message } = await rollbackRollout(udb, nc, name, flags.reason);
        process.stdout.write(`${message}\n`);
      });
    });

  addConnectionFlags(program.command('prune'))
    .description('remove the history no reader needs: nodes gone for the window, and the per-node detail of superseded rollouts that ended before it')
    .option('--older-than <window>', 'how long a node must be gone, or a rollout over (30d, 12h; at least 1h)', '7d')
    .option('--dry-run', 'say what would be removed, and remove nothing')
    .option('--json', 'print the result as JSON (every node and rollout, with its keys)')
    .action(async (flags: ConnectionFlags & { olderThan: string; dryRun?: boolean; json?: boolean }) => {
      const { pruneHistory, renderPrune } = await import('../../operate/prune.ts');
      const { parseWindow } = await import('../../udb/evidence.ts');
      const windowMs = parseWindow(flags.olderThan, '--older-than');
      await withService(flags, 'molt prune', async ({ udb }) => {
        const result = await pruneHistory(udb, { windowMs, now: Date.now(), dryRun: flags.dryRun === true });
        process.stdout.write(flags.json ? `${JSON.stringify(result, null, 2)}\n` : `${renderPrune(result)}\n`);
      });
    });
}
