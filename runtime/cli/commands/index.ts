/**
 * Registers every command beyond `node` and `dev`. Each feature adds its
 * command file here, so main.ts stays the same as features land.
 *
 * @module
 */
import type { Command } from 'commander';

export async function registerExtraCommands(program: Command): Promise<void> {
  void program;
}
