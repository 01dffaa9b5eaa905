/**
 * The spans of a call as runtime/observe/trace.ts starts them, against a
 * real SDK: the node's span continues the caller's `traceparent` (through
 * the light parent context it builds, which a sampler may extend), the
 * client's span writes its own context, and the names shared between calls.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { context, createContextKey, ROOT_CONTEXT, SpanKind, trace, type Context } from '@opentelemetry/api';
import { BasicTracerProvider, SamplingDecision, InMemorySpanExporter, SimpleSpanProcessor, type Sampler, type SamplingResult } from '@opentelemetry/sdk-trace-base';
import { callNamesOf, clientTraceparent, endCallSpan, parseTraceparent, startCallSpan, startClientSpan } from '../../runtime/observe/trace.ts';
import { nativeRoute } from '../../runtime/internal.ts';

const caller = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';

function sdk(sampler?: Sampler) {
  const spans = new InMemorySpanExporter();
  const tracer = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(spans)], ...(sampler ? { sampler } : {}) }).getTracer('molt');
  return { tracer, spans };
}

test("trace spans - the node's span is a child of the caller's traceparent, with its attributes", () => {
  const { tracer, spans } = sdk();
  const span = startCallSpan(tracer, 'shop', 'cart', 'add', 2, caller);
  assert.ok(span);
  endCallSpan(span, 'cart', 2, 3, nativeRoute, undefined);
  const [served] = spans.getFinishedSpans();
  assert.is(served?.name, 'cart.add');
  assert.is(served?.kind, SpanKind.SERVER);
  assert.is(served?.spanContext().traceId, '4bf92f3577b34da6a3ce929d0e0e4736');
  assert.equal(served?.parentSpanContext, parseTraceparent(caller));
  assert.equal(served?.attributes, {
    'rpc.system': 'molt',
    'rpc.service': 'shop.cart',
    'rpc.method': 'add',
    'molt.caller_version': 2,
    'molt.node_version': 3,
    'molt.route': 'native',
    'molt.disallowed': false,
  });
});

test("trace spans - the parent context a node builds keeps the caller's span when a sampler extends it", () => {
  const key = createContextKey('test key');
  const seen: Array<{ extended: string | undefined; removed: string | undefined; value: unknown }> = [];
  const sampler: Sampler = {
    shouldSample(parent: Context): SamplingResult {
      const extended = parent.setValue(key, 'v');
      seen.push({ extended: trace.getSpanContext(extended)?.spanId, removed: trace.getSpanContext(extended.deleteValue(key))?.spanId, value: extended.getValue(key) });
      return { decision: SamplingDecision.RECORD_AND_SAMPLED };
    },
    toString: () => 'extending',
  };
  const { tracer } = sdk(sampler);
  startCallSpan(tracer, 'shop', 'cart', 'add', 1, caller)?.end();
  assert.equal(seen, [{ extended: '00f067aa0ba902b7', removed: '00f067aa0ba902b7', value: 'v' }]);
});

test("trace spans - a client's span sends its own context; without an SDK, only a valid active one", () => {
  const { tracer, spans } = sdk();
  const span = startClientSpan(tracer, 'shop', 'cart', 'add', 1, ROOT_CONTEXT);
  const sc = span.spanContext();
  assert.is(clientTraceparent(span), `00-${sc.traceId}-${sc.spanId}-01`);
  span.end();
  assert.is(spans.getFinishedSpans()[0]?.attributes['rpc.service'], 'shop.cart');

  const off = trace.getTracer('none'); // nothing registered: the API's no-op
  assert.is(clientTraceparent(startClientSpan(off, 'shop', 'cart', 'add', 1, ROOT_CONTEXT)), undefined);
  const active = trace.setSpanContext(ROOT_CONTEXT, parseTraceparent(caller)!);
  assert.is(clientTraceparent(startClientSpan(off, 'shop', 'cart', 'add', 1, active)), caller);
  assert.is(clientTraceparent(startClientSpan(off, 'shop', 'cart', 'add', 1, trace.setSpanContext(context.active(), { traceId: 'x', spanId: 'y', traceFlags: 1 }))), undefined);
});

test('trace spans - the names of a call are made once', () => {
  const first = callNamesOf('shop', 'cart', 'remove');
  assert.equal(first, { span: 'cart.remove', service: 'shop.cart' });
  assert.is(callNamesOf('shop', 'cart', 'remove'), first);
  assert.equal(callNamesOf('other', 'cart', 'remove'), { span: 'cart.remove', service: 'other.cart' });
});

test.run();
