import { admit, type TypeVersions } from '../runtime/internal.ts';
import { cacheV1, PAYLOAD } from '../bench/fixtures/service.ts';
import { cpuPerOp } from '../bench/benchmarks/breakdown.ts';
const types: TypeVersions = { name: 'cache', byVersion: new Map([[1, cacheV1]]), current: 1, retired: new Set() };
const r: number[] = [];
for (let i = 0; i < 5; i++) r.push(cpuPerOp(() => { admit(types, 1, 'inc', PAYLOAD); }, 200));
console.log('admit µs', r.map((x) => x.toFixed(2)).join(' '));
