/**
 * The `traceparent` header Molt reads and writes itself (runtime/observe/trace.ts),
 * checked against the W3C Trace Context rules: what is a trace context, and what
 * a node must ignore rather than continue.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { isSpanContextValid, type SpanContext } from '@opentelemetry/api';
import { formatTraceparent, parseTraceparent, traceparentOf } from '../../runtime/observe/trace.ts';

const valid = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';

test('traceparent - a valid value round-trips', () => {
  const sc = parseTraceparent(valid);
  assert.equal(sc, { traceId: '4bf92f3577b34da6a3ce929d0e0e4736', spanId: '00f067aa0ba902b7', traceFlags: 1, isRemote: true });
  assert.is(formatTraceparent(sc!), valid);
  assert.is(formatTraceparent({ traceId: '4bf92f3577b34da6a3ce929d0e0e4736', spanId: '00f067aa0ba902b7', traceFlags: 0 }), valid.replace(/01$/, '00'));
});

test('traceparent - a later version may append fields; version 00 may not', () => {
  assert.is(parseTraceparent(`01${valid.slice(2)}-extra`)?.traceId, '4bf92f3577b34da6a3ce929d0e0e4736');
  assert.is(parseTraceparent(`${valid}-extra`), undefined);
});

test('traceparent - invalid values are ignored', () => {
  for (const bad of [
    '',
    'garbage',
    `ff${valid.slice(2)}`,
    valid.toUpperCase(),
    '00-00000000000000000000000000000000-00f067aa0ba902b7-01',
    '00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01',
    valid.replace(/-/g, '_'),
    `${valid.slice(0, 54)}`,
    '00-4bf92f3577b34da6a3ce929d0e0e473g-00f067aa0ba902b7-01',
  ]) {
    assert.is(parseTraceparent(bad), undefined, `refused: ${JSON.stringify(bad)}`);
  }
});

test('traceparent - every flags byte is written as two lowercase hex digits', () => {
  for (let flags = 0; flags < 256; flags++) {
    const value = formatTraceparent({ traceId: '4bf92f3577b34da6a3ce929d0e0e4736', spanId: '00f067aa0ba902b7', traceFlags: flags });
    assert.is(value.slice(53), flags.toString(16).padStart(2, '0'));
    assert.is(parseTraceparent(value)?.traceFlags, flags);
  }
});

test("traceparent - a client sends one exactly when the API calls its span's context valid", () => {
  const ids = (n: number) => ['', '0'.repeat(n), 'a'.repeat(n), 'A'.repeat(n), `${'0'.repeat(n - 1)}1`, `${'f'.repeat(n - 1)}g`, 'a'.repeat(n - 1), 'a'.repeat(n + 1), `${'9'.repeat(n - 1)}-`, `${'b'.repeat(n - 1)}F`];
  let sent = 0;
  for (const traceId of ids(32)) {
    for (const spanId of ids(16)) {
      const sc: SpanContext = { traceId, spanId, traceFlags: 1 };
      const value = traceparentOf(sc);
      assert.is(value !== undefined, isSpanContextValid(sc), JSON.stringify(sc));
      if (value !== undefined) {
        sent++;
        assert.is(value, formatTraceparent(sc));
      }
    }
  }
  assert.ok(sent > 0);
});

test.run();
