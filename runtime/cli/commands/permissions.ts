/**
 * `molt permissions <module-or-service>`: prints the nats-server
 * `authorization` block that gives the service's operator, publisher, nodes
 * and callers exactly what each needs (runtime/nats/permissions.ts,
 * docs/permissions.md). Connects to nothing.
 *
 * @module
 */
import type { Command } from 'commander';
import { ErrorCode, MoltError } from '../../errors.ts';
import { serviceNameOf } from '../service-module.ts';

interface PermissionsFlags {
  nodes?: string[];
  callers?: string[];
  after?: string[];
  json?: boolean;
}

export function registerPermissionsCommand(program: Command): void {
  program
    .command('permissions <moduleOrService>')
    .description('print the nats-server authorization block for the service\'s operator, publisher, nodes and callers')
    .option('--nodes <ids...>', 'one NATS user per node id, each allowed only its own UDB keys (default: one shared node user)')
    .option('--callers <names...>', 'one NATS user per caller, each reading only its own replies (inbox prefix _INBOX.<name>)')
    .option('--after <services...>', 'other services whose upgrade database this service\'s `after` schedules read')
    .option('--json', 'print the users and their permissions as JSON')
    .action(async (moduleOrService: string, flags: PermissionsFlags) => {
      const { permissionsConfig, roleUsers } = await import('../../nats/permissions.ts');
      const service = await serviceNameOf(moduleOrService);
      const options = { service, ...(flags.nodes ? { nodes: flags.nodes } : {}), ...(flags.callers ? { callers: flags.callers } : {}), ...(flags.after ? { after: flags.after } : {}) };
      try {
        process.stdout.write(flags.json ? `${JSON.stringify(roleUsers(options), null, 2)}\n` : permissionsConfig(options));
      } catch (e) {
        throw new MoltError(ErrorCode.InvalidDefinition, (e as Error).message);
      }
    });
}
