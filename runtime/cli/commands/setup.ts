/**
 * `molt setup <module-or-service>`: the operator's one step before a service
 * first runs — creates its JetStream buckets (actor state, upgrade database,
 * descriptors, bundles) with the settings Molt relies on, and changes their
 * replicas when `--replicas` says so. Nodes and publishers only open them
 * (see runtime/udb/buckets.ts and docs/permissions.md).
 *
 * @module
 */
import type { Command } from 'commander';
import { ErrorCode, MoltError } from '../../errors.ts';
import { setupServiceBuckets } from '../../udb/buckets.ts';
import { addNatsFlags, connectFromFlags, type NatsFlags } from '../connection.ts';
import { serviceNameOf } from '../service-module.ts';

interface SetupFlags extends NatsFlags {
  replicas?: string;
  json?: boolean;
}

export function registerSetupCommand(program: Command): void {
  addNatsFlags(program.command('setup <moduleOrService>'))
    .description("create the service's JetStream buckets (as the operator, once, before its first node or publish)")
    .option('--replicas <n>', 'replicas of every bucket (default: min(3, servers in the cluster)); changes existing buckets that differ')
    .option('--json', 'print what was done as JSON')
    .action(async (moduleOrService: string, flags: SetupFlags) => {
      let replicas: number | undefined;
      if (flags.replicas !== undefined) {
        replicas = Number(flags.replicas);
        if (!Number.isInteger(replicas) || replicas < 1 || replicas > 5) throw new MoltError(ErrorCode.InvalidDefinition, `--replicas must be an integer from 1 to 5 (JetStream's limit), got '${flags.replicas}'`);
      }
      const service = await serviceNameOf(moduleOrService);
      const nc = await connectFromFlags(flags, 'molt setup');
      try {
        const outcomes = await setupServiceBuckets(nc, service, replicas !== undefined ? { replicas } : {});
        if (flags.json) {
          process.stdout.write(`${JSON.stringify({ service, buckets: outcomes.map((o) => ({ bucket: o.bucket.name, stream: o.bucket.stream, action: o.action, replicas: o.replicas, ...(o.from !== undefined ? { from: o.from } : {}) })) })}\n`);
          return;
        }
        for (const o of outcomes) {
          const what = `${o.bucket.name} (${o.bucket.what})`;
          const line = { created: `created ${what}, ${o.replicas} replica(s)`, existed: `${what} exists, ${o.replicas} replica(s)`, updated: `updated ${what}: ${o.from} → ${o.replicas} replica(s)` }[o.action];
          process.stdout.write(`${line}\n`);
        }
        process.stdout.write(`service '${service}' is set up: start its nodes (molt node) and publish (molt publish)\n`);
      } finally {
        await nc.drain().catch(() => undefined);
      }
    });
}
