import { initialActorState, nativeRoute, runTurn, type TypeVersions } from '../runtime/internal.ts';
import { cacheV1, PAYLOAD } from '../bench/fixtures/service.ts';
import { cpuPerOp } from '../bench/benchmarks/breakdown.ts';
const types: TypeVersions = { name: 'cache', byVersion: new Map([[1, cacheV1]]), current: 1, retired: new Set() };
let state = initialActorState(types);
const r: number[] = [];
for (let i = 0; i < 5; i++) r.push(cpuPerOp(() => { state = runTurn(types, state, nativeRoute, 1, 'inc', PAYLOAD).state; }, 300));
console.log('runTurn µs', r.map((x) => x.toFixed(2)).join(' '), 'min', Math.min(...r).toFixed(2));
