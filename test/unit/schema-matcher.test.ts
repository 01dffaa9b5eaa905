/**
 * A message schema is checked by a compiled form of its pattern
 * (runtime/schema.ts), not by ts-pattern's `isMatching`; the two must agree on
 * every schema and value. Over generated schemas — objects, tuples, literals
 * (NaN and -0 among them), every built-in type matcher, and matchers the
 * compiled form hands back to ts-pattern (`P.optional`, `P.array`, variadic
 * tuples, `P.union`, `P.not`, refined numbers and strings) — and generated
 * values, `checkSchema` (with non-finite numbers allowed, so that the schema
 * alone decides) accepts exactly what `isMatching` accepts.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import fc from 'fast-check';
import { isMatching, P } from 'ts-pattern';
import { checkSchema, type Schema } from '../../runtime/schema.ts';

const test = suite('schema matcher');

const KEYS = ['a', 'b', 'c'] as const;

const literal = fc.constantFrom<unknown>(0, 1, -0, Number.NaN, Number.POSITIVE_INFINITY, '', 'a', 'ab', true, false, null, undefined, 1n);

/** Schemas, each printable by its description for counterexamples. */
const schema: fc.Arbitrary<{ schema: unknown; text: string }> = fc.letrec<{ node: { schema: unknown; text: string } }>((tie) => {
  const leaf = fc.oneof(
    literal.map((v) => ({ schema: v, text: typeof v === 'bigint' ? `${v}n` : Object.is(v, -0) ? '-0' : String(v === '' ? "''" : v) })),
    fc.constantFrom(
      { schema: P.number, text: 'P.number' },
      { schema: P.string, text: 'P.string' },
      { schema: P.boolean, text: 'P.boolean' },
      { schema: P.bigint, text: 'P.bigint' },
      { schema: P.symbol, text: 'P.symbol' },
      { schema: P.nullish, text: 'P.nullish' },
      { schema: P.nonNullable, text: 'P.nonNullable' },
      { schema: P.any, text: 'P.any' },
      { schema: P._, text: 'P._' },
      { schema: P.unknown, text: 'P.unknown' },
      { schema: P.number.gt(0), text: 'P.number.gt(0)' },
      { schema: P.string.startsWith('a'), text: "P.string.startsWith('a')" },
    ),
  );
  const node = tie('node');
  return {
    node: fc.oneof(
      { depthSize: 'small', withCrossShrink: true },
      leaf,
      fc.dictionary(fc.constantFrom(...KEYS), node, { maxKeys: 3 }).map((fields) => ({
        schema: Object.fromEntries(Object.entries(fields).map(([k, v]) => [k, v.schema])),
        text: `{ ${Object.entries(fields).map(([k, v]) => `${k}: ${v.text}`).join(', ')} }`,
      })),
      fc.array(node, { maxLength: 3 }).map((items) => ({ schema: items.map((i) => i.schema), text: `[${items.map((i) => i.text).join(', ')}]` })),
      node.map((inner) => ({ schema: P.optional(inner.schema as Schema), text: `P.optional(${inner.text})` })),
      node.map((inner) => ({ schema: P.array(inner.schema as Schema), text: `P.array(${inner.text})` })),
      node.map((inner) => ({ schema: [inner.schema, ...P.array(P.number)], text: `[${inner.text}, ...P.array(P.number)]` })),
      node.map((inner) => ({ schema: P.not(inner.schema as Schema), text: `P.not(${inner.text})` })),
      fc.tuple(node, node).map(([x, y]) => ({ schema: P.union(x.schema as Schema, y.schema as Schema), text: `P.union(${x.text}, ${y.text})` })),
    ),
  };
}).node;

/** Values over the same keys and literals, so that schemas match often enough to tell. */
const value: fc.Arbitrary<unknown> = fc.letrec<{ value: unknown }>((tie) => ({
  value: fc.oneof(
    { depthSize: 'small' },
    literal,
    fc.constant(Symbol.for('s')),
    fc.dictionary(fc.constantFrom(...KEYS, 'd'), tie('value'), { maxKeys: 4 }),
    fc.array(tie('value'), { maxLength: 4 }),
  ),
})).value;

test('checkSchema accepts exactly what isMatching accepts', () => {
  let accepted = 0;
  let refused = 0;
  fc.assert(
    fc.property(schema, fc.array(value, { minLength: 1, maxLength: 8 }), (s, values) => {
      for (const v of values) {
        const expected = isMatching(s.schema as Schema, v);
        const got = checkSchema(s.schema as Schema, v, { nonFinite: true }).ok;
        if (got !== expected) throw new Error(`schema ${s.text}, value ${String(JSON.stringify(v, (_k, x) => (typeof x === 'bigint' ? `${x}n` : x)))}: checkSchema says ${got}, isMatching ${expected}`);
        if (expected) accepted++;
        else refused++;
      }
    }),
    { numRuns: 3000 },
  );
  // Both answers must be exercised, or the comparison proves little.
  assert.ok(accepted > 1000, `only ${accepted} values matched`);
  assert.ok(refused > 1000, `only ${refused} values were refused`);
});

test('literals compare as ts-pattern compares them (Object.is: NaN is NaN, -0 is not 0), nested or not', () => {
  const pairs: Array<[unknown, unknown]> = [
    [Number.NaN, Number.NaN],
    [0, -0],
    [-0, 0],
    [{ a: Number.NaN }, { a: Number.NaN }],
    [{ a: 0 }, { a: -0 }],
    [[-0], [0]],
    [[Number.NaN], [Number.NaN]],
  ];
  for (const [s, v] of pairs) {
    assert.is(checkSchema(s as Schema, v, { nonFinite: true }).ok, isMatching(s as Schema, v), `${String(s)} against ${String(v)}`);
  }
});

test('a value built to fit a nested schema is accepted, and a field of the wrong type is named', () => {
  const nested = { id: P.string, at: [P.number, P.number], tags: P.array(P.string), note: P.optional(P.string) };
  assert.equal(checkSchema(nested, { id: 'x', at: [1, 2], tags: ['a'] }), { ok: true });
  const wrong = checkSchema(nested, { id: 'x', at: [1, 'two'], tags: [] });
  assert.equal(wrong.ok, false);
  assert.equal(!wrong.ok && wrong.path, 'at[1]');
});

test('non-finite numbers are refused by default, with their path', () => {
  const check = checkSchema({ by: P.number, more: P.any }, { by: 1, more: { list: [1, Number.NaN] } });
  assert.equal(check.ok, false);
  assert.equal(!check.ok && check.path, 'more.list[1]');
  assert.equal(checkSchema({ by: P.number }, { by: Number.POSITIVE_INFINITY }, { nonFinite: true }), { ok: true });
  assert.equal(checkSchema({ m: P.any }, { m: new Map([['k', -Infinity]]) }).ok, false);
  assert.equal(checkSchema({ m: P.any }, { m: new Set([Number.NaN]) }).ok, false);
  assert.equal(checkSchema({ m: P.any }, { m: new Map([['k', 1]]) }), { ok: true });
});

test.run();
