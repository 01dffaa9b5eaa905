/**
 * `molt contract`: the JSON Schemas derived from ts-pattern declarations
 * accept exactly what the node's own check accepts (on the forms they
 * express), the forms they cannot express are named with their path, the
 * served versions are the upgrade layer's, and every error code is listed.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import fc from 'fast-check';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildContract, toJsonSchema, type Contract } from '../../runtime/contract/index.ts';
import { P, ErrorCode, checkSchema } from '../../runtime/index.ts';
import chain from '../fixtures/counter-chain.ts';
import colors from '../fixtures/colorset.ts';
import { validates } from '../support/json-schema-check.ts';

const test = suite('molt contract');

function messageOf(contract: Contract, type: string, version: number, message: string) {
  const v = contract.types.find((t) => t.name === type)!.versions.find((x) => x.version === version)!;
  return v.messages[message]!;
}

test('the counter chain: request and reply schemas of every version, checked against sample payloads', () => {
  const contract = buildContract(chain);
  assert.is(contract.service, 'counters');
  assert.equal(contract.unexpressed, []);
  const increment = messageOf(contract, 'counter', 1, 'increment');
  assert.is(increment.kind, 'ask');
  assert.ok(validates(increment.request, { by: 2 }));
  assert.not.ok(validates(increment.request, { by: 'two' }));
  assert.not.ok(validates(increment.request, {}));
  assert.ok(validates(increment.reply, 42));
  assert.not.ok(validates(increment.reply, '42'));
  const stats = messageOf(contract, 'counter', 2, 'stats');
  assert.ok(validates(stats.reply, { count: 1, ops: 3 }));
  assert.not.ok(validates(stats.reply, { count: 1 }));
  const label = messageOf(contract, 'counter', 3, 'label');
  assert.is(label.kind, 'tell');
  assert.ok(validates(label.request, { text: 'x' }));
  assert.ok(validates(label.reply, null));
  assert.is((label.reply as Record<string, unknown>)['x-superjson'], 'undefined');
});

test('the versions each node version serves: native, past chain, future and future2, with standing refusals', () => {
  const contract = buildContract(chain);
  const counter = contract.types.find((t) => t.name === 'counter')!;
  const serves = (node: number) => counter.versions.find((v) => v.version === node)!.serves;
  assert.equal(serves(1).map((r) => [r.version, r.via, r.steps, r.onceLoaded ?? false]), [
    [1, 'native', 0, false],
    [2, 'future', 1, true],
    [3, 'future', 2, true],
  ]);
  assert.equal(serves(3).map((r) => [r.version, r.via, r.steps]), [
    [1, 'past', 2],
    [2, 'past', 1],
    [3, 'native', 0],
  ]);
  assert.is(serves(1).find((r) => r.version === 2)!.disallowed!.stats, 'v1 does not count operations, so ops would be a guess');
});

test('a union with nullish and an array: the colorset fixture', () => {
  const contract = buildContract(colors);
  assert.equal(contract.unexpressed, []);
  const colorset = contract.types[0]!;
  const last = colorset.versions.at(-1)!;
  const getColor = last.messages.getColor!;
  assert.ok(validates(getColor.reply, 'red'));
  assert.ok(validates(getColor.reply, null));
  assert.not.ok(validates(getColor.reply, 3));
  const elements = last.messages.elements!;
  assert.ok(validates(elements.reply, [1, 2, 3]));
  assert.not.ok(validates(elements.reply, [1, 'x']));
});

// Patterns whose every form has a JSON Schema; the schema must accept exactly what checkSchema accepts.
const expressible = {
  flat: { by: P.number, name: P.string, on: P.boolean },
  refined: { n: P.number.int().gte(0).lt(100), s: P.string.minLength(2).maxLength(5), p: P.number.positive() },
  strings: { a: P.string.startsWith('ab'), b: P.string.endsWith('z'), c: P.string.includes('.'), d: P.string.regex(/^[a-c]+$/) },
  optional: { must: P.number, may: P.optional(P.string), also: P.string.optional() },
  unions: { kind: P.union('a', 'b', 3), either: P.union(P.string, { x: P.number }), or: P.number.or(P.string) },
  nested: { item: { price: P.number, tags: P.array(P.string) }, pairs: [P.string, P.number] },
  arrays: { list: P.array({ id: P.number.int() }), any: P.array(), rest: [P.string, ...P.array(P.number)] },
  records: { byName: P.record(P.string, P.number), plain: P.record(P.boolean), named: P.record(P.union('a', 'b'), P.number) },
  misc: { nothing: P.nullish, anything: P.any, not: P.not(P.string), both: P.intersection({ a: P.number }, { b: P.string }), lit: 'x', n: null },
  selected: { s: P.select(P.number), t: P.select('name', P.string) },
};

const samples: unknown[] = [
  {}, { by: 1, name: 'x', on: true }, { by: '1', name: 'x', on: true }, { by: 1, name: 'x' },
  { n: 0, s: 'ab', p: 1 }, { n: 99, s: 'abcde', p: 0.5 }, { n: 100, s: 'ab', p: 1 }, { n: 1.5, s: 'ab', p: 1 }, { n: -1, s: 'ab', p: 1 }, { n: 1, s: 'a', p: 1 }, { n: 1, s: 'abcdef', p: 1 }, { n: 1, s: 'ab', p: 0 },
  { a: 'abc', b: 'xyz', c: 'a.b', d: 'abc' }, { a: 'bc', b: 'xyz', c: 'a.b', d: 'abc' }, { a: 'abc', b: 'xy', c: 'a.b', d: 'abc' }, { a: 'abc', b: 'z', c: 'ab', d: 'abc' }, { a: 'abc', b: 'z', c: '.', d: 'abd' },
  { must: 1 }, { must: 1, may: 'x' }, { must: 1, may: 2 }, { may: 'x' }, { must: 1, also: 'y' }, { must: 1, also: null },
  { kind: 'a', either: 'x', or: 1 }, { kind: 3, either: { x: 1 }, or: 's' }, { kind: 'c', either: 'x', or: 1 }, { kind: 'a', either: { x: 'y' }, or: 1 }, { kind: 'a', either: 'x', or: true },
  { item: { price: 1, tags: [] }, pairs: ['a', 1] }, { item: { price: 1, tags: ['a', 2] }, pairs: ['a', 1] }, { item: { price: 1, tags: [] }, pairs: ['a', 1, 2] }, { item: { price: 1, tags: [] }, pairs: ['a'] },
  { list: [{ id: 1 }], any: [1, 'x'], rest: ['a'] }, { list: [{ id: 1.5 }], any: [], rest: ['a', 1, 2] }, { list: [], any: {}, rest: ['a'] }, { list: [], any: [], rest: [] }, { list: [], any: [], rest: ['a', 'b'] },
  { byName: { a: 1, b: 2 }, plain: {}, named: { a: 1 } }, { byName: { a: 'x' }, plain: {}, named: {} }, { byName: {}, plain: { x: true }, named: { c: 1 } }, { byName: {}, plain: { x: 1 }, named: { b: 'x' } },
  { nothing: null, anything: 5, not: 1, both: { a: 1, b: 'x' }, lit: 'x', n: null }, { nothing: 0, anything: 5, not: 1, both: { a: 1, b: 'x' }, lit: 'x', n: null },
  { nothing: null, anything: 5, not: 'x', both: { a: 1, b: 'x' }, lit: 'x', n: null }, { nothing: null, anything: 5, not: 1, both: { a: 1 }, lit: 'x', n: null }, { nothing: null, anything: 5, not: 1, both: { a: 1, b: 'x' }, lit: 'y', n: null },
  { s: 1, t: 'x' }, { s: 'x', t: 'x' }, { s: 1, t: 2 },
];

test('every expressible form: the JSON Schema accepts exactly what the node accepts', () => {
  for (const [name, pattern] of Object.entries(expressible)) {
    const { schema, unexpressed } = toJsonSchema(pattern);
    assert.equal(unexpressed, [], name);
    for (const value of samples) {
      const node = checkSchema(pattern, value).ok;
      assert.is(validates(schema, value), node, `${name} on ${JSON.stringify(value)}: the node says ${node}`);
    }
  }
});

test('every expressible form, on random JSON values shaped like its payloads', () => {
  const leaf = fc.oneof(fc.integer({ min: -5, max: 120 }), fc.double({ noNaN: true, noDefaultInfinity: true }), fc.constantFrom('a', 'ab', 'abc', 'xyz', 'a.b', 'x', 'abcdef'), fc.boolean(), fc.constant(null));
  const value: fc.Arbitrary<unknown> = fc.letrec((tie) => ({
    node: fc.oneof({ depthSize: 'small' }, leaf, fc.array(tie('node'), { maxLength: 3 }), fc.dictionary(fc.constantFrom('a', 'b', 'x', 'id', 'price', 'tags'), tie('node'), { maxKeys: 3 })),
  })).node;
  for (const [name, pattern] of Object.entries(expressible)) {
    const { schema } = toJsonSchema(pattern);
    const keys = Object.keys(pattern);
    fc.assert(
      fc.property(fc.record(Object.fromEntries(keys.map((k) => [k, value])), { requiredKeys: [] }), (payload) => {
        return validates(schema, payload) === checkSchema(pattern, payload).ok;
      }),
      { numRuns: 300 },
    );
    void name;
  }
});

test('forms JSON Schema cannot express are named, with their path', () => {
  const { schema, unexpressed } = toJsonSchema({ a: { b: P.when((x: unknown) => x === 1) }, items: P.array({ s: P.symbol }), r: P.string.regex(/x/i), n: P.record(P.number, P.string) });
  assert.equal(unexpressed.map((u) => [u.path, u.form]), [
    ['a.b', 'P.when'],
    ['items[].s', 'P.symbol'],
    ['r', 'P.string.regex(/x/i)'],
    ['n[key]', 'a P.record key pattern that is not a string pattern'],
  ]);
  assert.ok(validates(schema, { a: { b: 'anything' }, items: [{ s: 1 }], r: 'x', n: { '1': 'x' } }), 'an unexpressed form accepts anything at its place');
});

test('values JSON cannot carry are marked with their superjson annotation', () => {
  const { schema, unexpressed } = toJsonSchema({ at: P.instanceOf(Date), big: P.bigint, tags: P.set(P.string), m: P.map(P.string, P.number) });
  assert.equal(unexpressed, []);
  const props = schema.properties as Record<string, Record<string, unknown>>;
  assert.equal([props.at!['x-superjson'], props.big!['x-superjson'], props.tags!['x-superjson'], props.m!['x-superjson']], ['Date', 'bigint', 'set', 'map']);
  assert.ok(validates(schema, { at: '2026-12-06T10:00:00.000Z', big: '-12', tags: ['a'], m: [['a', 1]] }));
  assert.not.ok(validates(schema, { at: '2026-12-06T10:00:00.000Z', big: '1.5', tags: ['a'], m: [['a', 1]] }));
});

test("a matcher not built with Molt's P is reported, not guessed", async () => {
  // A matcher from ts-pattern's own P (or another copy of it): its parts are closures.
  const opaque = { [Symbol.for('@ts-pattern/matcher')]: () => ({ match: () => ({ matched: true }), matcherType: 'or' }) };
  const { unexpressed } = toJsonSchema({ x: opaque });
  assert.equal(unexpressed.map((u) => [u.path, u.form]), [['x', 'a P.union matcher']]);
});

test('the error codes: every code of runtime/errors.ts, with whether a retry may succeed and who sends it', () => {
  const contract = buildContract(chain);
  assert.equal(contract.errors.map((e) => e.code), Object.values(ErrorCode));
  const byCode = new Map(contract.errors.map((e) => [e.code, e]));
  assert.is(byCode.get('Unavailable')!.retryable, true);
  assert.is(byCode.get('InvalidPayload')!.retryable, false);
  assert.is(byCode.get('VersionUnsupported')!.retryable, 'depends');
  assert.equal(byCode.get('Timeout')!.sentBy, ['client']);
  assert.equal(byCode.get('InvalidDefinition')!.sentBy, []);
});

test('molt contract <module> --out writes the contract; stdout without --out', () => {
  const dir = mkdtempSync(join(tmpdir(), 'molt-contract-'));
  const out = join(dir, 'contract.json');
  const run = spawnSync(process.execPath, ['bin/molt.js', 'contract', 'test/fixtures/counter-chain.ts', '--out', out], { encoding: 'utf8' });
  assert.is(run.status, 0, run.stderr);
  const written = JSON.parse(readFileSync(out, 'utf8')) as Contract;
  assert.equal(written, JSON.parse(JSON.stringify(buildContract(chain))));
  const stdout = spawnSync(process.execPath, ['bin/molt.js', 'contract', 'test/fixtures/counter.ts'], { encoding: 'utf8' });
  assert.is(stdout.status, 0, stdout.stderr);
  assert.is((JSON.parse(stdout.stdout) as Contract).types.map((t) => t.name).join(), 'counter,cache');
});

test.run();
