/**
 * The `molt` command line. Each command lives in its own file under
 * `commands/` and registers itself on the program.
 *
 * @module
 */
import { Command } from 'commander';
import { isMoltError } from '../errors.ts';
import { registerNodeCommands } from './commands/node.ts';
import { registerExtraCommands } from './commands/index.ts';

const program = new Command();
program
  .name('molt')
  .description('Molt: services that upgrade themselves while they run')
  .showHelpAfterError()
  .configureOutput({ outputError: (text, write) => write(text) });

registerNodeCommands(program);
await registerExtraCommands(program);

try {
  await program.parseAsync(process.argv);
} catch (e) {
  if (isMoltError(e)) {
    process.stderr.write(`molt: ${e.code}: ${e.message}\n`);
    process.exit(e.code === 'Environment' || e.code === 'InvalidDefinition' ? 2 : 1);
  }
  throw e;
}
