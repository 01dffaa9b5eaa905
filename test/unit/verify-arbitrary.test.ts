/**
 * Arbitraries derived from message schemas: every value generated passes the
 * schema, every declared form is reached, and a form that cannot be generated
 * is a typed error naming the message and the field.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import fc from 'fast-check';
import { isMatching, P as TsP } from 'ts-pattern';
import { ask, checkSchema, defineVersion, isMoltError, P, tell, type EventsOf } from '../../runtime/index.ts';
import { messageArbitraries, requestArbitrary, shapeOf } from 'molt/verify';
import { setup } from 'xstate';

const messages = {
  everything: tell({
    n: P.number,
    i: P.number.int().between(3, 7),
    pos: P.number.int().positive(),
    s: P.string,
    short: P.string.minLength(2).maxLength(3),
    prefixed: P.string.startsWith('sku-'),
    hex: P.string.regex(/^[0-9a-f]{4}$/),
    flag: P.boolean,
    lit: 'fixed',
    status: P.union('open', 'closed', 'held'),
    nullable: P.union(P.string, null),
    maybe: P.optional(P.number),
    chainedOptional: P.string.optional(),
    list: P.array(P.number.int()),
    table: P.record(P.string, P.number),
    nested: { inner: { deep: P.array({ k: P.string, v: P.union(1, 2) }) } },
    pair: [P.number, P.string],
  }),
  even: ask({ x: P.when((v: unknown) => typeof v === 'number' && v % 2 === 0) }, P.number),
  foreign: ask({ x: TsP.when((v: unknown) => v === 1) }, P.number),
  plain: ask({ x: TsP.number, y: TsP.string }, P.number),
};

const version = defineVersion({
  type: 'shapes',
  version: 1,
  messages,
  machine: setup({ types: { context: {} as object, events: {} as EventsOf<typeof messages> } }).createMachine({ context: {} }),
  replies: { even: () => 0, foreign: () => 0, plain: () => 0 },
});

const test = suite('verify: arbitraries from message schemas');

test('every value generated for a schema of every form passes that schema', () => {
  const arb = requestArbitrary(version, 'everything');
  for (const value of fc.sample(arb, { numRuns: 500, seed: 7 })) {
    const check = checkSchema(messages.everything.request, value);
    assert.ok(check.ok, `${JSON.stringify(value)}: ${JSON.stringify(check)}`);
  }
});

test('every option of a union, and both sides of an optional field, are reached', () => {
  const values = fc.sample(requestArbitrary(version, 'everything'), { numRuns: 500, seed: 8 }) as Array<Record<string, unknown>>;
  assert.equal(new Set(values.map((v) => v.status)), new Set(['open', 'closed', 'held']));
  assert.ok(values.some((v) => v.nullable === null) && values.some((v) => typeof v.nullable === 'string'));
  assert.ok(values.some((v) => !('maybe' in v)) && values.some((v) => typeof v.maybe === 'number'));
  assert.ok(values.some((v) => (v.list as number[]).length > 1));
  assert.ok(values.some((v) => Object.keys(v.table as object).length > 0));
  assert.equal(new Set(values.map((v) => v.i)), new Set([3, 4, 5, 6, 7]));
});

test('small strings collide: two generated keys are often equal (which is what finds bugs)', () => {
  const values = fc.sample(requestArbitrary(version, 'everything'), { numRuns: 200, seed: 9 }) as Array<{ s: string }>;
  assert.ok(new Set(values.map((v) => v.s)).size < 100, 'expected repeats among 200 strings');
});

test('P.when is reported by message and path, as a typed error', () => {
  try {
    requestArbitrary(version, 'even');
    assert.unreachable('P.when was generated');
  } catch (e) {
    assert.ok(isMoltError(e, 'InvalidDefinition'), String(e));
    assert.match(e.message, "shapes@1 even, field 'x'");
    assert.match(e.message, 'P.when');
    assert.equal(e.data.path, 'x');
  }
  assert.throws(() => messageArbitraries(version), /shapes@1 even, field 'x'/);
});

test('a supplied generator fills a P.when, by path or by pattern', () => {
  const evens = fc.integer({ min: -5, max: 5 }).map((n) => n * 2);
  const byPath = requestArbitrary(version, 'even', { overrides: { byPath: { 'shapes@1 even x': evens } } });
  for (const v of fc.sample(byPath, 50)) assert.ok(isMatching(messages.even.request, v), JSON.stringify(v));
  const byPattern = requestArbitrary(version, 'even', { overrides: { byPattern: new Map([[messages.even.request.x, evens]]) } });
  for (const v of fc.sample(byPattern, 50)) assert.ok(isMatching(messages.even.request, v), JSON.stringify(v));
});

test("a matcher from ts-pattern's own P is refused with the fix; its primitives are still recognised", () => {
  assert.throws(() => requestArbitrary(version, 'foreign'), /shapes@1 foreign, field 'x'.*import P from 'molt'/);
  for (const v of fc.sample(requestArbitrary(version, 'plain'), 50)) assert.ok(isMatching(messages.plain.request, v));
});

test("Molt's P matches exactly what ts-pattern's P matches", () => {
  const pairs: Array<[unknown, unknown]> = [
    [P.number.int().positive(), TsP.number.int().positive()],
    [P.union('a', P.number), TsP.union('a', TsP.number)],
    [P.array(P.string), TsP.array(TsP.string)],
    [P.record(P.string, P.number), TsP.record(TsP.string, TsP.number)],
    [{ x: P.optional(P.string) }, { x: TsP.optional(TsP.string) }],
    [P.string.minLength(2), TsP.string.minLength(2)],
  ];
  const values = [0, 1, -1, 1.5, 'a', 'ab', '', null, undefined, [], ['x'], [1], {}, { x: 'y' }, { x: 1 }, { k: 2 }];
  for (const [mine, theirs] of pairs) {
    for (const value of values) assert.is(isMatching(mine as never, value), isMatching(theirs as never, value), `${JSON.stringify(value)}`);
  }
  assert.equal(shapeOf(P.number.int()), { kind: 'primitive', type: 'number', refinements: [{ method: 'int', args: [] }] });
});

test.run();
