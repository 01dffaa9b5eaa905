/**
 * `molt contract [module] [--out file]`: the service's contract for callers
 * in any language (runtime/contract/): per type and version, every message's
 * request and reply schema as JSON Schema, the caller versions each node
 * version serves, and the error codes. Schema forms JSON Schema cannot
 * express are named, with their place, on stderr.
 *
 * @module
 */
import type { Command } from 'commander';
import { writeFileSync } from 'node:fs';
import { resolve } from 'node:path';

export function registerContractCommand(program: Command): void {
  program
    .command('contract [module]')
    .description('write the service contract: JSON Schemas of every message per type and version, the versions each node version serves, the error codes')
    .option('-o, --out <file>', 'write the contract to this file instead of stdout')
    .action(async (module: string | undefined, flags: { out?: string }) => {
      const { buildContract } = await import('../../contract/index.ts');
      const { loadServiceModule } = await import('../service-module.ts');
      const path = module ?? 'src/service.ts';
      const contract = buildContract(await loadServiceModule(path));
      const text = JSON.stringify(contract, null, 2) + '\n';
      if (flags.out) writeFileSync(resolve(flags.out), text);
      else process.stdout.write(text);
      for (const u of contract.unexpressed) {
        process.stderr.write(`molt contract: ${u.type}@${u.version} ${u.message} ${u.part} at '${u.path}': ${u.form} is not expressed (${u.why}); the schema accepts anything there\n`);
      }
      if (flags.out) process.stderr.write(`contract of service '${contract.service}' written to ${resolve(flags.out)}\n`);
    });
}
