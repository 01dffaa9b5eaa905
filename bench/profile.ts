/**
 * Summarises a V8 CPU profile (`node --cpu-prof`, or `npm run bench --
 * --profile DIR`): the functions with the most self time, and the inclusive
 * time of the functions you name.
 *
 * Usage: node --import tsx bench/profile.ts FILE.cpuprofile [--top N] [--grep REGEX]
 *
 * @module
 */
import { readFileSync } from 'node:fs';

interface Node {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}

const args = process.argv.slice(2);
const file = args[0];
if (!file) throw new Error('usage: bench/profile.ts FILE.cpuprofile [--top N] [--grep REGEX]');
const top = Number(args[args.indexOf('--top') + 1] ?? 0) || 25;
const grep = args.includes('--grep') ? new RegExp(args[args.indexOf('--grep') + 1]!) : undefined;
const profile = JSON.parse(readFileSync(file, 'utf8')) as { nodes: Node[]; samples: number[]; timeDeltas: number[] };

const byId = new Map(profile.nodes.map((n) => [n.id, n]));
const parent = new Map<number, number>();
for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
const self = new Map<number, number>();
profile.samples.forEach((id, i) => self.set(id, (self.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0)));
const total = [...self.values()].reduce((a, b) => a + b, 0);

const where = (n: Node) => {
  const url = n.callFrame.url.replace(/^file:\/\//, '').replace(/.*\/node_modules\//, '~/').replace(/.*\/main\//, '');
  return `${n.callFrame.functionName || '(anonymous)'} ${url}:${n.callFrame.lineNumber + 1}`;
};

// Self time by function (summed over call sites).
const selfByFn = new Map<string, number>();
for (const [id, t] of self) {
  const key = where(byId.get(id)!);
  selfByFn.set(key, (selfByFn.get(key) ?? 0) + t);
}
// Inclusive time by function: each sample counts once per distinct function on its stack.
const inclusive = new Map<string, number>();
for (const [id, t] of self) {
  const seen = new Set<string>();
  for (let cur: number | undefined = id; cur !== undefined; cur = parent.get(cur)) {
    const key = where(byId.get(cur)!);
    if (seen.has(key)) continue;
    seen.add(key);
    inclusive.set(key, (inclusive.get(key) ?? 0) + t);
  }
}
const pct = (t: number) => `${((100 * t) / total).toFixed(1).padStart(5)}%`;
console.log(`${file}: ${(total / 1000).toFixed(0)} ms sampled`);
console.log(`\nself time, top ${top}:`);
for (const [k, t] of [...selfByFn].sort((a, b) => b[1] - a[1]).slice(0, top)) console.log(`${pct(t)}  ${k}`);
console.log(`\ninclusive time${grep ? ` matching ${grep}` : ''}, top ${top}:`);
for (const [k, t] of [...inclusive].filter(([k]) => !grep || grep.test(k)).sort((a, b) => b[1] - a[1]).slice(0, top)) console.log(`${pct(t)}  ${k}`);
