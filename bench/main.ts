/**
 * `npm run bench`: Molt against the raw NATS floor, raw JetStream KV and a
 * peer framework, in the same run, with repetitions; prints a table and
 * writes `bench/results/<date>-<host>.json` and `bench/results/latest.json`.
 *
 * Usage: npm run bench -- [--quick] [--only a,b] [--reps N] [--cell-ms N] [--out DIR] [--list]
 *   --quick   a smoke run in seconds (tiny sizes, one repetition)
 *   --only    run only these benchmarks (see --list)
 *   Quick, partial (--only) and profiled runs write to a temporary directory
 *   unless --out is given; only a complete run writes bench/results/.
 *   --profile DIR  run every agent with `node --cpu-prof`, profiles in DIR
 *             (summarise one with `node --import tsx bench/profile.ts FILE`)
 *
 * Molt itself is measured as the package ships it: this process and every
 * agent load `runtime/` and `actors/` from `dist/` (bench/compiled/), built
 * first when a source file is newer; benchmark code and fixtures stay
 * TypeScript.
 *
 * @module
 */
// Registered before anything imports the runtime: the body is imported after it.
import './compiled/register.ts';

await import('./run.ts');
