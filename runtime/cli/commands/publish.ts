/**
 * `molt publish <module> --key <seed file>`: builds the module into an upgrade
 * bundle, stores it, and writes a signed descriptor and a rollout per new
 * version (see docs/publishing.md).
 *
 * @module
 */
import type { Command } from 'commander';
import { resolve } from 'node:path';
import { ErrorCode, MoltError } from '../../errors.ts';
import { addConnectionFlags, type ConnectionFlags } from '../flags.ts';
import { connectFromFlags } from '../session.ts';

interface PublishFlags extends ConnectionFlags {
  key?: string;
  schedule: string;
  param?: string[];
  version?: string[];
  paused?: boolean;
  fix?: boolean;
  dryRun?: boolean;
  json?: boolean;
  replicas?: string;
  force?: boolean;
  /** False with `--no-typecheck`. */
  typecheck: boolean;
  /** False with `--no-verify`. */
  verify: boolean;
}

/** `k=v` → value: numbers, booleans, null and JSON objects/arrays as such; anything else a string. */
export function parseParam(pair: string): [string, unknown] {
  const m = /^([A-Za-z_][A-Za-z0-9_]*)=(.*)$/s.exec(pair);
  if (!m) throw new MoltError(ErrorCode.InvalidDefinition, `--param takes name=value (e.g. --param batch=1), got '${pair}'`);
  const raw = m[2]!;
  let value: unknown = raw;
  if (/^-?\d+(\.\d+)?$/.test(raw)) value = Number(raw);
  else if (raw === 'true' || raw === 'false') value = raw === 'true';
  else if (raw === 'null') value = null;
  else if (/^[[{]/.test(raw)) {
    try {
      value = JSON.parse(raw);
    } catch (e) {
      throw new MoltError(ErrorCode.InvalidDefinition, `--param ${m[1]}: '${raw}' looks like JSON but is not: ${(e as Error).message}`);
    }
  }
  return [m[1]!, value];
}

function parseVersions(pairs: string[] | undefined): Record<string, number> | undefined {
  if (!pairs?.length) return undefined;
  const out: Record<string, number> = {};
  for (const pair of pairs) {
    const m = /^([a-z][a-z0-9-]*)=([1-9][0-9]*)$/.exec(pair);
    if (!m) throw new MoltError(ErrorCode.InvalidDefinition, `--version takes <type>=<version>, e.g. --version counter=3; got '${pair}'`);
    out[m[1]!] = Number(m[2]);
  }
  return out;
}

export function registerPublishCommand(program: Command): void {
  addConnectionFlags(program.command('publish <module>'))
    .description('publish the new versions in <module> as a signed upgrade')
    .option('--key <seedFile>', 'publisher seed that signs the upgrade (from `molt keys generate`; default $MOLT_PUBLISHER_KEY)')
    .option('--schedule <name>', 'scheduling function: immediate, rolling, canary, whenIdle, window, after, zones, groups, ring, or one the module exports in `schedules`', 'immediate')
    .option('--param <name=value...>', 'a parameter of the schedule, e.g. --param batch=1 (repeat for more)')
    .option('--version <type=version...>', 'publish exactly this version of a type (default: every version newer than the last published)')
    .option('--paused', 'start the rollouts paused: nodes load the upgrade but none upgrades until `molt resume`')
    .option('--fix', 'replace the code of an already-published version (named with --version), e.g. a fixed transform; same rollout, same messages. With the same code and another --key: sign it again with that key')
    .option('--dry-run', 'build and check, print what would be published, write nothing')
    .option('--json', 'print the published descriptors as JSON')
    .option('--replicas <n>', 'replicas the service\'s buckets must have; refuses if they differ (see molt setup)')
    .option('--force', 'publish even though no live node trusts the signing key (they will refuse it until they do)')
    .option('--no-typecheck', "publish without type-checking the module's project first")
    .option('--no-verify', 'publish without checking the rules of its upgrades first (molt verify); the descriptor and molt status say so')
    .action(async (modulePath: string, flags: PublishFlags) => {
      const keyFile = flags.key ?? process.env.MOLT_PUBLISHER_KEY;
      if (!keyFile) throw new MoltError(ErrorCode.InvalidDefinition, 'no publisher key: pass --key <seed file> (create one with `molt keys generate`)');
      const { loadSeedFile } = await import('../../server/keys.ts');
      const { publishUpgrade } = await import('../../server/publish.ts');
      const signer = loadSeedFile(resolve(keyFile));
      const params = Object.fromEntries((flags.param ?? []).map(parseParam));
      const nc = await connectFromFlags(flags, 'molt publish');
      try {
        const result = await publishUpgrade({
          nats: nc,
          module: modulePath,
          signer,
          schedule: { name: flags.schedule, params },
          versions: parseVersions(flags.version),
          paused: flags.paused === true,
          fix: flags.fix === true,
          dryRun: flags.dryRun === true,
          replicas: flags.replicas ? Number(flags.replicas) : undefined,
          force: flags.force === true,
          typecheck: flags.typecheck !== false,
          verify: flags.verify !== false,
        });
        if (flags.verify === false) process.stderr.write('warning: published with --no-verify: the rules of its upgrades were not checked; the descriptor and `molt status` say so\n');
        for (const w of result.warnings) process.stderr.write(`warning: ${w}\n`);
        if (flags.json) {
          process.stdout.write(`${JSON.stringify(result)}\n`);
          return;
        }
        for (const d of result.upgrades) {
          // A fix keeps its rollout's schedule: show the descriptor's, not the flags'.
          const resign = result.resigned.includes(d.rolloutId);
          const verb = flags.dryRun ? (resign ? 'would re-sign' : flags.fix ? 'would publish a fix of' : 'would publish') : resign ? 're-signed' : flags.fix ? 'published a fix of' : 'published';
          const shownParams = Object.keys(d.schedule.params).length > 0 ? ` ${JSON.stringify(d.schedule.params)}` : '';
          const paused = flags.paused ? ' (paused: no node upgrades until `molt resume`)' : '';
          process.stdout.write(`${verb} ${d.type} ${d.from}→${d.to}: rollout ${d.rolloutId}, schedule ${d.schedule.name}${shownParams}${paused}\n`);
        }
        process.stdout.write(`bundle sha256-${result.bundle.digest} (${(result.bundle.size / 1024).toFixed(1)} KiB), signed by ${signer.publicKey}\n`);
        if (!flags.dryRun) process.stdout.write(`follow it with: molt status --watch --service ${result.service}\n`);
      } finally {
        await nc.drain().catch(() => undefined);
      }
    });
}
