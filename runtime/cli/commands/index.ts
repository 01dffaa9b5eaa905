/**
 * Registers every command beyond `node` and `dev`. Each feature adds its
 * command file here, so main.ts stays the same as features land.
 *
 * @module
 */
import type { Command } from 'commander';
import { registerKeysCommands } from './keys.ts';
import { registerPublishCommand } from './publish.ts';
import { registerStatusCommand } from './status.ts';
import { registerControlCommands } from './control.ts';
import { registerNewCommand } from './new.ts';
import { registerCompatCommand } from './compat.ts';
import { registerVersionCommand } from './version.ts';
import { registerSetupCommand } from './setup.ts';
import { registerPermissionsCommand } from './permissions.ts';
import { registerContractCommand } from './contract.ts';
import { registerVerifyCommand } from './verify.ts';
import { registerDashboardCommand } from './dashboard.ts';
import { registerSimulateCommand } from './simulate.ts';
import { registerRehearseCommand } from './rehearse.ts';

export async function registerExtraCommands(program: Command): Promise<void> {
  void program;
  registerKeysCommands(program);
  registerPublishCommand(program);
  registerStatusCommand(program);
  registerControlCommands(program);
  registerNewCommand(program);
  registerCompatCommand(program);
  registerVersionCommand(program);
  registerSetupCommand(program);
  registerPermissionsCommand(program);
  registerContractCommand(program);
  registerVerifyCommand(program);
  registerDashboardCommand(program);
  registerSimulateCommand(program);
  registerRehearseCommand(program);
}
