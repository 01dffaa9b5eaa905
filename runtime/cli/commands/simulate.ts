/**
 * `molt simulate`: plays a rollout out on a simulated fleet before it runs on
 * the real one (runtime/simulate/fleet.ts), and prints its predicted
 * duration, the most nodes upgrading at once, the capacity dip and where a
 * health gate would halt it.
 *
 * @module
 */
import type { Command } from 'commander';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { ErrorCode, MoltError } from '../../errors.ts';
import type { SimulationOptions, SimulationResult } from '../../simulate/fleet.ts';

interface SimulateFlags {
  nodes: string;
  schedule: string;
  params?: string;
  zones?: string;
  groupSize?: string;
  ring?: boolean;
  upgradeMs: string;
  jitter: string;
  learnMs: string;
  viewLagMs: string;
  tickMs: string;
  deathsPerMinute?: string;
  restartAfter?: string;
  tfFailures?: string;
  resumeAfter?: string;
  slow?: string;
  slowFactor?: string;
  seed: string;
  json?: boolean;
}

function number(name: string, value: string | undefined, opts: { min?: number; max?: number; integer?: boolean } = {}): number | undefined {
  if (value === undefined) return undefined;
  const x = Number(value);
  const min = opts.min ?? 0;
  if (!Number.isFinite(x) || x < min || (opts.max !== undefined && x > opts.max) || (opts.integer && !Number.isInteger(x))) {
    const range = opts.max !== undefined ? `from ${min} to ${opts.max}` : `≥ ${min}`;
    throw new MoltError(ErrorCode.InvalidDefinition, `--${name} must be ${opts.integer ? 'an integer' : 'a number'} ${range}, got '${value}'`);
  }
  return x;
}

/** Simulation options from the command's flags (and the module's custom schedules). */
export function simulationFromFlags(flags: SimulateFlags, customSchedules?: Readonly<Record<string, unknown>>): SimulationOptions {
  let params: Record<string, unknown> = {};
  if (flags.params !== undefined) {
    try {
      params = JSON.parse(flags.params) as Record<string, unknown>;
    } catch {
      throw new MoltError(ErrorCode.InvalidDefinition, `--params must be a JSON object such as '{"batch": 2}', got '${flags.params}'`);
    }
    if (typeof params !== 'object' || params === null || Array.isArray(params)) throw new MoltError(ErrorCode.InvalidDefinition, `--params must be a JSON object such as '{"batch": 2}', got '${flags.params}'`);
  }
  const zones = number('zones', flags.zones, { min: 1, integer: true });
  const groupSize = number('group-size', flags.groupSize, { min: 1, integer: true });
  const ring = flags.ring === true;
  const labelled = zones !== undefined || groupSize !== undefined || ring;
  const failures = {
    deathsPerMinute: number('deaths-per-minute', flags.deathsPerMinute),
    restartAfterMs: number('restart-after', flags.restartAfter),
    transformFailureFraction: number('tf-failures', flags.tfFailures, { max: 1 }),
    resumeAfterMs: number('resume-after', flags.resumeAfter),
    slowFraction: number('slow', flags.slow, { max: 1 }),
    slowFactor: number('slow-factor', flags.slowFactor, { min: 1 }),
  };
  return {
    nodes: number('nodes', flags.nodes, { min: 1, max: 100_000, integer: true })!,
    schedule: { name: flags.schedule, params },
    ...(customSchedules ? { customSchedules } : {}),
    ...(labelled
      ? {
          labels: (i: number) => ({
            ...(zones !== undefined ? { zone: `z${i % zones}` } : {}),
            ...(groupSize !== undefined ? { group: `g${Math.floor(i / groupSize)}` } : {}),
            ...(ring ? { ring: String(i) } : {}),
          }),
        }
      : {}),
    upgradeMs: number('upgrade-ms', flags.upgradeMs)!,
    jitter: number('jitter', flags.jitter, { max: 1 })!,
    learnMs: number('learn-ms', flags.learnMs)!,
    viewLagMs: number('view-lag-ms', flags.viewLagMs)!,
    tickMs: number('tick-ms', flags.tickMs, { min: 1 })!,
    failures: Object.fromEntries(Object.entries(failures).filter(([, v]) => v !== undefined)),
    seed: number('seed', flags.seed, { integer: true })!,
  };
}

const secs = (ms: number) => (ms < 120_000 ? `${(ms / 1000).toFixed(1)} s` : `${(ms / 60_000).toFixed(1)} min`);

/** The prediction as lines. */
export function renderSimulation(r: SimulationResult): string[] {
  const lines = [
    `simulated ${r.nodes} nodes, schedule ${r.schedule} (${r.events} schedule events, ${secs(r.wallMs)} to simulate, ${secs(r.cpuMs)} of CPU)`,
    r.finished ? `predicted duration: ${secs(r.durationMs)} until every live node runs the new version` : `does not finish: stopped at ${secs(r.durationMs)} with ${r.upgraded} of ${r.nodes} nodes upgraded${r.behind.length ? ` (behind: ${r.behind.join(', ')}${r.behind.length >= 10 ? ', …' : ''})` : ''}`,
    `most nodes upgrading at once: ${r.maxUpgrading}`,
    `capacity dip: ${r.minServing} of ${r.nodes} nodes serving (${((100 * r.minServing) / r.nodes).toFixed(1)}%) at ${secs(r.minServingAt)}`,
  ];
  if (r.deaths > 0) lines.push(`node deaths: ${r.deaths}, restarts: ${r.restarts}`);
  if (r.halted) lines.push(`halted at ${secs(r.halted.at)} with ${r.halted.upgraded} nodes upgraded: ${r.halted.reason}`);
  if (r.defaultGateHalt) lines.push(`a health gate (default thresholds) halts it at ${secs(r.defaultGateHalt.at)}, with ${r.defaultGateHalt.upgraded} nodes upgraded: ${r.defaultGateHalt.reason}`);
  else lines.push('a health gate (default thresholds) does not halt it');
  return lines;
}

export function registerSimulateCommand(program: Command): void {
  program
    .command('simulate [module]')
    .description('play a rollout out on a simulated fleet with the real scheduling functions: predicted duration, most nodes upgrading at once, capacity dip, where a health gate would halt')
    .option('--nodes <n>', 'fleet size', '1000')
    .option('--schedule <name>', 'a built-in schedule, or one the module exports in `schedules`', 'rolling')
    .option('--params <json>', 'the schedule\'s params, e.g. \'{"percent": 5}\'')
    .option('--zones <k>', 'label the nodes zone=z0 … z<k-1>, round robin')
    .option('--group-size <g>', 'label the nodes group=g0, g1, … in groups of g consecutive nodes')
    .option('--ring', 'label node i ring=i (its ring position)')
    .option('--upgrade-ms <ms>', 'mean duration of one node\'s upgrade', '2000')
    .option('--jitter <fraction>', 'spread of upgrade durations, ± this fraction', '0.25')
    .option('--learn-ms <ms>', 'nodes learn of the upgrade spread over this long', '500')
    .option('--view-lag-ms <ms>', 'how late a change of the node list reaches the schedules', '100')
    .option('--tick-ms <ms>', 'the schedules\' clock tick', '1000')
    .option('--deaths-per-minute <n>', 'node deaths per minute over the fleet')
    .option('--restart-after <ms>', 'a dead node restarts this much later (default: never)')
    .option('--tf-failures <fraction>', 'fraction of nodes whose transform fails (their manager halts the rollout)')
    .option('--resume-after <ms>', 'an operator resumes a halted rollout this much later (default: never)')
    .option('--slow <fraction>', 'fraction of nodes that upgrade slowly')
    .option('--slow-factor <x>', 'how much slower (default 5)')
    .option('--seed <n>', 'seed of the random choices', '1')
    .option('--json', 'print the result as JSON')
    .action(async (module: string | undefined, flags: SimulateFlags) => {
      let custom: Readonly<Record<string, unknown>> | undefined;
      if (module !== undefined) {
        const loaded = (await import(pathToFileURL(resolve(module)).href)) as { schedules?: unknown };
        if (loaded.schedules !== undefined && (typeof loaded.schedules !== 'object' || loaded.schedules === null)) {
          throw new MoltError(ErrorCode.InvalidDefinition, `${module}: \`schedules\` must be an object of named schedule machines`);
        }
        custom = loaded.schedules as Readonly<Record<string, unknown>> | undefined;
      }
      const { simulateRollout } = await import('../../simulate/fleet.ts');
      const result = simulateRollout(simulationFromFlags(flags, custom));
      process.stdout.write(flags.json ? `${JSON.stringify(result)}\n` : `${renderSimulation(result).join('\n')}\n`);
    });
}
