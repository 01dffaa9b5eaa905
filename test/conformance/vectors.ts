/**
 * Conformance vectors of the wire protocol (docs/conformance/vectors.json):
 * keys → tokens → hashes → shards, keys a client must refuse, and calls
 * (subject, headers, body) with the replies and errors a node of
 * test/fixtures/counter.ts gives them. `generate.ts` writes the file by
 * running the calls against a live node; the project's test runs the file's
 * calls against a live node with {@link runVector}, the way a client in
 * another language would.
 *
 * @module
 */
import { headers as natsHeaders, type NatsConnection } from '@nats-io/transport-node';
import { DEFAULT_SHARDS, encodeKey, fnv1a, shardOf } from '../../runtime/wire/protocol.ts';

export const VECTORS_FORMAT = 'molt.conformance/v1';

/** A key, its token, its hash and its shard for several shard counts. */
export interface KeyVector {
  key: string;
  token: string;
  fnv1a: number;
  shards: Record<string, number>;
}

/** A call as it goes on the wire. `{run}` in a header value stands for a string unique to each run. */
export interface CallRequest {
  subject: string;
  /** In order; a name may repeat. Names are sent exactly as written (case included). */
  headers: Array<[string, string]>;
  /** The body as UTF-8 text, or `bodyBase64` for bytes that are not, or `bodyRepeat`: `text` repeated `times` times. */
  body?: string;
  bodyBase64?: string;
  bodyRepeat?: { text: string; times: number };
}

/** A reply, as the vectors compare it. */
export interface CallReply {
  /** Every reply header whose name starts with `Molt-`, exactly, except `Molt-Node` (the answering node's id). */
  headers: Record<string, string>;
  /** `ok`: the reply body's `json` and, when present, its `meta`. */
  json?: unknown;
  meta?: unknown;
  /** `error`: the error's code, retryable and data (its `message` is for humans and not compared). */
  error?: { code: string; retryable?: boolean; data: Record<string, unknown> };
}

export interface CallVector {
  name: string;
  /** What it shows (a sentence). */
  about: string;
  request: CallRequest;
  expect: CallReply;
  /** Fields of `expect.error` that depend on the node's setup, not compared (e.g. `retryable` of VersionUnsupported). */
  unchecked?: string[];
}

/** The node a group of calls runs against. */
export interface VectorSetup {
  /** The service module, from the repository root. */
  module: string;
  service: string;
  /** Versions the node runs natively, by type (default: the newest of each). */
  versions?: Record<string, number>;
  shards: number;
  /** How to start such a node (it prints the NATS_URL when NATS_URL is unset). */
  command: string;
}

/** Calls that run in order against one node. */
export interface VectorGroup {
  name: string;
  about: string;
  setup: VectorSetup;
  calls: CallVector[];
}

export interface Vectors {
  format: typeof VECTORS_FORMAT;
  protocol: number;
  /** How to run and compare the calls. */
  notes: string[];
  keys: KeyVector[];
  /** Keys a client must refuse with InvalidKey before sending anything. */
  invalidKeys: Array<{ key: string; why: string }>;
  groups: VectorGroup[];
}

/** Shard counts every key vector gives shards for. */
export const SHARD_COUNTS = [1, 7, 16, 64, 1000];

/** The keys of the key vectors: raw, encoded, at the raw limit, Unicode beyond the BMP. */
export const KEYS = [
  'alice', 'user 7', 'ä', 'A-Z_09', '=abc', 'a.b', 'a*b', 'x>', '日本語', '🦀 crab', 'tab\there', 'k'.repeat(200), 'k'.repeat(201), 'é'.repeat(256),
];

export function keyVectors(): KeyVector[] {
  return KEYS.map((key) => {
    const token = encodeKey(key);
    return { key, token, fnv1a: fnv1a(token), shards: Object.fromEntries(SHARD_COUNTS.map((n) => [String(n), shardOf(token, n)])) };
  });
}

export function invalidKeys(): Vectors['invalidKeys'] {
  return [
    { key: '', why: 'the empty key is not a key' },
    { key: '\ud800', why: 'an unpaired UTF-16 surrogate is not well-formed Unicode' },
    { key: 'é'.repeat(257), why: 'its UTF-8 is 514 bytes; the limit is 512' },
  ];
}

const SERVICE = 'counters';

function subjectOf(key: string, options: { type?: string; shard?: number; token?: string } = {}): string {
  const token = options.token ?? encodeKey(key);
  return `molt.${SERVICE}.${options.type ?? 'counter'}.${options.shard ?? shardOf(token, DEFAULT_SHARDS)}.${token}`;
}

export type Spec = Omit<CallVector, 'expect'> & { expectStatus: 'ok' | 'error'; expectCode?: string };

/** A group as declared: its calls' expected status and code, the replies still to be recorded. */
export interface GroupSpec {
  name: string;
  about: string;
  setup: VectorSetup;
  calls: Spec[];
}

const at = (version: number, message: string, correlation?: string): Array<[string, string]> => [
  ['Molt-Version', String(version)],
  ['Molt-Message', message],
  ...(correlation ? ([['Molt-Correlation', correlation]] as Array<[string, string]>) : []),
];
const v1 = (message: string, correlation?: string) => at(1, message, correlation);

/** The groups of calls; in each, the calls in the order they must be sent (they share actors: each sequence starts with a reset). */
export function groupSpecs(): GroupSpec[] {
  return [
    {
      name: 'one-version',
      about: 'a node of a service with one version: calls, header rules, idempotency keys and the errors a caller can provoke',
      setup: { module: 'test/fixtures/counter.ts', service: SERVICE, shards: DEFAULT_SHARDS, command: 'node bin/molt.js dev test/fixtures/counter.ts' },
      calls: oneVersionCalls(),
    },
    {
      name: 'versions',
      about: 'a node running counter@2 of a three-version type: callers of 1 through its past SO, of 3 through the future SO of 3, refusals (Disallowed), and a version it does not serve',
      setup: { module: 'test/fixtures/counter-chain.ts', service: SERVICE, versions: { counter: 2 }, shards: DEFAULT_SHARDS, command: 'node bin/molt.js dev test/fixtures/counter-chain.ts --version counter=2' },
      calls: versionCalls(),
    },
  ];
}

function versionCalls(): Spec[] {
  const key = 'conformance-versions';
  const subject = subjectOf(key);
  const ok = (name: string, about: string, headers: Array<[string, string]>, body = ''): Spec => ({ name, about, request: { subject, headers, body }, expectStatus: 'ok' });
  const err = (name: string, about: string, code: string, headers: Array<[string, string]>, body = '', unchecked?: string[]): Spec => ({
    name, about, request: { subject, headers, body }, expectStatus: 'error', expectCode: code, ...(unchecked ? { unchecked } : {}),
  });
  return [
    ok('native-reset', 'a v2 call on a v2 node: native', at(2, 'reset')),
    ok('native-increment', 'Molt-Node-Version is the node\'s version, Molt-Version the caller\'s', at(2, 'increment', 'n-1'), '{"json":{"by":3}}'),
    ok('past-increment', 'a v1 caller, served by the past SO of v2', at(1, 'increment', 'p-1'), '{"json":{"by":2}}'),
    ok('past-get', 'the v1 caller sees the v2 state', at(1, 'get'), '{"json":{}}'),
    err('past-disallowed', 'a v1 message the past SO refuses: data.reason says why', 'Disallowed', at(1, 'boom')),
    ok('future-add', 'a v3 caller, served by the future SO of v3 (v3 renamed increment to add)', at(3, 'add', 'f-1'), '{"json":{"amount":10}}'),
    ok('future-total', 'the v3 caller sees the same count', at(3, 'total'), '{"json":{}}'),
    err('future-disallowed', 'a v3 message the future SO refuses', 'Disallowed', at(3, 'label'), '{"json":{"text":"x"}}'),
    err('future-unknown-message', 'v3 has no increment: messages are per version', 'UnknownMessage', at(3, 'increment'), '{"json":{"by":1}}'),
    err('version-unsupported', 'version 4 is not served: data.served lists 1, 2 and 3', 'VersionUnsupported', at(4, 'get'), '', ['retryable']),
    ok('native-get', 'and natively the count is the same', at(2, 'get'), '{"json":{}}'),
  ];
}

function oneVersionCalls(): Spec[] {
  const k = (name: string) => `conformance-${name}`;
  const okCall = (name: string, about: string, key: string, headers: Array<[string, string]>, body?: string): Spec => ({
    name, about, request: { subject: subjectOf(key), headers, ...(body === undefined ? {} : { body }) }, expectStatus: 'ok',
  });
  const errCall = (name: string, about: string, code: string, request: CallRequest, unchecked?: string[]): Spec => ({
    name, about, request, expectStatus: 'error', expectCode: code, ...(unchecked ? { unchecked } : {}),
  });
  const plain = k('plain');
  const idem = k('idempotent');
  const encoded = 'conformance user ä';
  return [
    okCall('reset', 'a tell with an empty body (the payload {}): the reply is undefined, which superjson writes as null with meta', plain, v1('reset', 'c-1')),
    okCall('increment', 'an ask: the reply is the new count, headers echo the version and the correlation', plain, v1('increment', 'c-2'), '{"json":{"by":2}}'),
    okCall('increment-again', 'the same call again, without an idempotency key, runs again', plain, v1('increment'), '{"json":{"by":40}}'),
    okCall('get', 'a read with the payload {} written out', plain, v1('get'), '{"json":{}}'),
    okCall('protocol-header', 'Molt-Protocol: 1 may be sent', plain, [...v1('get'), ['Molt-Protocol', '1']], '{"json":{}}'),
    okCall('repeated-header', 'a header sent twice counts once: the first occurrence', plain, [['Molt-Version', '1'], ['Molt-Version', '7'], ['Molt-Message', 'get']], ''),
    okCall('encoded-key', 'a key that is not raw travels as = and base64url', encoded, v1('reset')),
    okCall('encoded-key-increment', 'and is served like any other', encoded, v1('increment'), '{"json":{"by":1}}'),
    okCall('idempotent-reset', 'a fresh actor for the idempotency vectors', idem, v1('reset')),
    okCall('idempotent-first', 'a call with an idempotency key runs once …', idem, [...v1('increment'), ['Molt-Idempotency-Key', 'order-{run}']], '{"json":{"by":5}}'),
    okCall('idempotent-repeat', '… and the same call with the same key gets the same reply without running again', idem, [...v1('increment'), ['Molt-Idempotency-Key', 'order-{run}']], '{"json":{"by":5}}'),
    okCall('idempotent-other-key', 'another key is another call', idem, [...v1('increment'), ['Molt-Idempotency-Key', 'order-{run}-2']], '{"json":{"by":5}}'),
    okCall('idempotent-get', 'the state changed twice, not three times', idem, v1('get'), ''),
    errCall('malformed-json', 'a body that is not JSON', 'MalformedBody', { subject: subjectOf(plain), headers: v1('get'), body: 'not json' }),
    errCall('malformed-not-utf8', 'a body that is not UTF-8', 'MalformedBody', { subject: subjectOf(plain), headers: v1('get'), bodyBase64: '/w==' }),
    errCall('malformed-no-json-field', 'a JSON body without a json field', 'MalformedBody', { subject: subjectOf(plain), headers: v1('get'), body: '{"by":2}' }),
    errCall('malformed-not-object', 'a payload that is not an object', 'MalformedBody', { subject: subjectOf(plain), headers: v1('increment'), body: '{"json":5}' }),
    errCall('unknown-type', 'a type the service does not have', 'UnknownType', { subject: subjectOf(plain, { type: 'nosuch' }), headers: v1('get'), body: '' }),
    errCall('unknown-message', 'a message the version does not have', 'UnknownMessage', { subject: subjectOf(plain), headers: v1('nosuch'), body: '' }),
    errCall('invalid-payload', 'a field of the wrong type: data.path names it', 'InvalidPayload', { subject: subjectOf(plain), headers: v1('increment'), body: '{"json":{"by":"two"}}' }),
    errCall('invalid-payload-missing', 'a missing field', 'InvalidPayload', { subject: subjectOf(plain), headers: v1('increment'), body: '{"json":{}}' }),
    errCall('invalid-payload-nan', 'NaN through superjson meta is refused', 'InvalidPayload', { subject: subjectOf(plain), headers: v1('increment'), body: '{"json":{"by":"NaN"},"meta":{"values":{"by":["number"]},"v":1}}' }),
    errCall('version-missing', 'no Molt-Version', 'InvalidVersion', { subject: subjectOf(plain), headers: [['Molt-Message', 'get']], body: '' }),
    errCall('version-leading-zero', 'Molt-Version 01', 'InvalidVersion', { subject: subjectOf(plain), headers: [['Molt-Version', '01'], ['Molt-Message', 'get']], body: '' }),
    errCall('version-fraction', 'Molt-Version 1.5', 'InvalidVersion', { subject: subjectOf(plain), headers: [['Molt-Version', '1.5'], ['Molt-Message', 'get']], body: '' }),
    errCall('version-lower-case-name', 'header names are case-sensitive: molt-version is no Molt-Version', 'InvalidVersion', { subject: subjectOf(plain), headers: [['molt-version', '1'], ['Molt-Message', 'get']], body: '' }),
    errCall('version-empty', 'an empty value is a missing header', 'InvalidVersion', { subject: subjectOf(plain), headers: [['Molt-Version', ''], ['Molt-Message', 'get']], body: '' }),
    errCall('message-missing', 'no Molt-Message', 'InvalidHeader', { subject: subjectOf(plain), headers: [['Molt-Version', '1']], body: '' }),
    errCall('message-empty', 'an empty Molt-Message', 'InvalidHeader', { subject: subjectOf(plain), headers: [['Molt-Version', '1'], ['Molt-Message', '']], body: '' }),
    errCall('wrong-shard', 'a key sent to a shard that is not its own: data.expected is the right one', 'InvalidHeader', { subject: subjectOf(plain, { shard: (shardOf(encodeKey(plain), DEFAULT_SHARDS) + 1) % DEFAULT_SHARDS }), headers: v1('get'), body: '' }),
    errCall('idempotency-key-space', 'an idempotency key with a space', 'InvalidHeader', { subject: subjectOf(plain), headers: [...v1('get'), ['Molt-Idempotency-Key', 'a b']], body: '' }),
    errCall('resend-age-malformed', 'a resend age that is not whole milliseconds', 'InvalidHeader', { subject: subjectOf(plain), headers: [...v1('get'), ['Molt-Idempotency-Key', 'resend-{run}'], ['Molt-Resend-Age', 'soon']], body: '' }),
    errCall('first-sent-malformed', 'a resend whose Molt-First-Sent is not Unix milliseconds', 'InvalidHeader', { subject: subjectOf(plain), headers: [...v1('get'), ['Molt-Idempotency-Key', 'resend-{run}'], ['Molt-Resend-Age', '20'], ['Molt-First-Sent', '2026-12-07']], body: '' }),
    errCall('token-plus', 'a token that is neither raw nor =base64url', 'InvalidKey', { subject: subjectOf('', { token: 'a+b', shard: shardOf('a+b', DEFAULT_SHARDS) }), headers: v1('get'), body: '' }),
    errCall('token-needless-encoding', 'the = form of a key that must be sent raw', 'InvalidKey', { subject: subjectOf('', { token: '=YWJj', shard: shardOf('=YWJj', DEFAULT_SHARDS) }), headers: v1('get'), body: '' }),
    errCall('token-padding', 'base64 padding', 'InvalidKey', { subject: subjectOf('', { token: '=w6Q=', shard: shardOf('=w6Q=', DEFAULT_SHARDS) }), headers: v1('get'), body: '' }),
    errCall('token-too-long', 'a raw token over 200 characters: data.token holds all of it', 'InvalidKey', { subject: subjectOf('', { token: 'k'.repeat(201), shard: shardOf('k'.repeat(201), DEFAULT_SHARDS) }), headers: v1('get'), body: '' }),
    errCall('payload-too-large', 'a body over the node\'s 256 KiB limit: data.size and data.limit', 'PayloadTooLarge', { subject: subjectOf(plain), headers: v1('get'), bodyRepeat: { text: ' ', times: 256 * 1024 + 1 } }),
    errCall('actor-failed', 'the machine throws: nothing is applied', 'ActorFailed', { subject: subjectOf(plain), headers: v1('boom'), body: '' }),
    okCall('actor-failed-unchanged', 'the count is as before the failed call', plain, v1('get'), ''),
    errCall('version-unsupported', 'a version nobody runs: data.served lists what is served', 'VersionUnsupported', { subject: subjectOf(plain), headers: [['Molt-Version', '3'], ['Molt-Message', 'get']], body: '' }, ['retryable']),
  ];
}

/** Replaces `{run}` in header values. */
function substitute(headers: Array<[string, string]>, run: string): Array<[string, string]> {
  return headers.map(([name, value]) => [name, value.replaceAll('{run}', run)]);
}

/** Sends one vector's request and returns the reply in the vectors' form. */
export async function runVector(nc: NatsConnection, request: CallRequest, run: string): Promise<CallReply> {
  const h = natsHeaders();
  for (const [name, value] of substitute(request.headers, run)) h.append(name, value);
  const body = request.bodyBase64 !== undefined
    ? new Uint8Array(Buffer.from(request.bodyBase64, 'base64'))
    : new TextEncoder().encode(request.bodyRepeat ? request.bodyRepeat.text.repeat(request.bodyRepeat.times) : (request.body ?? ''));
  const reply = await nc.request(request.subject, body, { headers: h, timeout: 10_000 });
  const headers: Record<string, string> = {};
  // Molt-Node names the answering node: it differs from node to node.
  for (const name of reply.headers?.keys() ?? []) if (name.startsWith('Molt-') && name !== 'Molt-Node') headers[name] = reply.headers!.get(name);
  const doc = JSON.parse(new TextDecoder().decode(reply.data)) as { json: any; meta?: unknown };
  if (headers['Molt-Status'] === 'error') {
    const { problem: _problem, ...data } = (doc.json.data ?? {}) as Record<string, unknown>;
    return { headers, error: { code: doc.json.code, retryable: doc.json.retryable, data } };
  }
  return { headers, json: doc.json, ...(doc.meta !== undefined ? { meta: doc.meta } : {}) };
}

/** `reply` with the vector's unchecked fields removed. */
export function comparable(reply: CallReply, unchecked: readonly string[] = []): CallReply {
  if (!reply.error || unchecked.length === 0) return reply;
  const error = { ...reply.error } as Record<string, unknown>;
  for (const field of unchecked) delete error[field];
  return { ...reply, error: error as CallReply['error'] };
}

export const NOTES: string[] = [
  'Each group names the node its calls expect (setup.command starts one and prints its NATS_URL); run each group against a node of its own.',
  'Send the calls one at a time, in order, each as a NATS request; they share actors, and each sequence starts with a reset.',
  'Replace {run} in header values with a string unique to the run (idempotency keys are remembered with the actor for 10 minutes).',
  'Compare every reply header whose name starts with Molt-, exactly, except Molt-Node (the answering node\'s id); for ok replies the body\'s json (and meta when given); for errors code, retryable and data (not message, which is for humans, nor data.problem). Fields listed in a vector\'s unchecked are not compared.',
];
