import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { setup } from 'xstate';
import { ask, defineActorType, defineVersion, disallow, tell, P, type EventsOf } from '../../../runtime/index.ts';
import { cellFor, compatMatrix, formatMarkdown, formatTable, type Support } from '../../../codegen/compat.ts';
import { colorsetChain } from '../../fixtures/colorset-chain.ts';

const test = suite('codegen: compat');

// A type whose chain exercises every kind of support:
//   v1 → v2: past SO (with a standing disallow) and future SO (with a handler that may disallow at run time)
//   v2 → v3: compatible (no past SO), future SO
//   v3 → v4: no SOs at all
const m1 = { get: ask({}, P.number), set: tell({ n: P.number }) };
const m2 = { get: ask({}, P.number), set: tell({ n: P.number }), double: tell({}) };
const m3 = { ...m2, half: tell({}) };
const m4 = { get: ask({}, P.number) };
const machineOf = <T extends Record<string, any>>(_m: T) =>
  setup({ types: { context: {} as { n: number }, events: {} as EventsOf<T> } }).createMachine({ context: { n: 0 } });
const get = ({ snapshot }: { snapshot: { context: { n: number } } }) => snapshot.context.n;

const v1 = defineVersion({ type: 'num', version: 1, messages: m1, machine: machineOf(m1), replies: { get } });
const v2 = defineVersion({ type: 'num', version: 2, messages: m2, machine: machineOf(m2), replies: { get } }).from(v1, {
  past: { handlers: { get: ({ target }) => target.get(), set: disallow('v2 numbers are even') } },
  future: {
    handlers: {
      get: ({ target }) => target.get(),
      set: ({ request, target }) => target.set(request),
      double: ({ target }) => (target.get() > 1000 ? disallow('too big') : target.set({ n: 2 * target.get() })),
    },
  },
});
const v3 = defineVersion({ type: 'num', version: 3, messages: m3, machine: machineOf(m3), replies: { get } }).from(v2, {
  compatible: true,
  future: {
    handlers: {
      get: ({ target }) => target.get(),
      set: ({ request, target }) => target.set(request),
      double: ({ target }) => target.double(),
      half: disallow('v2 cannot halve'),
    },
  },
});
const v4 = defineVersion({ type: 'num', version: 4, messages: m4, machine: machineOf(m4), replies: { get } }).from(v3, {});
const num = defineActorType('num', [v1, v2, v3, v4]);

const support = (caller: number, message: string, node: number): Support => cellFor(num, caller, message, node).support;

test('cellFor - the node’s own version is native', () => {
  for (const v of [1, 2, 3, 4]) assert.is(support(v, 'get', v), 'native');
});

test('cellFor - one version back goes through the past SO; a standing disallow is disallowed, with its reason', () => {
  assert.is(support(1, 'get', 2), 'past');
  assert.equal(cellFor(num, 1, 'set', 2), { node: 2, support: 'disallowed', reason: 'v2 numbers are even' });
});

test('cellFor - a version declared compatible serves the previous version’s calls itself', () => {
  assert.is(support(2, 'double', 3), 'compatible');
});

test('cellFor - no past SO and not compatible: unsupported', () => {
  assert.is(support(3, 'get', 4), 'unsupported');
});

test('cellFor - one version ahead goes through the future SO; a handler that may disallow at run time counts as served', () => {
  assert.is(support(2, 'double', 1), 'future');
  assert.is(support(3, 'half', 2), 'disallowed');
  assert.is(support(4, 'get', 3), 'unsupported', 'v4 has no future SO');
});

test('cellFor - two versions ahead goes through the chain of both future SOs, and needs both', () => {
  assert.equal(cellFor(num, 3, 'get', 1), { node: 1, support: 'future', steps: 2 });
  assert.is(support(3, 'half', 1), 'disallowed');
  assert.is(support(4, 'get', 2), 'unsupported');
});

test('cellFor - older versions go through the past SOs chained, across compatible steps, as far as the chain is unbroken', () => {
  assert.equal(cellFor(num, 1, 'get', 3), { node: 3, support: 'past', steps: 2 }, 'the past SO of v2, then v3 (compatible)');
  assert.equal(cellFor(num, 1, 'set', 3), { node: 3, support: 'disallowed', reason: 'v2 numbers are even' });
  assert.equal(cellFor(num, 2, 'double', 3), { node: 3, support: 'compatible', steps: 1 });
  assert.is(support(1, 'get', 4), 'unsupported', 'v4 has no past SO: the chain stops at v4');
  assert.is(support(4, 'get', 1), 'unsupported', 'three versions ahead is never served');
  // ColorSet over four versions: three past SOs.
  assert.equal(cellFor(colorsetChain, 1, 'insert', 4), { node: 4, support: 'past', steps: 3 });
  assert.equal(cellFor(colorsetChain, 2, 'getColor', 4), { node: 4, support: 'past', steps: 2 });
});

test('compatMatrix - one row per message of each version, one cell per node version, JSON-clean', () => {
  const matrix = compatMatrix(num);
  assert.equal(matrix.versions, [1, 2, 3, 4]);
  assert.is(matrix.rows.length, 2 + 3 + 4 + 1);
  assert.equal(matrix.rows[0], {
    version: 1,
    message: 'get',
    kind: 'ask',
    cells: [
      { node: 1, support: 'native' },
      { node: 2, support: 'past', steps: 1 },
      { node: 3, support: 'past', steps: 2 },
      { node: 4, support: 'unsupported' },
    ],
  });
  assert.equal(JSON.parse(JSON.stringify(matrix)), matrix);
});

test('formatTable - aligned columns, a legend for what is used, and the disallow reasons', () => {
  const text = formatTable(compatMatrix(num));
  assert.match(text, /^caller\s+message\s+node v1\s+node v2\s+node v3\s+node v4$/m);
  assert.match(text, /^num@1\s+get\s+native\s+past SO\s+past SO chain \(2\)\s+—$/m);
  assert.match(text, /^\s+set\s+native\s+DISALLOWED\s+DISALLOWED\s+—$/m);
  assert.match(text, /^num@3\s+get\s+future SO chain \(2\)\s+future SO\s+native\s+—$/m);
  assert.match(text, /^compatible\s+the node's object, declared compatible/m);
  assert.match(text, 'num@1 set on a node at v2: v2 numbers are even');
});

test('formatTable - the ColorSet chain: a v1 caller on a v4 node through three past SOs', () => {
  const text = formatTable(compatMatrix(colorsetChain));
  assert.match(text, /^colorset@1\s+insert\s+native\s+past SO\s+past SO chain \(2\)\s+past SO chain \(3\)$/m);
  assert.match(text, /^colorset@4\s+insert\s+—\s+future SO chain \(2\)\s+future SO\s+native$/m);
});

test('formatMarkdown - a GFM table with one row per message', () => {
  const md = formatMarkdown(compatMatrix(num));
  assert.match(md, '| caller | message | node v1 | node v2 | node v3 | node v4 |');
  assert.match(md, '| num@1 | `set` | native | **disallowed** | **disallowed** | — |');
  assert.match(md, '| num@1 | `get` | native | past SO | past SO chain (2) | — |');
  assert.is(md.split('\n').filter((l) => l.startsWith('| num@')).length, 10);
});

test.run();
