/**
 * `molt simulate` at fleet scale (issue 19): the real scheduling functions of
 * 10,000 nodes, one per node, on the simulated clock — `rolling` by 5 % and
 * `groups` of three replicas. Target: a 10,000-node simulation finishes in
 * under a minute of wall-clock time here (absolute: there is no baseline to
 * run beside it). Rows: simulated duration, schedule events delivered,
 * wall-clock and CPU time per schedule (on a shared machine the wall-clock
 * time is the CPU time stretched by the other load). Runs of this benchmark
 * alone: `npm run bench -- --only simulate --reps 3 --out bench/results/simulate`
 * (docs/performance.md has the figures, and a before/after of the same run).
 *
 * @module
 */
import { stat, type Benchmark } from '../harness.ts';
import { simulateRollout, type SimulationOptions } from '../../runtime/simulate/fleet.ts';

export const simulate: Benchmark = {
  name: 'simulate',
  title: 'molt simulate: 10,000 nodes, real schedules, simulated clock',
  async run(ctx) {
    const nodes = ctx.options.quick ? 1000 : 10_000;
    const cases: Array<{ id: string; options: SimulationOptions }> = [
      { id: 'rolling 5%', options: { nodes, schedule: { name: 'rolling', params: { percent: 5 } } } },
      { id: 'groups of 3', options: { nodes, schedule: { name: 'groups' }, labels: (i) => ({ group: `g${Math.floor(i / 3)}` }) } },
    ];
    const reps = ctx.options.quick ? 1 : Math.max(1, Math.min(ctx.options.reps, 3));
    for (const c of cases) {
      const wall: number[] = [];
      const cpu: number[] = [];
      let last: ReturnType<typeof simulateRollout> | undefined;
      for (let rep = 0; rep < reps; rep++) {
        last = simulateRollout(c.options);
        wall.push(last.wallMs);
        cpu.push(last.cpuMs);
      }
      ctx.row({
        system: `simulate ${c.id}`,
        setting: `${nodes} nodes`,
        metrics: { wall_ms: stat(wall), cpu_ms: stat(cpu), simulated_ms: stat([Math.round(last!.durationMs)]), events: stat([last!.events]), max_upgrading: stat([last!.maxUpgrading]) },
      });
      ctx.target({
        name: `simulate.${c.id.replace(/[^a-z0-9]+/g, '-')}.wall`,
        description: `molt simulate of ${nodes} nodes, ${c.id}: wall-clock time`,
        unit: 'ms',
        value: wall,
        comparison: '<=',
        target: 60_000,
        params: { nodes, schedule: c.options.schedule.name },
      });
    }
  },
};
