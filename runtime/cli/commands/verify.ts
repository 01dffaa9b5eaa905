/**
 * `molt verify [module]`: checks every upgrade of every actor type of the
 * service module against the correctness rules of simulation objects and
 * transform functions (runtime/verify/, docs/verify.md). Exits 1 with the
 * shrunk counterexample of each broken rule.
 *
 * The module may export `verifyOptions` (a `VerifyOptions`) to supply
 * generators for schema forms the verifier cannot derive (`P.when`).
 *
 * @module
 */
import type { Command } from 'commander';
import { ErrorCode, MoltError } from '../../errors.ts';
import { loadServiceModule } from '../service-module.ts';

interface VerifyFlags {
  type?: string;
  to?: string;
  seed?: string;
  runs?: string;
  smallScope?: string;
  json?: boolean;
}

function positiveInt(value: string | undefined, flag: string): number | undefined {
  if (value === undefined) return undefined;
  if (!/^-?[0-9]+$/.test(value)) throw new MoltError(ErrorCode.InvalidDefinition, `${flag} takes an integer, got '${value}'`);
  return Number(value);
}

export function registerVerifyCommand(program: Command): void {
  program
    .command('verify [module]')
    .description('check every upgrade of the service against the rules of simulation objects and transform functions (identity, sequence, disallow, TF totality)')
    .option('--type <type>', 'only this actor type')
    .option('--to <version>', 'only the upgrades into this version (e.g. the one you are about to publish)')
    .option('--seed <n>', 'fast-check seed (printed with every failure, to replay it)')
    .option('--runs <n>', 'random histories per rule and upgrade (default 100; five times as many for the totality rules)')
    .option('--small-scope <n>', 'short call sequences tried exhaustively per rule and upgrade, before the random ones (default 1000)')
    .option('--json', 'print the report as JSON')
    .action(async (modulePath: string | undefined, flags: VerifyFlags) => {
      const path = modulePath ?? 'src/service.ts';
      const { formatReport, verifyService } = await import('../../verify/check.ts');
      const { moduleVerifyOptions } = await import('../../verify/publish.ts');
      const service = await loadServiceModule(path);
      const fromModule = await moduleVerifyOptions(path);
      const runs = positiveInt(flags.runs, '--runs');
      if (runs !== undefined && runs < 1) throw new MoltError(ErrorCode.InvalidDefinition, '--runs must be at least 1');
      const smallScope = positiveInt(flags.smallScope, '--small-scope');
      if (smallScope !== undefined && smallScope < 0) throw new MoltError(ErrorCode.InvalidDefinition, '--small-scope must be 0 or more');
      const report = verifyService(service, {
        ...fromModule,
        ...(flags.type === undefined ? {} : { type: flags.type }),
        ...(flags.to === undefined ? {} : { to: positiveInt(flags.to, '--to') }),
        ...(flags.seed === undefined ? {} : { seed: positiveInt(flags.seed, '--seed') }),
        ...(runs === undefined ? {} : { runs }),
        ...(smallScope === undefined ? {} : { smallScope }),
      });
      process.stdout.write(flags.json ? `${JSON.stringify(report)}\n` : formatReport(report));
      if (!report.ok) process.exitCode = 1;
    });
}
