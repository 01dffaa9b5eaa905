/**
 * `molt dashboard`: serves the live web page of a service's nodes, rollouts,
 * traffic and problems (runtime/observe/dashboard.ts) until interrupted.
 *
 * @module
 */
import type { Command } from 'commander';
import { userInfo, hostname } from 'node:os';
import { ErrorCode, MoltError } from '../../errors.ts';
import { addConnectionFlags, type ConnectionFlags } from '../flags.ts';
import { withService } from '../session.ts';

interface DashboardFlags extends ConnectionFlags {
  port: string;
  host: string;
  lease: string;
  retireAfter: string;
}

function number(name: string, value: string, min: number): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < min) throw new MoltError(ErrorCode.InvalidDefinition, `--${name} must be an integer ≥ ${min}, got '${value}'`);
  return n;
}

export function registerDashboardCommand(program: Command): void {
  addConnectionFlags(program.command('dashboard'))
    .description('a live web page of the nodes, rollouts, traffic per version and problems of a service; pause, resume and abort with the operator\'s credentials')
    .option('--port <port>', 'TCP port of the page (0 takes a free one)', '8090')
    .option('--host <host>', 'interface to listen on', '127.0.0.1')
    .option('--lease <ms>', 'a node silent this long is shown dead', '5000')
    .option('--retire-after <ms>', 'a version without calls this long is shown ready to retire', '60000')
    .action(async (flags: DashboardFlags) => {
      const port = number('port', flags.port, 0);
      const leaseMs = number('lease', flags.lease, 1);
      const retireAfterMs = number('retire-after', flags.retireAfter, 0);
      const { startDashboard } = await import('../../observe/dashboard.ts');
      await withService(flags, 'molt dashboard', async ({ nc, service, udb }) => {
        let by = 'dashboard';
        try {
          by = `dashboard ${userInfo().username}@${hostname()}`;
        } catch {
          // no user name: the plain label will do
        }
        const dashboard = await startDashboard({
          nc,
          udb,
          service,
          port,
          host: flags.host,
          leaseMs,
          retireAfterMs,
          by,
        });
        const view = dashboard.view();
        process.stdout.write(`molt dashboard for ${service} on http://${flags.host.includes(':') ? `[${flags.host}]` : flags.host}:${dashboard.port}/ (${view?.control.allowed ? 'pause, resume and abort act' : 'read only'})\n`);
        await new Promise<void>((resolve) => {
          process.once('SIGINT', resolve);
          process.once('SIGTERM', resolve);
        });
        await dashboard.close();
      });
    });
}
