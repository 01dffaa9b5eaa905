/**
 * What observability costs on the request path: volatile ask throughput with
 * a node serving Prometheus metrics, and with tracing on (an OpenTelemetry
 * SDK registered in the node's and the caller's processes, recording and
 * batching every span, exporting to nowhere), against both off — in the same
 * run, interleaved per repetition. Targets: ≥ 0.95× with metrics, ≥ 0.9× with
 * tracing, at 128 calls in flight, measured there over three times the run's
 * repetitions, each measuring every setting twice in mirrored order.
 *
 * Next to it, in this process, the CPU each observability step adds to one
 * call, each step alone in a tight loop (as `breakdown` measures the call's
 * other steps): what a throughput ratio measured on a busy machine cannot
 * show precisely.
 *
 * Each setting has a node process of its own, serving a service of its own
 * (same actor types, another name) on the same nats-server, so each node owns
 * every shard of its service and the three never share work.
 *
 * @module
 */
import { stat, type Benchmark, type BenchContext } from '../harness.ts';
import { addRows, compare, series, type LoadSystem } from '../compare.ts';
import { cpuPerOp } from './breakdown.ts';
import { CallCounts } from '../../runtime/observe/calls.ts';
import { clientTraceparent, endCallSpan, startCallSpan, startClientSpan, tracerOf } from '../../runtime/observe/trace.ts';
import { context, ROOT_CONTEXT, SpanKind, trace } from '@opentelemetry/api';
import { nativeRoute } from '../../runtime/internal.ts';
import type { MoltClient, MoltNode } from '../../runtime/index.ts';

/**
 * CPU per span of a recording span's whole life, 128 at a time as calls are:
 * started, the event loop turned (so the batch processor exports, as it
 * does under load: a span lives until its batch is exported), ended. A
 * tight synchronous loop would not do: the processor's queue fills (2048)
 * while its export waits for a microtask, and every later span is dropped
 * at once — cheap garbage instead of a span kept until its batch goes.
 */
async function cpuPerSpan(start: () => unknown, end: (span: unknown) => void, ms: number): Promise<number> {
  const inFlight: unknown[] = [];
  let n = 0;
  const began = process.cpuUsage();
  let used = 0;
  while (used < ms * 1000) {
    for (let i = 0; i < 128; i++) inFlight.push(start());
    await new Promise((resolve) => setImmediate(resolve));
    for (const span of inFlight) end(span);
    inFlight.length = 0;
    n += 128;
    const d = process.cpuUsage(began);
    used = d.user + d.system;
  }
  return used / n;
}

/**
 * CPU per call of each observability step, in this process. The recording
 * spans are measured twice: as Molt makes them (`client_span`,
 * `server_span`: names, attributes, `traceparent` written or read), and as
 * the bare SDK makes a span of the same kind and parent with nothing else
 * (`sdk_client_span`, `sdk_server_span`): the difference is Molt's part.
 */
async function perCallSteps(ctx: BenchContext): Promise<void> {
  // Loaded here, not at the top: `npm run bench` imports every benchmark, and the others need neither.
  const { BasicTracerProvider, BatchSpanProcessor, ParentBasedSampler, TraceIdRatioBasedSampler } = await import('@opentelemetry/sdk-trace-base');
  const { createNodeMetrics } = await import('../../runtime/observe/metrics.ts');
  const counts = new CallCounts();
  const { durations } = createNodeMetrics({ service: 'bench', hosts: new Map(), ownedShards: () => 0, rollouts: async () => [] });
  const off = tracerOf(undefined); // nothing registered in this process: the API's no-op
  const dropping = () => new BatchSpanProcessor({ export: (_s, done) => done({ code: 0 }), shutdown: async () => {} });
  const on = new BasicTracerProvider({ spanProcessors: [dropping()] }).getTracer('molt');
  // An SDK that samples no new trace and follows the caller's decision: what an unsampled call costs.
  const sampling = new BasicTracerProvider({ sampler: new ParentBasedSampler({ root: new TraceIdRatioBasedSampler(0) }), spanProcessors: [dropping()] }).getTracer('molt');
  const traceparent = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';
  const unsampled = traceparent.replace(/01$/, '00');
  const remote = { traceId: '4bf92f3577b34da6a3ce929d0e0e4736', spanId: '00f067aa0ba902b7', traceFlags: 1, isRemote: true };
  let sink: unknown;
  const steps: Record<string, () => void> = {
    count_outcome: () => counts.ok(1, nativeRoute),
    time_and_histogram: () => {
      const t0 = performance.now();
      durations.observe('cache', 1, nativeRoute, (performance.now() - t0) / 1000);
    },
    // Tracing off: a caller that does not trace sends no traceparent; one that does makes the node parse it.
    span_off: () => (sink = startCallSpan(off, 'bench', 'cache', 'inc', 1, undefined)),
    span_off_caller_traced: () => (sink = startCallSpan(off, 'bench', 'cache', 'inc', 1, traceparent)),
    span_unsampled: () => (sink = startCallSpan(sampling, 'bench', 'cache', 'inc', 1, unsampled)),
    // The client's steps as runtime/client.ts takes them: the span, its `traceparent`, its end.
    client_span_unsampled: () => {
      const span = startClientSpan(sampling, 'bench', 'cache', 'inc', 1, context.active());
      sink = clientTraceparent(span);
      span.end();
    },
  };
  type Span = ReturnType<typeof on.startSpan>;
  const spans: Record<string, [() => unknown, (span: unknown) => void]> = {
    client_span: [
      () => {
        const span = startClientSpan(on, 'bench', 'cache', 'inc', 1, context.active());
        sink = clientTraceparent(span);
        return span;
      },
      (span) => (span as Span).end(),
    ],
    sdk_client_span: [() => on.startSpan('cache.inc', { kind: SpanKind.CLIENT }, ROOT_CONTEXT), (span) => (span as Span).end()],
    server_span: [() => startCallSpan(on, 'bench', 'cache', 'inc', 1, traceparent), (span) => endCallSpan(span as Span, 'cache', 1, 1, nativeRoute, undefined)],
    sdk_server_span: [() => on.startSpan('cache.inc', { kind: SpanKind.SERVER }, trace.setSpanContext(ROOT_CONTEXT, remote)), (span) => (span as Span).end()],
  };
  const ms = ctx.options.quick ? 20 : 300;
  const reps = ctx.options.quick ? 1 : Math.max(3, ctx.options.reps);
  const metrics: Record<string, number[]> = {};
  for (let rep = 0; rep < reps; rep++) {
    for (const [name, step] of Object.entries(steps)) (metrics[`${name}_us`] ??= []).push(cpuPerOp(step, ms));
    for (const [name, [start, end]] of Object.entries(spans)) (metrics[`${name}_us`] ??= []).push(await cpuPerSpan(start, end, ms));
  }
  ctx.row({ system: 'observability steps, per call', setting: 'in-process CPU', metrics: Object.fromEntries(Object.entries(metrics).map(([k, v]) => [k, stat(v)])) });
  if (sink === Symbol.for('never')) ctx.log('unreachable');
}

/**
 * CPU per call of whole volatile asks in this process (client, node and their
 * NATS connections; nats-server apart), 128 in flight, with both spans, only
 * the node's, only the client's, and none: each setting a node and a client
 * of its own, tracing through an SDK given as `tracerProvider` (nothing
 * registered globally), interleaved per repetition in a rotating order. CPU
 * time, unlike throughput, hardly moves with the machine's other work; and a
 * span costs more here than alone in a loop. Beside them, tracing off with a
 * bare SDK span (no Molt code) started by the load loop over each call, open
 * until the reply or ended before the call is sent: what the SDK's span alone
 * costs among a live call's work, so that the client's span can be compared
 * with it rather than with a span in a tight loop.
 */
async function inProcessCalls(ctx: BenchContext): Promise<void> {
  const { BasicTracerProvider, BatchSpanProcessor } = await import('@opentelemetry/sdk-trace-base');
  const { createClient, createNode, defineService, silentLogger } = await import('../../runtime/index.ts');
  const { default: service, cacheV1, PAYLOAD } = await import('../fixtures/service.ts');
  const nats = await ctx.nats();
  const sdk = () => new BasicTracerProvider({ spanProcessors: [new BatchSpanProcessor({ export: (_s, done) => done({ code: 0 }), shutdown: async () => {} })] });
  // `around`: tracing off in Molt, and the load loop itself wraps each call in a bare SDK span of
  // the client's kind (no name, attribute or header work of Molt's), open for the whole call or
  // ended before it is sent: what the SDK's span alone costs among a live call's work.
  const settings = [
    { id: 'off', label: 'tracing off', node: false, client: false },
    { id: 'node', label: "the node's span only", node: true, client: false },
    { id: 'client', label: "the client's span only", node: false, client: true },
    { id: 'both', label: 'both spans', node: true, client: true },
    { id: 'bare-open', label: 'tracing off, a bare SDK span open over each call', node: false, client: false, around: 'open' },
    { id: 'bare-ended', label: 'tracing off, a bare SDK span ended before each call', node: false, client: false, around: 'ended' },
  ] as const;
  const CLIENT = { kind: SpanKind.CLIENT } as const;
  type Around = { tracer: ReturnType<ReturnType<typeof sdk>['getTracer']>; open: boolean };
  const running: Array<{ id: string; label: string; node: MoltNode; client: MoltClient; refs: Array<{ inc(request: unknown): Promise<unknown> }>; around: Around | undefined }> = [];
  try {
    for (const s of settings) {
      const name = `bench-inproc-${s.id}`;
      const node = await createNode({ service: defineService(name, service.types), nats: { servers: nats.url }, logger: silentLogger, ...(s.node ? { tracerProvider: sdk() } : {}) });
      const client = await createClient({ service: name, nats: { servers: nats.url }, timeoutMs: 30_000, ...(s.client ? { tracerProvider: sdk() } : {}) });
      const around = 'around' in s ? { tracer: sdk().getTracer('bench'), open: s.around === 'open' } : undefined;
      running.push({ id: s.id, label: s.label, node, client, refs: Array.from({ length: 128 }, (_, w) => client.actor(cacheV1, `k${w}`)), around });
    }
    const cell = async (r: (typeof running)[number], ms: number): Promise<number> => {
      let calls = 0;
      let stop = false;
      const started = process.cpuUsage();
      const timer = setTimeout(() => (stop = true), ms);
      const around = r.around;
      await Promise.all(
        r.refs.map(async (ref) => {
          while (!stop) {
            if (around === undefined) await ref.inc(PAYLOAD);
            else if (around.open) {
              const span = around.tracer.startSpan('cache.inc', CLIENT, ROOT_CONTEXT);
              await ref.inc(PAYLOAD);
              span.end();
            } else {
              around.tracer.startSpan('cache.inc', CLIENT, ROOT_CONTEXT).end();
              await ref.inc(PAYLOAD);
            }
            calls++;
          }
        }),
      );
      clearTimeout(timer);
      const used = process.cpuUsage(started);
      return (used.user + used.system) / Math.max(1, calls);
    };
    const ms = ctx.options.quick ? 100 : ctx.options.cellMs;
    for (const r of running) await cell(r, ctx.options.quick ? 50 : ctx.options.warmupMs);
    const cpu = new Map<string, number[]>(running.map((r) => [r.id, []]));
    for (let rep = 0; rep < ctx.options.reps; rep++) {
      const order = [...running.slice(rep % running.length), ...running.slice(0, rep % running.length)];
      for (const r of order) cpu.get(r.id)!.push(await cell(r, ms));
    }
    for (const r of running) ctx.row({ system: 'volatile ask in one process, 128 in flight', setting: r.label, metrics: { cpu_us_per_call: stat(cpu.get(r.id)!) } });
  } finally {
    for (const r of running) {
      await r.client.close().catch(() => undefined);
      await r.node.stop().catch(() => undefined);
    }
  }
}

export const observe: Benchmark = {
  name: 'observe',
  title: 'volatile ask with metrics on, with tracing on (SDK, dropping exporter), vs both off',
  async run(ctx) {
    await perCallSteps(ctx);
    await inProcessCalls(ctx);
    const nats = await ctx.nats();
    const [offNode, metricsNode, tracingNode, requester, tracingRequester] = await Promise.all([
      ctx.agent('molt-node-plain'),
      ctx.agent('molt-node-metrics'),
      ctx.agent('molt-node-tracing'),
      ctx.agent('molt-requester'),
      ctx.agent('molt-requester-tracing'),
    ]);
    await offNode.call('molt.serve', { url: nats.url, service: 'bench-off' });
    await metricsNode.call('molt.serve', { url: nats.url, service: 'bench-metrics', metrics: true });
    await tracingNode.call('molt.serve', { url: nats.url, service: 'bench-tracing', tracing: true });
    await requester.call('molt.caller', { url: nats.url, name: 'off', service: 'bench-off', type: 'cache', keyPrefix: 'o' });
    await requester.call('molt.caller', { url: nats.url, name: 'metrics', service: 'bench-metrics', type: 'cache', keyPrefix: 'o' });
    await tracingRequester.call('molt.caller', { url: nats.url, name: 'tracing', service: 'bench-tracing', type: 'cache', keyPrefix: 'o', tracing: true });

    const systems: LoadSystem[] = [
      { id: 'off', label: 'Molt ask, volatile, metrics and tracing off', requester, caller: 'off', servers: [offNode] },
      { id: 'metrics', label: 'Molt ask, volatile, metrics on', requester, caller: 'metrics', servers: [metricsNode] },
      { id: 'tracing', label: 'Molt ask, volatile, tracing on (SDK, dropping exporter)', requester: tracingRequester, caller: 'tracing', servers: [tracingNode] },
    ];
    // The targets are at 128 in flight: there, three times the repetitions (nine at least), each
    // mirrored (off, metrics, tracing, tracing, metrics, off, rotating). A repetition's ratio
    // moves by ±20 % with the machine's speed, and what is measured here is a cost of a few
    // percent: the median of three single-pass ratios decided nothing.
    const results = await compare(ctx, nats, systems, [16]);
    const atTarget = await compare(ctx, nats, systems, [128], { reps: ctx.options.quick ? 1 : Math.max(9, 3 * ctx.options.reps), mirrored: true });
    for (const s of systems) results.get(s.id)!.set(128, atTarget.get(s.id)!.get(128)!);
    addRows(ctx, systems, results);

    ctx.target({
      name: 'observe.metrics.throughput.c128',
      description: 'volatile ask throughput with metrics on vs off, 128 in flight',
      unit: 'calls/s',
      value: series(results, 'metrics', 128, 'throughput'),
      baseline: series(results, 'off', 128, 'throughput'),
      comparison: '>=',
      target: 0.95,
      params: { concurrency: 128 },
    });
    ctx.target({
      name: 'observe.tracing.throughput.c128',
      description: 'volatile ask throughput with tracing on (registered SDK, dropping exporter) vs off, 128 in flight',
      unit: 'calls/s',
      value: series(results, 'tracing', 128, 'throughput'),
      baseline: series(results, 'off', 128, 'throughput'),
      comparison: '>=',
      target: 0.9,
      params: { concurrency: 128 },
    });
  },
};
