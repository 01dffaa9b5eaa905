/**
 * The rehearsal of one stored actor (`rehearseActor`, what `molt rehearse`
 * runs per actor): its TF failures and identity breaks, and the reads it
 * answers once for two versions — only where the node serves them with the
 * very same turn.
 */
import '../support/molt-alias.ts';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { assign, setup } from 'xstate';
import { ask, defineActorType, defineVersion, disallow, P, type EventsOf } from '../../runtime/index.ts';
import { rehearsalReads, rehearseActor, type VerifyCall } from '../../runtime/verify/check.ts';
import { counter, counterV2 } from '../fixtures/counter-v2.ts';
import { counterV1 } from '../fixtures/counter.ts';
import { losesUnit, throwsAt13 } from '../fixtures/verify-broken.ts';

const test = suite('rehearseActor: one stored actor, carried and read before and after');

const call = (version: number, message: string, request: Record<string, unknown> = {}): VerifyCall => ({ version, message, request });
const stored = (count: number) => ({ v: 1, value: {}, context: { count } });

test('a correct upgrade goes unnoticed; a TF that throws or loses a unit is named, with the read that shows it', () => {
  const reads = rehearsalReads(counter.versions, 1, 2, { seed: 1 });
  assert.ok(reads.some((r) => r.version === 1) && reads.some((r) => r.version === 2), 'reads through both interfaces');
  assert.is(rehearseActor(counter.versions, 2, stored(5), reads), undefined);

  const thrown = rehearseActor(throwsAt13.versions, 2, stored(13), reads, 'acct-13');
  assert.is(thrown?.problem, 'transform-failed');
  assert.match(thrown!.detail, "failed for actor 'acct-13': unlucky thirteen");
  assert.is(rehearseActor(throwsAt13.versions, 2, stored(12), reads), undefined);

  const lost = rehearseActor(losesUnit.versions, 2, stored(7), [call(1, 'get'), call(2, 'get')]);
  assert.is(lost?.problem, 'identity');
  assert.equal(lost?.problem === 'identity' && lost.read, call(1, 'get'));
  assert.match(lost!.detail, 'at once, the read v1 get() answered 7 before the upgrade (at 1) (natively) but answered 6 after it (at 2) (through the compatible newer version)');
});

test('the way back: an actor whose `down` throws is named; without a `down` in the chain it is not tried', () => {
  // counterV2 with a `down` that cannot take a count of 13.
  const withDown = (down: ((input: { context: any }) => { context: unknown }) | undefined) =>
    defineActorType('counter', [
      counterV1,
      defineVersion({ type: 'counter', version: 2, messages: counterV2.messages, machine: counterV2.machine, replies: counterV2.replies }).from(counterV1, { ...(counterV2.upgrade as object), down } as never),
    ]);
  const downAt13 = withDown(({ context }) => {
    if (context.count === 13) throw new Error('no way back from thirteen');
    return { context: { count: context.count } };
  });
  const reads = rehearsalReads(downAt13.versions, 1, 2, { seed: 1 });
  const back = rehearseActor(downAt13.versions, 2, stored(13), reads, 'acct-13');
  assert.is(back?.problem, 'down-failed');
  assert.match(back!.detail, /down transform counter 2→1 failed for actor 'acct-13': no way back from thirteen/);
  assert.is(rehearseActor(downAt13.versions, 2, stored(12), reads), undefined);
  assert.is(rehearseActor(withDown(undefined).versions, 2, stored(13), reads), undefined, 'no `down`: a rollback is refused, not tried');
});

// Version 2 serves v1 callers through a past SO that also watches every call made through
// version 2's interface (an interceptor), and refuses a `get` it sees. Version 3 is
// compatible with 2, and its future SO disallows `get`.
const messages = { get: ask({}, P.number) };
const machine = setup({ types: { context: {} as { n: number }, events: {} as EventsOf<typeof messages> } }).createMachine({
  context: { n: 0 },
  on: { get: { actions: assign({ n: ({ context }) => context.n }) } },
});
const replies = { get: ({ snapshot }: { snapshot: { context: { n: number } } }) => snapshot.context.n };
const watchedV1 = defineVersion({ type: 'watched', version: 1, messages, machine, replies });
const watchedV2 = defineVersion({ type: 'watched', version: 2, messages, machine, replies }).from(watchedV1, {
  past: {
    handlers: { get: ({ target }) => target.get() },
    observe: ({ message }) => {
      if (message === 'get') throw new Error('a get through version 2');
    },
  },
});
const watchedV3 = defineVersion({ type: 'watched', version: 3, messages, machine, replies }).from(watchedV2, {
  compatible: true,
  future: { handlers: { get: disallow('not before the upgrade') } },
});
const watched = defineActorType('watched', [watchedV1, watchedV2, watchedV3]);

test('a read of a compatible version is answered as the next version\'s own read only where no interceptor SO watches it', () => {
  // After the upgrade (a node at 3), v3 get answers natively, unwatched; v2 get goes on to it
  // unchanged, but is watched through version 2, and fails. Before (a node at 2), v2 get is
  // watched and fails alike, and v3 get is disallowed (it compares nothing): no difference.
  const actor = { v: 2, value: {}, context: { n: 4 } };
  assert.is(rehearseActor(watched.versions, 3, actor, [call(3, 'get'), call(2, 'get')]), undefined);
  assert.is(rehearseActor(watched.versions, 3, actor, [call(2, 'get'), call(3, 'get')]), undefined);
});

// Version 2 is compatible with 1; both answer `echo` with the value they were sent.
const echoMessages = { echo: ask({ x: P.any }, P.any) };
const echoMachine = setup({ types: { context: {} as Record<string, never>, events: {} as EventsOf<typeof echoMessages> } }).createMachine({ context: {} });
const echoReplies = { echo: ({ request }: { request: { x: unknown } }) => request.x };
const echoV1 = defineVersion({ type: 'echo', version: 1, messages: echoMessages, machine: echoMachine, replies: echoReplies });
const echoV2 = defineVersion({ type: 'echo', version: 2, messages: echoMessages, machine: echoMachine, replies: echoReplies }).from(echoV1, {
  compatible: true,
  future: { handlers: { echo: ({ request, target }) => target.echo(request) } },
});
const echo = defineActorType('echo', [echoV1, echoV2]);

test('reads are answered once only when their requests are the same value, not merely printed alike', () => {
  // { x: null } and { x: undefined }, or 0 and -0, print alike; each is its own turn, on both sides.
  const actor = { v: 1, value: {}, context: {} };
  assert.is(rehearseActor(echo.versions, 2, actor, [call(1, 'echo', { x: null }), call(2, 'echo', { x: undefined })]), undefined);
  assert.is(rehearseActor(echo.versions, 2, actor, [call(1, 'echo', { x: 0 }), call(2, 'echo', { x: -0 })]), undefined);
});

test.run();
