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
import { addNatsFlags, type NatsFlags } from '../flags.ts';
import { connectFromFlags } from '../session.ts';
import { serviceNameOf } from '../service-module.ts';

interface SetupFlags extends NatsFlags {
  replicas?: string;
  stateMaxBytes?: string;
  json?: boolean;
}

export function registerSetupCommand(program: Command): void {
  addNatsFlags(program.command('setup <moduleOrService>'))
    .description("create the service's JetStream buckets (as the operator, once, before its first node or publish)")
    .option('--replicas <n>', 'replicas of every bucket (default: min(3, servers in the cluster)); changes existing buckets that differ')
    .option('--state-max-bytes <n>', 'size limit of the actor-state bucket (keep it below a bounded JetStream storage, so the upgrade database always has room); changes an existing one')
    .option('--json', 'print what was done as JSON')
    .action(async (moduleOrService: string, flags: SetupFlags) => {
      let replicas: number | undefined;
      if (flags.replicas !== undefined) {
        replicas = Number(flags.replicas);
        if (!Number.isInteger(replicas) || replicas < 1 || replicas > 5) throw new MoltError(ErrorCode.InvalidDefinition, `--replicas must be an integer from 1 to 5 (JetStream's limit), got '${flags.replicas}'`);
      }
      let stateMaxBytes: number | undefined;
      if (flags.stateMaxBytes !== undefined) {
        stateMaxBytes = Number(flags.stateMaxBytes);
        if (!Number.isInteger(stateMaxBytes) || stateMaxBytes <= 0) throw new MoltError(ErrorCode.InvalidDefinition, `--state-max-bytes must be a positive number of bytes, got '${flags.stateMaxBytes}'`);
      }
      const { setupServiceBuckets } = await import('../../udb/buckets.ts');
      const service = await serviceNameOf(moduleOrService);
      const nc = await connectFromFlags(flags, 'molt setup');
      try {
        const outcomes = await setupServiceBuckets(nc, service, { ...(replicas !== undefined ? { replicas } : {}), ...(stateMaxBytes !== undefined ? { stateMaxBytes } : {}) });
        if (flags.json) {
          process.stdout.write(`${JSON.stringify({ service, buckets: outcomes.map((o) => ({ bucket: o.bucket.name, stream: o.bucket.stream, action: o.action, replicas: o.replicas, ...(o.from !== undefined ? { from: o.from } : {}), ...(o.maxBytes !== undefined ? { maxBytes: o.maxBytes } : {}) })) })}\n`);
          return;
        }
        for (const o of outcomes) {
          const what = `${o.bucket.name} (${o.bucket.what})`;
          const replicas = o.from !== undefined ? `${o.from} → ${o.replicas} replica(s)` : `${o.replicas} replica(s)`;
          const limit = o.maxBytes !== undefined ? `, at most ${o.maxBytes} bytes` : '';
          const line = { created: `created ${what}`, existed: `${what} exists`, updated: `updated ${what}` }[o.action];
          process.stdout.write(`${line}, ${replicas}${limit}\n`);
        }
        process.stdout.write(`service '${service}' is set up: start its nodes (molt node) and publish (molt publish)\n`);
      } finally {
        await nc.drain().catch(() => undefined);
      }
    });
}
