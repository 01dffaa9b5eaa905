/**
 * `molt verify`'s rules on upgrades that break them, one defect each: every
 * one is caught, under the rule it breaks, with the shortest counterexample.
 * And the shipped templates and the demo's bank service pass.
 */
import '../support/molt-alias.ts';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import fc from 'fast-check';
import { defineActorType, defineVersion, isMoltError, P, ask, type EventsOf } from '../../runtime/index.ts';
import { formatReport, verifyType, type VerifyCall, type VerifyReport } from 'molt/verify';
import { setup } from 'xstate';
import * as broken from '../fixtures/verify-broken.ts';
import { colorset, colorsetDirect } from '../fixtures/colorset.ts';
import { colorsetChain } from '../fixtures/colorset-chain.ts';
import { counter } from '../fixtures/counter-v2.ts';
import { accountV1 } from '../../demo/service.ts';
import { accountV2 } from '../../demo/account-v2.ts';
import { accountV3 } from '../../demo/account-v3.ts';

const seed = 20261206;
const test = suite('verify: the rules of SOs and TFs');

const call = (version: number, message: string, request: Record<string, unknown> = {}): VerifyCall => ({ version, message, request });

function failure(report: VerifyReport) {
  assert.not.ok(report.ok, 'expected a broken rule');
  const [first] = report.failures;
  assert.ok(first);
  return first;
}

test('a TF that loses one unit: caught at once, on a new actor, by the first read', () => {
  const f = failure(verifyType(broken.losesUnit, { seed }));
  assert.is(f.rule, 'simulates-future');
  assert.equal(f.history, []);
  assert.equal(f.probe, [call(2, 'get')]);
  assert.match(f.detail, 'answered 0 on a node at counter@1 (through the future SO) but answered -1 on a node at counter@2 (natively)');
});

test('a future SO that turns decrement into an increment: caught with one call', () => {
  const f = failure(verifyType(broken.decrementIncrements, { seed }));
  assert.is(f.rule, 'simulates-future');
  assert.equal(f.history, []);
  assert.is(f.probe.length, 1);
  assert.is(f.probe[0]!.message, 'decrement');
  assert.match(f.detail, /v2 decrement\(\{"by":1\}\) answered 1 on a node at counter@1 .* but answered -1 on a node at counter@2/);
});

test('an SO that answers from stale state: caught after one call it did not see', () => {
  const f = failure(verifyType(broken.staleSO, { seed }));
  assert.is(f.rule, 'simulates-future');
  assert.is(f.history.length + f.probe.length, 2);
  assert.is(f.probe.at(-1)!.message, 'get');
});

test('a direct-style ColorSet SO that answers getColor: caught by the sequence rule (delete and insert by v1 callers it cannot see)', () => {
  const f = failure(verifyType(broken.colorsetDirectStale, { seed }));
  assert.is(f.rule, 'sequence');
  assert.equal(f.history, []);
  assert.equal(
    f.probe.map((c) => `${c.version} ${c.message}`),
    ['2 insertColor', '1 delete', '1 insert', '2 getColor'],
  );
  assert.ok(f.probe.every((c) => c.request.x === f.probe[0]!.request.x), 'one element throughout');
  assert.is(f.foundBy, 'small-scope');
  const text = formatReport(verifyType(broken.colorsetDirectStale, { seed }));
  assert.match(text, "rule 'sequence' broken");
  assert.match(text, "{ version: 2, message: 'insertColor', request: ");
});

test('the same ColorSet with an interceptor SO, or a direct one that disallows getColor, passes', () => {
  for (const type of [colorset, colorsetDirect, colorsetChain]) {
    const report = verifyType(type, { seed });
    assert.ok(report.ok, formatReport(report));
  }
});

test('a `down` that drops a field: caught by down(TF(s)) on a new actor', () => {
  const f = failure(verifyType(broken.downDropsCount, { seed }));
  assert.is(f.rule, 'down-inverse');
  assert.equal(f.history, []);
  assert.equal(f.probe, [call(1, 'get')]);
});

test('a TF that throws for some states only: caught with the history that reaches one', () => {
  const f = failure(verifyType(broken.throwsAt13, { seed }));
  assert.is(f.rule, 'transform-total');
  assert.match(f.detail, 'unlucky thirteen');
  assert.equal(f.probe, []);
  const total = f.history.reduce((sum, c) => sum + (c.message === 'increment' ? (c.request.by as number) : 0), 0);
  assert.is(total, 13, JSON.stringify(f.history));
});

test('an SO that changes its state in place and then disallows: caught by disallow honesty', () => {
  const f = failure(verifyType(broken.dishonestDisallow, { seed }));
  assert.is(f.rule, 'disallow-honest');
  assert.equal(f.history, [call(2, 'steps')]);
});

test('the test counter (compatible, with down) passes; seeds reproduce', () => {
  const a = verifyType(counter, { seed, runs: 30 });
  assert.ok(a.ok, formatReport(a));
  assert.is(a.seed, seed);
  assert.ok(a.results.some((r) => r.rule === 'down-inverse' && r.runs > 0));
});

/** A template's module, imported in place (not type-checked here: it imports 'molt', which only a scaffolded project has). */
const template = (path: string): Promise<Record<string, any>> => import(new URL(`../../templates/${path}`, import.meta.url).href);

test('the shipped templates pass', async () => {
  const { cartV1 } = await template('cart/src/cart/v1.ts');
  const { cartV2 } = await template('cart/src/cart/v2.ts');
  const { cartV3 } = await template('cart/src/cart/v3.ts');
  const { inventoryV1 } = await template('cart/src/inventory/v1.ts');
  const { colorsetV1 } = await template('colorset/src/colorset/v1.ts');
  const { colorsetV2 } = await template('colorset/src/colorset/v2.ts');
  const { counterV1 } = await template('counter/src/counter/v1.ts');
  for (const type of [
    defineActorType('cart', [cartV1, cartV2, cartV3]),
    defineActorType('inventory', [inventoryV1]),
    defineActorType('colorset', [colorsetV1, colorsetV2]),
    defineActorType('counter', [counterV1]),
  ]) {
    const report = verifyType(type, { seed });
    assert.ok(report.ok, `${type.name}: ${formatReport(report)}`);
  }
});

test("the demo's bank service passes, v1 → v2 → v3 and the chained 1 → 3", () => {
  const report = verifyType(defineActorType('account', [accountV1, accountV2, accountV3]), { seed });
  assert.ok(report.ok, formatReport(report));
  assert.equal([...new Set(report.results.map((r) => `${r.from}→${r.to}`))], ['1→2', '2→3', '1→3']);
});

test('a schema form that cannot be generated stops the verifier with its message and path; a generator fixes it', () => {
  const messages = { set: ask({ code: P.when((v: unknown) => typeof v === 'string' && v.length === 3) }, P.string) };
  const v1 = defineVersion({
    type: 'coded',
    version: 1,
    messages,
    machine: setup({ types: { context: {} as { code: string }, events: {} as EventsOf<typeof messages> } }).createMachine({ context: { code: '' } }),
    replies: { set: ({ request }) => String(request.code) },
  });
  const v2 = defineVersion({ type: 'coded', version: 2, messages, machine: v1.machine, replies: v1.replies }).from(v1, { compatible: true });
  const type = defineActorType('coded', [v1, v2]);
  try {
    verifyType(type, { seed });
    assert.unreachable('P.when was generated');
  } catch (e) {
    assert.ok(isMoltError(e, 'InvalidDefinition'));
    assert.match(e.message, "coded@1 set, field 'code'");
  }
  const report = verifyType(type, { seed, generators: { byPattern: new Map([[messages.set.request.code, fc.constantFrom('abc', 'xyz')]]) } });
  assert.ok(report.ok, formatReport(report));
});

test.run();
