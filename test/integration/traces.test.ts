/**
 * Traces across the wire (issue 16): a trace started in a client arrives at
 * the node with the same trace id, through a call of an older version served
 * by a past SO, and the node's span says how the upgrade layer served it; the
 * state write is traced under the call. Client and node have tracer providers
 * of their own, so the trace context can only have travelled in the call's
 * `traceparent` header.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { context, ROOT_CONTEXT, SpanKind, SpanStatusCode, trace, type Context, type ContextManager } from '@opentelemetry/api';
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor, type ReadableSpan } from '@opentelemetry/sdk-trace-base';
import { connect, type Msg } from '@nats-io/transport-node';
import { createClient, createNode, isMoltError, silentLogger, type MoltClient, type MoltNode } from '../../runtime/index.ts';
import counters from '../fixtures/counter-chain.ts';
import { counterV1 } from '../fixtures/counter.ts';
import { startEmbeddedNats, type EmbeddedNats } from '../support/nats.ts';

/**
 * The smallest context manager: a stack, for code run synchronously inside
 * `with` (a client reads the active context when the call is made).
 */
class StackContextManager implements ContextManager {
  private stack: Context[] = [];
  active(): Context {
    return this.stack[this.stack.length - 1] ?? ROOT_CONTEXT;
  }
  with<A extends unknown[], F extends (...args: A) => ReturnType<F>>(ctx: Context, fn: F, thisArg?: ThisParameterType<F>, ...args: A): ReturnType<F> {
    this.stack.push(ctx);
    try {
      return fn.call(thisArg, ...args);
    } finally {
      this.stack.pop();
    }
  }
  bind<T>(_ctx: Context, target: T): T {
    return target;
  }
  enable(): this {
    return this;
  }
  disable(): this {
    this.stack = [];
    return this;
  }
}

function provider(): { provider: BasicTracerProvider; spans: InMemorySpanExporter } {
  const spans = new InMemorySpanExporter();
  return { provider: new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(spans)] }), spans };
}

const test = suite<{ nats: EmbeddedNats; node: MoltNode; client: MoltClient; nodeSpans: InMemorySpanExporter; clientSpans: InMemorySpanExporter; clientProvider: BasicTracerProvider }>('traces');

test.before(async (ctx) => {
  context.setGlobalContextManager(new StackContextManager());
  ctx.nats = await startEmbeddedNats();
  const n = provider();
  const c = provider();
  ctx.nodeSpans = n.spans;
  ctx.clientSpans = c.spans;
  ctx.clientProvider = c.provider;
  // The node runs counter@2: callers of counter@1 are served by v2's past SO.
  ctx.node = await createNode({ service: counters, nats: { servers: ctx.nats.url }, versions: { counter: 2 }, tracerProvider: n.provider, logger: silentLogger });
  ctx.client = await createClient({ service: 'counters', nats: { servers: ctx.nats.url }, tracerProvider: c.provider });
});
test.after(async (ctx) => {
  await ctx.client.close();
  await ctx.node.stop();
  await ctx.nats.stop();
  context.disable();
});
test.before.each((ctx) => {
  ctx.nodeSpans.reset();
  ctx.clientSpans.reset();
});

function only(spans: ReadableSpan[], what: (s: ReadableSpan) => boolean, name: string): ReadableSpan {
  const found = spans.filter(what);
  assert.is(found.length, 1, `one ${name} span (of ${spans.map((s) => s.name).join(', ')})`);
  return found[0]!;
}

test('traces - a client trace reaches the node through a past SO, and on to the state write', async ({ client, nodeSpans, clientSpans }) => {
  const reply = await client.actor(counterV1, 'traced').increment({ by: 3 });
  assert.is(reply, 3);
  const sent = only(clientSpans.getFinishedSpans(), (s) => s.kind === SpanKind.CLIENT, 'client');
  assert.is(sent.name, 'counter.increment');
  assert.is(sent.attributes['molt.caller_version'], 1);

  const served = only(nodeSpans.getFinishedSpans(), (s) => s.kind === SpanKind.SERVER, 'server');
  assert.is(served.spanContext().traceId, sent.spanContext().traceId, 'same trace id on both sides');
  assert.is(served.parentSpanContext?.spanId, sent.spanContext().spanId, "the node's span is a child of the client's");
  assert.is(served.parentSpanContext?.isRemote, true);
  assert.equal(
    { caller: served.attributes['molt.caller_version'], node: served.attributes['molt.node_version'], route: served.attributes['molt.route'], so: served.attributes['molt.so'], disallowed: served.attributes['molt.disallowed'] },
    { caller: 1, node: 2, route: 'past', so: 'counter@2 past', disallowed: false },
  );
  assert.is(served.status.code, SpanStatusCode.UNSET);

  const write = only(nodeSpans.getFinishedSpans(), (s) => s.name === 'molt.state.write', 'state write');
  assert.is(write.spanContext().traceId, sent.spanContext().traceId);
  assert.is(write.parentSpanContext?.spanId, served.spanContext().spanId, 'the write is traced under the call');
  assert.is(write.attributes['molt.actor'], 'traced');
  assert.ok(Number(write.attributes['molt.revision']) > 0);
});

test('traces - a client call continues the active span, and a disallowed call says so', async ({ client, clientProvider, nodeSpans, clientSpans }) => {
  const parent = clientProvider.getTracer('app').startSpan('checkout');
  const error = await context.with(trace.setSpan(context.active(), parent), () => client.call('counter', 1, 'traced', 'boom', {})).catch((e: unknown) => e);
  parent.end();
  assert.ok(isMoltError(error, 'Disallowed'));
  const sent = only(clientSpans.getFinishedSpans(), (s) => s.kind === SpanKind.CLIENT, 'client');
  assert.is(sent.parentSpanContext?.spanId, parent.spanContext().spanId, 'the call is a child of the active span');
  assert.is(sent.spanContext().traceId, parent.spanContext().traceId);
  assert.is(sent.status.code, SpanStatusCode.ERROR);
  assert.is(sent.attributes['molt.error_code'], 'Disallowed');

  const served = only(nodeSpans.getFinishedSpans(), (s) => s.kind === SpanKind.SERVER, 'server');
  assert.is(served.spanContext().traceId, parent.spanContext().traceId);
  assert.is(served.attributes['molt.disallowed'], true);
  assert.is(served.attributes['molt.route'], 'past');
  assert.is(served.attributes['molt.error_code'], 'Disallowed');
  assert.is(served.status.code, SpanStatusCode.ERROR);
  assert.is(nodeSpans.getFinishedSpans().filter((s) => s.name === 'molt.state.write').length, 0, 'nothing was written');
});

test('traces - a caller without tracing sends no trace context: the node starts a trace of its own', async ({ nats, nodeSpans }) => {
  const plain = await createClient({ service: 'counters', nats: { servers: nats.url } });
  try {
    await plain.call('counter', 2, 'untraced', 'get', {});
  } finally {
    await plain.close();
  }
  const served = only(nodeSpans.getFinishedSpans(), (s) => s.kind === SpanKind.SERVER, 'server');
  assert.is(served.parentSpanContext, undefined, 'a root span');
  assert.is(served.attributes['molt.route'], 'native');
  assert.is(served.attributes['molt.so'], undefined);
});

test("traces - a call still waiting when its client closes ends its span with the client's error", async ({ nats }) => {
  const c = provider();
  // A service no node serves: the call waits (and retries) until the client closes.
  const closing = await createClient({ service: 'nobody-serves-this', nats: { servers: nats.url }, tracerProvider: c.provider });
  const call = closing.call('counter', 1, 'waiting', 'get', {}).catch((e: unknown) => e);
  await closing.close();
  assert.ok(isMoltError(await call, 'Unavailable'));
  const sent = only(c.spans.getFinishedSpans(), (s) => s.kind === SpanKind.CLIENT, 'client');
  assert.is(sent.status.code, SpanStatusCode.ERROR);
  assert.is(sent.attributes['molt.error_code'], 'Unavailable');
});

test("traces - a traced call's header block, as a plain NATS client reads it: version, message, protocol, idempotency key and traceparent", async ({ nats, client, clientSpans }) => {
  const watcher = await connect({ servers: nats.url });
  try {
    const seen = new Promise<Msg>((resolve) => watcher.subscribe('molt.counters.counter.>', { max: 1, callback: (_e, m) => resolve(m) }));
    await watcher.flush();
    await client.actor(counterV1, 'framed').increment({ by: 2 }, { idempotencyKey: 'framed-key-1' });
    const m = await seen;
    const sent = only(clientSpans.getFinishedSpans(), (s) => s.kind === SpanKind.CLIENT, 'client');
    const h = m.headers!;
    assert.equal(
      [...h.keys()].sort(),
      ['Molt-Idempotency-Key', 'Molt-Message', 'Molt-Protocol', 'Molt-Version', 'traceparent'].sort(),
      'exactly these headers, each once',
    );
    assert.is(h.get('Molt-Version'), '1');
    assert.is(h.get('Molt-Message'), 'increment');
    assert.is(h.get('Molt-Idempotency-Key'), 'framed-key-1');
    assert.is(h.get('traceparent'), `00-${sent.spanContext().traceId}-${sent.spanContext().spanId}-01`);
  } finally {
    await watcher.close();
  }
});

test.run();
