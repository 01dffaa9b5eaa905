/**
 * Traces: W3C trace context in the call headers (`traceparent`, see
 * docs/protocol.md), and the spans of a call — the client's, the node's
 * through the upgrade layer, and the node's state write.
 *
 * Only `@opentelemetry/api` is used: without an SDK registered (or a
 * `tracerProvider` given), every span is a non-recording one and nothing
 * below does more than ask whether it records. Molt reads and writes the
 * `traceparent` header itself rather than through the API's propagator,
 * which is a no-op until an SDK installs one: the header is part of Molt's
 * protocol, so a node continues a caller's trace whatever the caller's setup.
 *
 * @module
 */
import {
  createContextKey,
  ROOT_CONTEXT,
  SpanKind,
  SpanStatusCode,
  trace,
  type Context,
  type Span,
  type SpanContext,
  type Tracer,
  type TracerProvider,
} from '@opentelemetry/api';
import type { Route } from '../upgrade/layer.ts';
import type { MoltError } from '../errors.ts';
import { routeLabel } from './calls.ts';

/** The instrumentation name of Molt's spans. */
export const TRACER_NAME = 'molt';

/** The tracer of `provider`, or of the globally registered provider (following a later registration). */
export function tracerOf(provider: TracerProvider | undefined): Tracer {
  return provider ? provider.getTracer(TRACER_NAME) : trace.getTracer(TRACER_NAME);
}

/** True if `value[from, to)` is lowercase hex (a loop: regular expressions cost more on every call). */
function isHex(value: string, from: number, to: number): boolean {
  for (let i = from; i < to; i++) {
    const c = value.charCodeAt(i);
    if (!((c >= 48 && c <= 57) || (c >= 97 && c <= 102))) return false;
  }
  return true;
}

/** True if `value[from, to)` is all '0'. */
function isZero(value: string, from: number, to: number): boolean {
  for (let i = from; i < to; i++) if (value.charCodeAt(i) !== 48) return false;
  return true;
}

/**
 * The span context a `traceparent` value names, or undefined if it is not
 * one (W3C Trace Context: `version-traceid-parentid-flags`, lowercase hex;
 * version `ff` and all-zero ids are invalid; a version above 00 may append
 * fields, which are ignored).
 */
export function parseTraceparent(value: string): SpanContext | undefined {
  if (value.length < 55 || value[2] !== '-' || value[35] !== '-' || value[52] !== '-') return undefined;
  if (!isHex(value, 0, 2) || (value[0] === 'f' && value[1] === 'f')) return undefined;
  const v00 = value[0] === '0' && value[1] === '0';
  if (v00 ? value.length !== 55 : value.length > 55 && value[55] !== '-') return undefined;
  if (!isHex(value, 3, 35) || !isHex(value, 36, 52) || !isHex(value, 53, 55)) return undefined;
  if (isZero(value, 3, 35) || isZero(value, 36, 52)) return undefined;
  return { traceId: value.slice(3, 35), spanId: value.slice(36, 52), traceFlags: (hexDigit(value.charCodeAt(53)) << 4) | hexDigit(value.charCodeAt(54)), isRemote: true };
}

/** The value of a lowercase hex digit's char code (checked by {@link isHex} before). */
function hexDigit(c: number): number {
  return c <= 57 ? c - 48 : c - 87;
}

/** The two hex digits of each flags byte, made once: flags are formatted on every traced call. */
const FLAGS_HEX = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, '0'));

/** The `traceparent` value of a span context (version 00). */
export function formatTraceparent(sc: SpanContext): string {
  return `00-${sc.traceId}-${sc.spanId}-${FLAGS_HEX[sc.traceFlags & 0xff]}`;
}

/** True if `value` is `length` hex digits (either case, as the API's check allows) and not all zero. */
function isIdOf(value: string, length: number): boolean {
  if (typeof value !== 'string' || value.length !== length) return false;
  let zero = true;
  for (let i = 0; i < length; i++) {
    const c = value.charCodeAt(i);
    if (!((c >= 48 && c <= 57) || (c >= 97 && c <= 102) || (c >= 65 && c <= 70))) return false;
    if (c !== 48) zero = false;
  }
  return !zero;
}

/**
 * The `traceparent` a client sends for its span: undefined if the span's
 * context is not valid (the API's `isSpanContextValid`, without its two
 * regular expressions per call).
 */
export function traceparentOf(sc: SpanContext): string | undefined {
  return isIdOf(sc.traceId, 32) && isIdOf(sc.spanId, 16) ? formatTraceparent(sc) : undefined;
}

/**
 * The names a call's spans carry, made once per (service, type, message)
 * rather than per call: a span keeps its strings until its batch is
 * exported, so shared ones also keep less alive. Bounded, since untyped
 * callers may use any message name (past the bound, names are made per call).
 */
interface CallNames {
  /** The span's name: `type.message`. */
  readonly span: string;
  /** `rpc.service`: `service.type`. */
  readonly service: string;
}
const callNames = new Map<string, Map<string, Map<string, CallNames>>>();
let callNamesCount = 0;
const CALL_NAMES_LIMIT = 1024;

/** The span names of a call of `message` to `type` in `service`. */
export function callNamesOf(service: string, type: string, message: string): CallNames {
  const names = callNames.get(service)?.get(type)?.get(message);
  if (names !== undefined) return names;
  const made = { span: `${type}.${message}`, service: `${service}.${type}` };
  if (callNamesCount < CALL_NAMES_LIMIT) {
    let types = callNames.get(service);
    if (types === undefined) callNames.set(service, (types = new Map()));
    let messages = types.get(type);
    if (messages === undefined) types.set(type, (messages = new Map()));
    messages.set(message, made);
    callNamesCount++;
  }
  return made;
}

/** The options of every client span (the SDK copies what it keeps). */
const CLIENT = { kind: SpanKind.CLIENT } as const;

/**
 * Starts a client's span of a call under `parent` (the active context), and
 * sets its attributes if it records. Without an SDK the span records nothing
 * and carries the parent's span context, if any, so a trace passes through.
 */
export function startClientSpan(tracer: Tracer, service: string, type: string, message: string, version: number, parent: Context): Span {
  const names = callNamesOf(service, type, message);
  const span = tracer.startSpan(names.span, CLIENT, parent);
  if (span.isRecording()) setNamedAttributes(span, names.service, message, version);
  return span;
}

/**
 * The `traceparent` a client sends for its span. A recording span's ids were
 * made (or checked, for a parent) by its SDK, so they are written as they
 * are; any other span is checked first ({@link traceparentOf}): without an
 * SDK it is the invalid span context, or whatever the application made active.
 */
export function clientTraceparent(span: Span): string | undefined {
  return span.isRecording() ? formatTraceparent(span.spanContext()) : traceparentOf(span.spanContext());
}

/**
 * Sets the attributes a call's span starts with, one by one (an SDK's
 * `setAttributes` walks an object made for it with `for…in`).
 */
function setNamedAttributes(span: Span, service: string, message: string, version: number): void {
  span.setAttribute('rpc.system', 'molt');
  span.setAttribute('rpc.service', service);
  span.setAttribute('rpc.method', message);
  span.setAttribute('molt.caller_version', version);
}

/**
 * The key under which the API keeps a context's span. The API makes it with
 * `Symbol.for`, so that every copy of the API shares it; checked once below.
 */
const SPAN_KEY = createContextKey('OpenTelemetry Context Key SPAN');

/**
 * The parent context of a node's span: the caller's span context, and
 * nothing else. What `trace.setSpanContext(ROOT_CONTEXT, …)` makes, without
 * the copied map and three closures the API's context allocates per call.
 */
class RemoteParentContext implements Context {
  constructor(private readonly span: Span) {}
  getValue(key: symbol): unknown {
    return key === SPAN_KEY ? this.span : undefined;
  }
  setValue(key: symbol, value: unknown): Context {
    return ROOT_CONTEXT.setValue(SPAN_KEY, this.span).setValue(key, value);
  }
  deleteValue(key: symbol): Context {
    return ROOT_CONTEXT.setValue(SPAN_KEY, this.span).deleteValue(key);
  }
}

/** True if the API finds a span in a {@link RemoteParentContext} (if its key ever changed, the API's own context is used). */
const remoteParentWorks = ((): boolean => {
  const probe = trace.wrapSpanContext({ traceId: '4bf92f3577b34da6a3ce929d0e0e4736', spanId: '00f067aa0ba902b7', traceFlags: 1, isRemote: true });
  return trace.getSpan(new RemoteParentContext(probe)) === probe;
})();

/** The context whose span is the caller's, `remote`. */
function remoteParent(remote: SpanContext): Context {
  return remoteParentWorks ? new RemoteParentContext(trace.wrapSpanContext(remote)) : trace.setSpanContext(ROOT_CONTEXT, remote);
}

/** The options of every node span (the SDK copies what it keeps). */
const SERVER = { kind: SpanKind.SERVER } as const;

/** A call's server span on a node, while the call runs (undefined when not recording). */
export type CallSpan = Span;

/**
 * Starts the node's span of a call, continuing the caller's trace if its
 * `traceparent` is valid. Returns undefined when the span does not record
 * (no SDK, or not sampled): the call then carries no span at all.
 */
export function startCallSpan(tracer: Tracer, service: string, type: string, message: string, version: number, traceparent: string | undefined): CallSpan | undefined {
  const remote = traceparent === undefined ? undefined : parseTraceparent(traceparent);
  const names = callNamesOf(service, type, message);
  const span = tracer.startSpan(names.span, SERVER, remote === undefined ? ROOT_CONTEXT : remoteParent(remote));
  if (!span.isRecording()) return undefined;
  setNamedAttributes(span, names.service, message, version);
  return span;
}

/**
 * Ends a call's span with how the upgrade layer served it: the node's
 * version, the route, the simulation object that answered (if any), whether
 * it was disallowed, and the error.
 */
export function endCallSpan(span: CallSpan, type: string, version: number, nodeVersion: number, route: Route | undefined, error: MoltError | undefined): void {
  span.setAttribute('molt.node_version', nodeVersion);
  span.setAttribute('molt.route', routeLabel(route));
  span.setAttribute('molt.disallowed', error?.code === 'Disallowed');
  if (route !== undefined && route.kind !== 'native') {
    span.setAttribute('molt.route_steps', route.steps);
    // The first SO on the way: a past SO belongs to the version above the caller's, a future SO to the caller's.
    if (route.kind === 'past') span.setAttribute('molt.so', `${type}@${route.target} past`);
    else if (route.kind === 'future') span.setAttribute('molt.so', `${type}@${version} future`);
  }
  if (error) {
    span.setAttribute('molt.error_code', error.code);
    span.setStatus({ code: SpanStatusCode.ERROR, message: error.message });
  }
  span.end();
}

/**
 * Starts the span of a state write made for a batch of calls: a child of the
 * first traced call's span, linked to the others'. Undefined when no call of
 * the batch is traced.
 */
export function startWriteSpan(tracer: Tracer, calls: ReadonlyArray<{ readonly span?: Span | undefined }>, type: string, key: string): Span | undefined {
  let first: Span | undefined;
  let links: Array<{ context: SpanContext }> | undefined;
  for (const { span: s } of calls) {
    if (s === undefined) continue;
    if (first === undefined) first = s;
    else (links ??= []).push({ context: s.spanContext() });
  }
  if (first === undefined) return undefined;
  return tracer.startSpan(
    'molt.state.write',
    { kind: SpanKind.CLIENT, ...(links ? { links } : {}), attributes: { 'molt.type': type, 'molt.actor': key, 'molt.batch': calls.length } },
    trace.setSpan(ROOT_CONTEXT, first),
  );
}

/** Ends a state write's span: the revision written, or the error. */
export function endWriteSpan(span: Span, revision: number | undefined, error: unknown): void {
  if (revision !== undefined) span.setAttribute('molt.revision', revision);
  if (error !== undefined) span.setStatus({ code: SpanStatusCode.ERROR, message: error instanceof Error ? error.message : String(error) });
  span.end();
}
