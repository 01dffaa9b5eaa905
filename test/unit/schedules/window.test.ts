import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { window } from '../../../actors/schedules/index.ts';
import { inWindow, minutesOfDay, parseTimeZone } from '../../../actors/schedules/window.ts';
import { Sf, input } from './support.ts';

const at = (hh: number, mm: number, day = 15) => Date.UTC(2026, 0, day, hh, mm);

test('window - waits until the window opens, then upgrades', () => {
  const sf = new Sf(window, input({ start: '14:00', end: '16:00' }, { now: at(12, 0) }));
  assert.is(sf.decision, undefined);
  assert.match(sf.note ?? '', /waiting for the window 14:00–16:00 UTC \(now 12:00 there\)/);
  sf.advanceBy(119 * 60_000, 60_000);
  assert.is(sf.decision, undefined);
  sf.advance(60_000);
  assert.equal(sf.decision, { decision: 'upgrade' });
});

test('window - inside the window at start decides at once', () => {
  const sf = new Sf(window, input({ start: '11:30', end: '12:30' }, { now: at(12, 0) }));
  assert.equal(sf.decision, { decision: 'upgrade' });
});

test('window - end is exclusive', () => {
  const sf = new Sf(window, input({ start: '10:00', end: '12:00' }, { now: at(12, 0) }));
  assert.is(sf.decision, undefined);
});

test('window - a window over midnight opens in the evening and stays open after midnight', () => {
  assert.ok(inWindow(23 * 60, 22 * 60, 2 * 60));
  assert.ok(inWindow(60, 22 * 60, 2 * 60));
  assert.not.ok(inWindow(2 * 60, 22 * 60, 2 * 60));
  assert.not.ok(inWindow(12 * 60, 22 * 60, 2 * 60));

  const evening = new Sf(window, input({ start: '22:00', end: '02:00' }, { now: at(21, 0) }));
  assert.is(evening.decision, undefined);
  evening.advanceBy(60 * 60_000, 60_000);
  assert.equal(evening.decision, { decision: 'upgrade' });

  const afterMidnight = new Sf(window, input({ start: '22:00', end: '02:00' }, { now: at(1, 30, 16) }));
  assert.equal(afterMidnight.decision, { decision: 'upgrade' });

  const morning = new Sf(window, input({ start: '22:00', end: '02:00' }, { now: at(2, 0, 16) }));
  assert.is(morning.decision, undefined);
});

test('window - a fixed offset moves the window', () => {
  // 12:00 UTC is 14:00 at +02:00 and 06:30 at -05:30.
  assert.is(minutesOfDay(at(12, 0), parseTimeZone('+02:00')!), 14 * 60);
  assert.is(minutesOfDay(at(12, 0), parseTimeZone('-05:30')!), 6 * 60 + 30);
  assert.is(minutesOfDay(at(23, 0), parseTimeZone('+02:00')!), 60);
  const sf = new Sf(window, input({ start: '14:00', end: '15:00', timeZone: '+02:00' }, { now: at(12, 0) }));
  assert.equal(sf.decision, { decision: 'upgrade' });
});

test('window - an IANA zone follows daylight saving time', () => {
  const paris = parseTimeZone('Europe/Paris')!;
  assert.is(minutesOfDay(Date.UTC(2026, 0, 15, 12, 0), paris), 13 * 60, 'winter: UTC+1');
  assert.is(minutesOfDay(Date.UTC(2026, 6, 15, 12, 0), paris), 14 * 60, 'summer: UTC+2');
});

test('window - bad times and zones abort with the reason', () => {
  const bad = new Sf(window, input({ start: '25:00', end: '02:00', timeZone: 'Mars/Olympus' }));
  const d = bad.decision;
  assert.is(d?.decision, 'abort');
  const reason = d?.decision === 'abort' ? d.reason : '';
  assert.match(reason, /"start" must be a time "HH:MM"/);
  assert.match(reason, /"timeZone" must be "UTC"/);
  const same = new Sf(window, input({ start: '02:00', end: '02:00' }));
  assert.match(same.decision?.decision === 'abort' ? same.decision.reason : '', /two different times/);
});

test.run();
