/**
 * `molt keys generate`: a publisher key pair (NATS nkeys, ed25519). The seed
 * goes to a file only its owner can read; the public key is printed for
 * nodes' `--trust`. `molt keys public <seed file>` prints it again.
 *
 * @module
 */
import type { Command } from 'commander';
import { resolve } from 'node:path';
import { existsSync } from 'node:fs';
import { ErrorCode, MoltError } from '../../errors.ts';

export function registerKeysCommands(program: Command): void {
  const keys = program.command('keys').description('publisher keys that sign upgrades');
  keys
    .command('generate')
    .description('create a publisher key pair: writes the secret seed to a file, prints the public key')
    .option('--out <file>', 'where to write the seed (refuses to overwrite)', 'molt-publisher.nk')
    .action(async (flags: { out: string }) => {
      const { generatePublisherKeys, keyFingerprint, writeSeedFile } = await import('../../server/keys.ts');
      const file = resolve(flags.out);
      if (existsSync(file)) {
        throw new MoltError(ErrorCode.OperationRefused, `${file} exists: keys are never overwritten. Choose another --out, or print its public key with \`molt keys public ${flags.out}\``);
      }
      const pair = generatePublisherKeys();
      writeSeedFile(file, pair);
      process.stderr.write(
        `seed written to ${file} (keep it secret; sign with \`molt publish --key ${flags.out}\`)\ntrust it on nodes with: molt node --trust ${pair.publicKey} …  (or MOLT_TRUSTED_KEYS)\n` +
          `its fingerprint (what nodes show in \`molt status --json\`, \`trusts\`): ${keyFingerprint(pair.publicKey)}\n`,
      );
      process.stdout.write(`${pair.publicKey}\n`);
    });
  keys
    .command('public <seedFile>')
    .description('print the public key of a seed file')
    .action(async (seedFile: string) => {
      const { keyFingerprint, loadSeedFile } = await import('../../server/keys.ts');
      const { publicKey } = loadSeedFile(resolve(seedFile));
      process.stdout.write(`${publicKey}\n`);
      process.stderr.write(`fingerprint ${keyFingerprint(publicKey)}\n`);
    });
}
