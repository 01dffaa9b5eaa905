/**
 * The reply subjects a node answers (runtime/node/reply-subject.ts): only a
 * caller inbox; anything else is dropped and logged at warn, at most once a
 * second.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createJsonLogger, SimulatedClock } from '../../runtime/index.ts';
import { checkInboxPrefix, createReplyCheck, isUnderPrefix } from '../../runtime/node/reply-subject.ts';

test('reply subject - caller inboxes pass, everything else does not', () => {
  for (const ok of ['_INBOX.abc', '_INBOX.molt.x1.42', '_INBOX.billing.molt.x.1']) assert.ok(isUnderPrefix(ok, '_INBOX'), ok);
  for (const bad of [
    '$KV.molt_shop_state.counter.=YQ',
    '$JS.API.STREAM.PURGE.KV_molt_shop_state',
    '_INBOX',
    '_INBOX.',
    '_INBOXES.x',
    '_INBOX_x.y',
    '_INBOX.*',
    '_INBOX.a.>',
    '_INBOX.a b',
    'molt.shop.counter.1.=YQ',
  ]) {
    assert.not.ok(isUnderPrefix(bad, '_INBOX'), bad);
  }
  assert.ok(isUnderPrefix('_INBOX.billing.x', '_INBOX.billing'));
  assert.not.ok(isUnderPrefix('_INBOX.web.x', '_INBOX.billing'));
  assert.throws(() => checkInboxPrefix('_INBOX.*'), /no spaces or wildcards/);
  assert.throws(() => checkInboxPrefix(''), /subject tokens/);
});

test('reply subject - a dropped call is logged with its subject, at most once a second, with the count since', () => {
  const clock = new SimulatedClock();
  const lines: string[] = [];
  const check = createReplyCheck({ logger: createJsonLogger('debug', {}, (l) => lines.push(l)), clock, ownInboxes: () => ['_INBOX.own.'] });
  assert.ok(check('molt.s.t.1.k', '_INBOX.c.1'));
  assert.ok(check('molt.s.t.1.k', undefined), 'a call without a reply subject is a tell');
  assert.not.ok(check('molt.s.t.1.k', '_INBOX.own.7'), "the node's own inbox is not a caller's");
  assert.not.ok(check('molt.s.t.1.k', '$KV.b.k'));
  assert.not.ok(check('molt.s.t.1.k', '$KV.b.k'));
  assert.is(lines.length, 1);
  const first = JSON.parse(lines[0]!) as Record<string, unknown>;
  assert.equal([first.level, first.reply, first.expected, first.dropped], ['warn', '_INBOX.own.7', '_INBOX.>', 1]);
  clock.advance(1000);
  assert.not.ok(check('molt.s.t.1.k', '$JS.API.STREAM.PURGE.X'));
  assert.is(lines.length, 2);
  const second = JSON.parse(lines[1]!) as Record<string, unknown>;
  assert.equal([second.reply, second.dropped], ['$JS.API.STREAM.PURGE.X', 3]);
});

test.run();
