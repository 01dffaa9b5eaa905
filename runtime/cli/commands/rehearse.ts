/**
 * `molt rehearse <module> --type T --to V`: tries the upgrade to V on the
 * live service's stored actors of type T, read-only (runtime/verify/rehearse.ts),
 * and names the actors whose transform would fail or that would answer
 * differently after it. Exits 1 if there are any.
 *
 * @module
 */
import type { Command } from 'commander';
import { ErrorCode, MoltError } from '../../errors.ts';
import { loadServiceModule } from '../service-module.ts';
import { addConnectionFlags, type ConnectionFlags } from '../flags.ts';
import { connectFromFlags } from '../session.ts';

interface RehearseFlags extends ConnectionFlags {
  type: string;
  to: string;
  sample?: string;
  reads?: string;
  seed?: string;
  json?: boolean;
}

function integer(value: string | undefined, flag: string, min: number): number | undefined {
  if (value === undefined) return undefined;
  if (!/^[0-9]+$/.test(value) || Number(value) < min) throw new MoltError(ErrorCode.InvalidDefinition, `${flag} takes an integer ≥ ${min}, got '${value}'`);
  return Number(value);
}

/** `done/total [#####.....] 42% ETA 3s`, on one line. */
function progressLine(done: number, total: number, startedAt: number): string {
  const width = 20;
  const filled = total === 0 ? width : Math.round((done / total) * width);
  const elapsed = (performance.now() - startedAt) / 1000;
  const eta = done === 0 ? '?' : `${Math.ceil((elapsed / done) * (total - done))}s`;
  return `${done}/${total} [${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${total === 0 ? 100 : Math.floor((done / total) * 100)}% ETA ${eta}`;
}

export function registerRehearseCommand(program: Command): void {
  addConnectionFlags(program.command('rehearse <module>'))
    .description('try an upgrade on the live service\'s stored actors, read-only: name those whose transform would fail or that would answer differently')
    .requiredOption('--type <type>', 'the actor type')
    .requiredOption('--to <version>', 'the version to rehearse the upgrade to')
    .option('--sample <n>', 'check this many actors, picked at random (default: all)')
    .option('--reads <n>', 'random reads per actor, beside the smallest one of each ask (default 4)')
    .option('--seed <n>', 'seed of the sample and the reads')
    .option('--json', 'print the report as JSON')
    .action(async (modulePath: string, flags: RehearseFlags) => {
      const service = await loadServiceModule(modulePath);
      const type = service.types.find((t) => t.name === flags.type);
      if (!type) throw new MoltError(ErrorCode.InvalidDefinition, `service '${service.name}' (${modulePath}) has no actor type '${flags.type}'; it has: ${service.types.map((t) => t.name).join(', ')}`);
      const to = integer(flags.to, '--to', 2)!;
      const { moduleVerifyOptions } = await import('../../verify/publish.ts');
      const { rehearse } = await import('../../verify/rehearse.ts');
      const fromModule = await moduleVerifyOptions(modulePath);
      const nc = await connectFromFlags(flags, 'molt rehearse');
      const startedAt = performance.now();
      let lastDraw = 0;
      const tty = process.stderr.isTTY === true;
      try {
        const report = await rehearse({
          nats: nc,
          service: flags.service ?? service.name,
          type,
          to,
          sample: integer(flags.sample, '--sample', 1),
          reads: integer(flags.reads, '--reads', 0),
          seed: integer(flags.seed, '--seed', 0) ?? fromModule.seed,
          generators: fromModule.generators,
          onProgress: (done, total) => {
            const now = performance.now();
            if (done !== total && now - lastDraw < (tty ? 100 : 2000)) return;
            lastDraw = now;
            process.stderr.write(tty ? `\r${progressLine(done, total, startedAt)}` : `${progressLine(done, total, startedAt)}\n`);
          },
        });
        if (tty) process.stderr.write('\n');
        if (flags.json) {
          process.stdout.write(`${JSON.stringify(report)}\n`);
        } else {
          const rate = report.ms > 0 ? Math.round((report.checked / report.ms) * 1000) : report.checked;
          process.stdout.write(
            `${report.type} → ${report.to}: ${report.checked} of ${report.stored} stored actors checked (${report.current} already at ${report.to} or later) in ${Math.round(report.ms)} ms, ${rate} actors/s; nothing was written\n`,
          );
          for (const f of report.failures) {
            const read = f.read ? ` (read: { version: ${f.read.version}, message: '${f.read.message}', request: ${JSON.stringify(f.read.request)} })` : '';
            process.stdout.write(`✗ ${f.key} at ${report.type}@${f.version}: ${f.problem}: ${f.detail}${read}\n`);
          }
          process.stdout.write(report.failures.length === 0 ? `✓ no actor would fail the upgrade\n` : `${report.failures.length} actor${report.failures.length === 1 ? '' : 's'} would fail the upgrade\n`);
        }
        if (report.failures.length > 0) process.exitCode = 1;
      } finally {
        await nc.drain().catch(() => undefined);
      }
    });
}
