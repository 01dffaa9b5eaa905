/**
 * Tracing for the observability benchmark: an OpenTelemetry SDK registered
 * as the process's global tracer provider, every span recorded and batched
 * as in production, and an exporter that drops them — so what is measured is
 * Molt's tracing, not an exporter's network.
 *
 * @module
 */
import { trace } from '@opentelemetry/api';
import type { ReadableSpan, SpanExporter } from '@opentelemetry/sdk-trace-base';

/** Drops every span, reporting success. */
const dropping: SpanExporter = {
  export(_spans: ReadableSpan[], done) {
    done({ code: 0 });
  },
  shutdown: () => Promise.resolve(),
};

let registered = false;

/** Registers the SDK globally (once per process). Loaded only here: agents that do not trace never load it. */
export async function registerDroppingTracer(): Promise<void> {
  if (registered) return;
  registered = true;
  const { BasicTracerProvider, BatchSpanProcessor } = await import('@opentelemetry/sdk-trace-base');
  trace.setGlobalTracerProvider(new BasicTracerProvider({ spanProcessors: [new BatchSpanProcessor(dropping)] }));
}
