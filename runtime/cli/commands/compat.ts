/**
 * `molt compat [type] [--service src/service.ts] [--json | --markdown]`: the
 * compatibility matrix of an actor type (or of every type of the service),
 * computed from the definitions in the service module (codegen/compat.ts).
 *
 * @module
 */
import type { Command } from 'commander';
import { ErrorCode, MoltError } from '../../errors.ts';

interface CompatFlags {
  service: string;
  json?: boolean;
  markdown?: boolean;
}

export function registerCompatCommand(program: Command): void {
  program
    .command('compat [type]')
    .description('print which node versions serve which messages of each caller version: native, through an SO, disallowed or unsupported')
    .option('-s, --service <module>', 'the service module', 'src/service.ts')
    .option('--json', 'print the matrix as JSON')
    .option('--markdown', 'print the matrix as a Markdown table')
    .action(async (typeName: string | undefined, flags: CompatFlags) => {
      if (flags.json && flags.markdown) throw new MoltError(ErrorCode.InvalidDefinition, 'choose one of --json and --markdown');
      const { loadServiceModule } = await import('../service-module.ts');
      const { compatMatrix, formatMarkdown, formatTable } = await import('../../../codegen/compat.ts');
      const service = await loadServiceModule(flags.service);
      const types = typeName === undefined ? service.types : service.types.filter((t) => t.name === typeName);
      if (types.length === 0) {
        throw new MoltError(
          ErrorCode.InvalidDefinition,
          `service '${service.name}' (${flags.service}) has no actor type '${typeName}'; it has: ${service.types.map((t) => t.name).join(', ')}`,
        );
      }
      const matrices = types.map(compatMatrix);
      if (flags.json) {
        process.stdout.write(JSON.stringify(typeName === undefined ? { service: service.name, types: matrices } : matrices[0]) + '\n');
      } else {
        process.stdout.write(matrices.map(flags.markdown ? formatMarkdown : formatTable).join('\n'));
      }
    });
}
