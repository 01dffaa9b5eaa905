/**
 * `molt version add <type>`: write the next version of an actor type as a new
 * file beside the current one (messages and machine copied, TF and SO stubs),
 * and add it to the type's version chain (codegen/version-add.ts).
 *
 * @module
 */
import { relative } from 'node:path';
import type { Command } from 'commander';
import { withOptionalPackage } from '../../optional-packages.ts';

interface AddFlags {
  service: string;
  tsconfig?: string;
  forward?: boolean;
  down?: boolean;
  compatible?: boolean;
  dryRun?: boolean;
}

export function registerVersionCommand(program: Command): void {
  const version = program.command('version').description('manage the versions of actor types');
  version
    .command('add <type>')
    .description('write the next version of <type>: a copy of the current one, with a typed transform function and simulation-object stubs')
    .option('-s, --service <module>', 'the service module', 'src/service.ts')
    .option('--tsconfig <file>', 'compiler options to read the code with (default: the nearest tsconfig.json)')
    .option('--forward', 'SO handlers call the same message on the other version (the default: a fresh copy is a correct upgrade, and passes molt verify)')
    .option('--no-forward', 'SO handlers refuse every message (disallow) until you write them')
    .option('--down', 'also write a `down` stub (state back to the previous version, for molt rollback): the identity, typed, so it stops compiling when the states differ')
    .option('--compatible', 'declare `compatible: true` (callers of the previous version served natively) instead of writing a past SO')
    .option('--dry-run', 'print the new file, write nothing')
    .action(async (type: string, flags: AddFlags) => {
      // ts-morph is loaded only by this command (an optional peer dependency).
      const { addVersion } = await withOptionalPackage('ts-morph', '`molt version add`', () => import('../../../codegen/version-add.ts'));
      const result = addVersion({ type, service: flags.service, tsconfig: flags.tsconfig, forward: flags.forward !== false, down: flags.down, compatible: flags.compatible, dryRun: flags.dryRun });
      if (flags.dryRun) {
        process.stdout.write(result.text);
        return;
      }
      const file = relative(process.cwd(), result.file);
      const chain = relative(process.cwd(), result.chainFile);
      const stubs = flags.forward !== false ? 'forward every message to the other version' : `refuse every message (disallow) until you write them`;
      const pieces = [
        `its transform${result.down ? ' and its down transform are the identity' : ' is the identity'}`,
        result.compatible ? `it declares compatible: true (no past SO) and its future SO will ${stubs}` : `its simulation objects ${stubs}`,
      ];
      process.stdout.write(
        `wrote ${file}: ${type}@${result.version}, a copy of ${type}@${result.version - 1} (${result.messages.length} messages)\n` +
          `added ${result.exportName} to the chain of '${type}' in ${chain}\n\n` +
          `Next: change ${type}@${result.version} in ${file}; ${pieces.join('; ')}.\n` +
          `Check with: npx tsc --noEmit, npx molt verify, and npx molt compat ${type}\n`,
      );
    });
}
