/**
 * Issue 7, part 4: hostile input on the wire. A property-based fuzzer
 * (fast-check) sends random and mutated calls at a node process for a
 * bounded time: subjects (unknown types, wrong or malformed shards, extra
 * tokens, bad key encodings, non-ASCII), headers (version and message name
 * missing, malformed, huge, non-ASCII, duplicated, wrong case; stray
 * headers), bodies (random bytes, invalid UTF-8, JSON that is not superjson,
 * superjson with wrong types, unregistered classes, prototype keys, deep
 * nesting) and sizes up to past the node's limit.
 *
 * For every call with a reply subject that NATS can route to the service:
 * a well-formed reply (`Molt-Status` ok, or error with a body
 * `{ code, message, retryable, data }` whose code is one of runtime/errors.ts's,
 * and the correlation id echoed). Each model key is called by one lane at a
 * time, so its value is known exactly: every ok reply is checked against it
 * and rejected calls must leave it unchanged. Afterwards the node still
 * serves valid calls, its counters equal the model, and its resident memory
 * after warm-up stayed within a bound.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import fc from 'fast-check';
import { connect, headers as natsHeaders, type NatsConnection } from '@nats-io/transport-node';
import { createClient, createSuperjsonCodec, ErrorCode, type MoltClient } from '../../runtime/index.ts';
import { DEFAULT_SHARDS, encodeKey, shardOf } from '../../runtime/internal.ts';
import { spawnScript, startEmbeddedNats, type ChildNode, type EmbeddedNats } from '../support/nats.ts';
import { rssMiB } from '../support/load.ts';

/** Fuzzing time (the test's own budget; override with MOLT_FUZZ_SECONDS). */
const FUZZ_MS = Number(process.env.MOLT_FUZZ_SECONDS ?? 20) * 1000;
const WARMUP_MS = Math.min(6000, FUZZ_MS / 3);
/** The node's body limit (its default). */
const LIMIT = 256 * 1024;
const LANES = 4;
/**
 * Allowed growth of the node's RSS from the end of warm-up to the end. Node
 * keeps freed memory and V8 sizes its heap by recent peaks; bodies near the
 * 256 KiB limit, decoded as strings and parsed, make peaks of a few MiB each.
 * A leak of even 1 KiB per call would add > 50 MiB over this run.
 */
const RSS_GROWTH_MIB = 40;

const codes = new Set<string>(Object.values(ErrorCode));
const codec = createSuperjsonCodec();
const enc = new TextEncoder();

const test = suite<{ nats: EmbeddedNats; node: ChildNode; nc: NatsConnection; client: MoltClient }>('fuzz');

test.before(async (ctx) => {
  ctx.nats = await startEmbeddedNats();
  ctx.node = spawnScript('bin/molt.js', ['node', 'test/fixtures/counter.ts', '--nats', ctx.nats.url, '--id', 'fuzz-node', '--passivate-after', '3000'], { MOLT_LOG: 'warn' });
  await ctx.node.waitFor(/serving counters/);
  ctx.nc = await connect({ servers: ctx.nats.url, noAsyncTraces: true });
  ctx.client = await createClient({ service: 'counters', nats: { servers: ctx.nats.url } });
});

test.after(async (ctx) => {
  await ctx.client?.close().catch(() => undefined);
  await ctx.nc?.close().catch(() => undefined);
  await ctx.node?.kill('SIGKILL');
  await ctx.nats?.stop();
});

// ---- what a fuzzed call is ------------------------------------------------

type Body =
  | { kind: 'valid'; by: number }
  | { kind: 'empty' }
  | { kind: 'bytes'; bytes: Uint8Array }
  | { kind: 'text'; text: string }
  | { kind: 'padded'; size: number };

interface Call {
  lane: number;
  /** Model key index within the lane (the subject is built from it), or a hostile subject. */
  subject: { kind: 'model'; type: 'counter' | 'cache' | string; shard: 'right' | 'wrong' | string } | { kind: 'raw'; subject: string; routable: boolean };
  version: { kind: 'valid'; value: number } | { kind: 'missing' } | { kind: 'text'; value: string };
  message: { kind: 'name'; value: string } | { kind: 'missing' };
  extraHeaders: Array<[string, string]>;
  correlation: string | undefined;
  body: Body;
}

const MESSAGES = ['increment', 'get', 'reset', 'boom'];
const SERVICE_PREFIX = 'molt.counters';

const headerName = fc.stringMatching(/^[!-9;-~]{1,20}$/);
const anyText = fc.oneof(fc.string({ maxLength: 40 }), fc.string({ unit: 'grapheme', maxLength: 20 }), fc.string({ unit: 'binary', maxLength: 20 }));
const headerValue = anyText.map((s) => s.replace(/[\r\n]/g, ' '));

const arbVersion: fc.Arbitrary<Call['version']> = fc.oneof(
  { weight: 6, arbitrary: fc.constantFrom(1, 1, 1, 2, 3, 0).map((value) => ({ kind: 'valid' as const, value })) },
  { weight: 1, arbitrary: fc.constant({ kind: 'missing' as const }) },
  {
    weight: 3,
    arbitrary: fc
      .oneof(fc.constantFrom('', '0', '01', '1.0', '-1', '+1', '1e0', ' 1', '1 x', '999999999', '9999999999999', 'NaN', '１', 'v1'), headerValue, fc.nat({ max: 200_000 }).map((n) => '1'.repeat(Math.max(1, n % 70_000))))
      .map((value) => ({ kind: 'text' as const, value })),
  },
);

const arbMessage: fc.Arbitrary<Call['message']> = fc.oneof(
  { weight: 6, arbitrary: fc.constantFrom(...MESSAGES).map((value) => ({ kind: 'name' as const, value })) },
  { weight: 1, arbitrary: fc.constant({ kind: 'missing' as const }) },
  {
    weight: 3,
    arbitrary: fc
      .oneof(fc.constantFrom('', '__proto__', 'constructor', 'toString', 'hasOwnProperty', 'valueOf', 'Increment', 'increment ', 'type', '$init', 'a.b'), headerValue, fc.nat({ max: 70_000 }).map((n) => 'x'.repeat(n + 1)))
      .map((value) => ({ kind: 'name' as const, value })),
  },
);

const arbBody: fc.Arbitrary<Body> = fc.oneof(
  { weight: 6, arbitrary: fc.integer({ min: -5, max: 5 }).map((by) => ({ kind: 'valid' as const, by })) },
  { weight: 1, arbitrary: fc.constant({ kind: 'empty' as const }) },
  { weight: 2, arbitrary: fc.uint8Array({ maxLength: 300 }).map((bytes) => ({ kind: 'bytes' as const, bytes })) },
  {
    weight: 4,
    arbitrary: fc
      .oneof(
        fc.constantFrom(
          '{"by":1}',
          '[]',
          '1',
          '"x"',
          'null',
          '{"json":null}',
          '{"json":[]}',
          '{"json":"by"}',
          '{"json":{"by":"1"}}',
          '{"json":{"by":null}}',
          '{"json":{"by":{}}}',
          '{"json":{"by":[1]}}',
          '{"json":{"by":1,"type":"reset"}}',
          '{"json":{"__proto__":{"by":7},"by":1}}',
          '{"json":{"by":1},"meta":{"values":{"by":["number"]}}}',
          '{"json":{"by":"NaN"},"meta":{"values":{"by":["number"]}}}',
          '{"json":{"by":"Infinity"},"meta":{"values":{"by":["number"]}}}',
          '{"json":{"by":"1"},"meta":{"values":{"by":["bigint"]}}}',
          '{"json":{"by":"2020-01-01T00:00:00.000Z"},"meta":{"values":{"by":["Date"]}}}',
          '{"json":{"by":{}},"meta":{"values":{"by":[["class","Evil"]]}}}',
          '{"json":{"by":1},"meta":{"values":{"__proto__":["Date"]}}}',
          '{"json":{"by":1},"meta":{"referentialEqualities":{"by":["__proto__.polluted"]}}}',
          '{"json":{"by":1},"meta":{"values":{"by.x.y":["set"]}}}',
          '{"json":{"by":1},"meta":"garbage"}',
          '{"json":{"by":1}',
          '\u0000\u0001',
        ),
        fc.json({ maxDepth: 4 }),
        fc.json({ maxDepth: 3 }).map((j) => `{"json":${j}}`),
        fc.nat({ max: 50_000 }).map((d) => '{"json":' + '['.repeat(d + 1) + ']'.repeat(d + 1) + '}'),
        anyText,
      )
      .map((text) => ({ kind: 'text' as const, text })),
  },
  {
    weight: 2,
    arbitrary: fc
      // Around the node's limit, anywhere below the server's, and past the server's 1 MiB (the client library refuses those).
      .oneof(fc.integer({ min: LIMIT - 64, max: LIMIT + 64 }), fc.integer({ min: 1000, max: 400_000 }), fc.constant(1_100_000))
      .map((size) => ({ kind: 'padded' as const, size })),
  },
);

const arbSubject: fc.Arbitrary<Call['subject']> = fc.oneof(
  {
    weight: 8,
    arbitrary: fc.record({
      kind: fc.constant('model' as const),
      type: fc.oneof({ weight: 8, arbitrary: fc.constant('counter') }, { weight: 1, arbitrary: fc.constant('cache') }, { weight: 1, arbitrary: fc.constantFrom('nosuch', 'Counter', 'counter-', 'x'.repeat(300)) }),
      shard: fc.oneof({ weight: 9, arbitrary: fc.constant('right' as const) }, { weight: 1, arbitrary: fc.constant('wrong' as const) }),
    }),
  },
  {
    weight: 2,
    arbitrary: fc.oneof(
      // Routable to the node: five tokens, a shard it subscribes to, a hostile key token.
      fc
        .tuple(fc.nat({ max: DEFAULT_SHARDS - 1 }), fc.oneof(fc.constantFrom('=', '==', '=AAAA', '=YQ', '=YWJj', '=_-_-', '=' + 'A'.repeat(800), 'a'.repeat(201), 'ä', '日本', '%00', '\u00ff'), fc.stringMatching(/^=[A-Za-z0-9_-]{0,40}$/), fc.stringMatching(/^[!-)+-\-/-=?-~]{1,30}$/)))
        .map(([shard, key]) => ({ kind: 'raw' as const, subject: `${SERVICE_PREFIX}.counter.${shard}.${key}`, routable: true })),
      // Not routable to any node: no subscription matches; NATS itself answers "no responders".
      fc.tuple(fc.constantFrom('64', '-1', '03', 'x', '999999'), fc.constantFrom('k', 'f-0')).map(([shard, key]) => ({ kind: 'raw' as const, subject: `${SERVICE_PREFIX}.counter.${shard}.${key}`, routable: false })),
      fc.constantFrom('molt.counters.counter.1.k.extra', 'molt.counters.counter', 'molt.counters', 'molt.other.counter.1.k').map((subject) => ({ kind: 'raw' as const, subject, routable: false })),
    ),
  },
);

const arbCall = (lane: number): fc.Arbitrary<Call> =>
  fc.record({
    lane: fc.constant(lane),
    subject: arbSubject,
    version: arbVersion,
    message: arbMessage,
    extraHeaders: fc.array(fc.tuple(fc.oneof(headerName, fc.constantFrom('molt-version', 'MOLT-MESSAGE', 'Molt-Version', 'Molt-Message', 'Molt-Status', 'Nats-Msg-Id')), headerValue), { maxLength: 3 }),
    correlation: fc.option(fc.stringMatching(/^[A-Za-z0-9-]{1,24}$/), { nil: undefined }),
    body: arbBody,
  });

// ---- the model: the exact value of each lane's counter ---------------------

const laneKey = (lane: number) => `fz-${lane}`;
const model = new Map<string, number>();

interface Tally {
  sent: number;
  ok: number;
  errors: Record<string, number>;
  noResponders: number;
  refusedByClient: number;
  problems: string[];
}
const tally: Tally = { sent: 0, ok: 0, errors: {}, noResponders: 0, refusedByClient: 0, problems: [] };

function bodyBytes(b: Body): Uint8Array {
  switch (b.kind) {
    case 'valid':
      return codec.encode({ by: b.by });
    case 'empty':
      return new Uint8Array(0);
    case 'bytes':
      return b.bytes;
    case 'text':
      return enc.encode(b.text);
    case 'padded':
      return enc.encode(`{"json":{"by":1,"pad":"${'p'.repeat(Math.max(0, b.size - 30))}"}}`);
    default: {
      const never: never = b;
      return never;
    }
  }
}

/** Sends one call and checks the reply; returns a problem description or undefined. */
async function send(nc: NatsConnection, c: Call): Promise<string | undefined> {
  const key = laneKey(c.lane);
  let subject: string;
  let routable: boolean;
  let modelled = false;
  if (c.subject.kind === 'model') {
    const encoded = encodeKey(key);
    const right = shardOf(encoded, DEFAULT_SHARDS);
    const shard = c.subject.shard === 'right' ? right : (right + 1) % DEFAULT_SHARDS;
    subject = `${SERVICE_PREFIX}.${c.subject.type}.${shard}.${encoded}`;
    routable = true;
    modelled = c.subject.type === 'counter' && c.subject.shard === 'right';
  } else {
    subject = c.subject.subject;
    routable = c.subject.routable;
  }
  const h = natsHeaders();
  if (c.version.kind === 'valid') h.set('Molt-Version', String(c.version.value));
  else if (c.version.kind === 'text') h.set('Molt-Version', c.version.value);
  if (c.message.kind === 'name') h.set('Molt-Message', c.message.value);
  for (const [k, v] of c.extraHeaders) h.append(k, v);
  if (c.correlation) h.set('Molt-Correlation', c.correlation);
  const data = bodyBytes(c.body);

  tally.sent++;
  let reply;
  try {
    reply = await nc.request(subject, data, { headers: h, timeout: 5000 });
  } catch (e) {
    const text = `${String(e)} ${String((e as { cause?: unknown }).cause ?? '')}`;
    if (/no responders|503/i.test(text)) {
      tally.noResponders++;
      return routable ? `no responders on routable subject ${subject.slice(0, 120)}` : undefined;
    }
    if (/MAX_PAYLOAD|max_payload|payload|invalid subject|subject|header/i.test(text) && !/timeout/i.test(text)) {
      tally.refusedByClient++; // the client library refused to send it (larger than the server allows, or not a valid subject)
      return undefined;
    }
    return `no reply (${text.slice(0, 120)}) for ${describe(c, subject, data)}`;
  }
  if (!routable) return `a reply on a subject no node subscribes to: ${subject}`;
  const status = reply.headers?.get('Molt-Status');
  if (c.correlation && reply.headers?.get('Molt-Correlation') !== c.correlation) return `correlation not echoed for ${describe(c, subject, data)}`;
  let body: unknown;
  try {
    body = reply.data.length === 0 ? undefined : codec.decode(reply.data);
  } catch (e) {
    return `undecodable reply ${new TextDecoder().decode(reply.data).slice(0, 100)} for ${describe(c, subject, data)}`;
  }
  if (status === 'error') {
    const e = body as { code?: unknown; message?: unknown; retryable?: unknown; data?: unknown };
    if (typeof e !== 'object' || e === null || typeof e.code !== 'string' || !codes.has(e.code) || typeof e.message !== 'string' || e.message.length === 0 || typeof e.retryable !== 'boolean' || typeof e.data !== 'object' || e.data === null) {
      return `malformed error reply ${JSON.stringify(body).slice(0, 200)} for ${describe(c, subject, data)}`;
    }
    tally.errors[e.code] = (tally.errors[e.code] ?? 0) + 1;
    if (e.code === 'Internal') return `Internal error ${e.message} for ${describe(c, subject, data)}`;
    return undefined; // rejected: the model is unchanged (checked by the next ok reply and at the end)
  }
  if (status !== 'ok') return `Molt-Status '${status}' for ${describe(c, subject, data)}`;
  tally.ok++;
  if (!modelled) return undefined;
  // An ok reply on a model key: it must agree with the model. (The NATS client
  // trims header values, so ' increment' arrives as 'increment'.)
  // What the node read: the first header of that exact name, which may be one
  // of the random extra headers when the call itself set none.
  const sent = (name: string, own: string | undefined) => own ?? c.extraHeaders.find(([k]) => k === name)?.[1];
  const message = (sent('Molt-Message', c.message.kind === 'name' ? c.message.value : undefined) ?? '').trim();
  const versionText = sent('Molt-Version', c.version.kind === 'valid' ? String(c.version.value) : c.version.kind === 'text' ? c.version.value : undefined);
  const version = versionText === undefined ? NaN : Number(versionText.trim());
  const before = model.get(key) ?? 0;
  if (version !== 1) return `version ${version} accepted on a node serving only counter@1: ${describe(c, subject, data)}`;
  if (message === 'get') {
    if (!Object.is(body, before)) return `get answered ${String(body)}, the model says ${before}: a rejected call changed state? ${describe(c, subject, data)}`;
  } else if (message === 'increment') {
    if (c.body.kind === 'valid' && !Object.is(body, before + c.body.by)) return `increment by ${c.body.by} answered ${String(body)}, expected ${before + c.body.by}`;
    if (c.body.kind === 'padded' && !Object.is(body, before + 1)) return `padded increment answered ${String(body)}, expected ${before + 1}`;
    model.set(key, body as number);
  } else if (message === 'reset') {
    model.set(key, 0);
  } else {
    return `ok reply to '${message}' (boom must fail, others do not exist)`;
  }
  return undefined;
}

function describe(c: Call, subject: string, data: Uint8Array): string {
  const head = new TextDecoder().decode(data.subarray(0, 80));
  return JSON.stringify({ subject: subject.slice(0, 100), version: c.version, message: c.message.kind === 'name' ? c.message.value.slice(0, 40) : '(missing)', body: `${data.length} B: ${head}` }).slice(0, 400);
}

test('fuzz - every routable call gets a well-formed reply, state changes only through ok replies, the node stays up with flat memory', async ({ nats, node, nc, client }) => {
  const pid = node.process.pid!;
  // Known starting values.
  for (let lane = 0; lane < LANES; lane++) {
    const key = laneKey(lane);
    await client.call('counter', 1, key, 'reset', {});
    model.set(key, (await client.call('counter', 1, key, 'increment', { by: 10 + lane })) as number);
  }
  const rssStart = await rssMiB(pid);
  const started = Date.now();
  let rssWarm = 0;
  const samples: string[] = [];
  const sampler = setInterval(() => {
    void rssMiB(pid).then(
      (r) => {
        samples.push(`${Math.round((Date.now() - started) / 1000)}s ${r.toFixed(0)}`);
        if (!rssWarm && Date.now() - started >= WARMUP_MS) rssWarm = r;
      },
      () => undefined,
    );
  }, 2000);

  // Each lane owns one model key and sends one call at a time, so its model is exact.
  const lanes = Array.from({ length: LANES }, (_, lane) =>
    fc.assert(
      fc.asyncProperty(arbCall(lane), async (c) => {
        const problem = await send(nc, c);
        if (problem) {
          tally.problems.push(problem);
          throw new Error(problem);
        }
      }),
      { numRuns: Number.MAX_SAFE_INTEGER, interruptAfterTimeLimit: FUZZ_MS, markInterruptAsFailure: false, endOnFailure: true, seed: Number(process.env.MOLT_FUZZ_SEED ?? Date.now() % 1_000_000) + lane },
    ),
  );
  const outcomes = await Promise.allSettled(lanes);
  clearInterval(sampler);
  const rssEnd = await rssMiB(pid);

  // Still alive and serving, and every counter equals its model.
  assert.is(node.process.exitCode, null, `the node is still running:\n${node.output().slice(-2000)}`);
  const after: Record<string, number> = {};
  for (let lane = 0; lane < LANES; lane++) {
    const key = laneKey(lane);
    after[key] = (await client.call('counter', 1, key, 'get', {})) as number;
  }
  const fresh = await client.call('counter', 1, 'fz-after', 'increment', { by: 1 });

  console.log(`fuzz: ${tally.sent} calls in ${((Date.now() - started) / 1000).toFixed(1)} s: ${tally.ok} ok, errors ${JSON.stringify(tally.errors)}, ${tally.noResponders} unroutable (no responders), ${tally.refusedByClient} refused by the client library`);
  console.log(`fuzz: node RSS ${rssStart.toFixed(0)} MiB at start, ${rssWarm.toFixed(0)} MiB after ${(WARMUP_MS / 1000).toFixed(0)} s warm-up, ${rssEnd.toFixed(0)} MiB at the end (samples: ${samples.join(', ')})`);
  console.log(`fuzz: counters ${JSON.stringify(after)} (model ${JSON.stringify(Object.fromEntries(model))}); problems ${tally.problems.length}`);
  const failed = outcomes.filter((o) => o.status === 'rejected');
  assert.equal(tally.problems.slice(0, 5), [], 'every routable call got a well-formed reply agreeing with the model');
  assert.is(failed.length, 0, failed.map((f) => String((f as PromiseRejectedResult).reason).slice(0, 1500)).join('\n'));
  assert.equal(after, Object.fromEntries(model), 'counters equal the model: rejected calls changed nothing');
  assert.is(fresh, 1, 'the node still serves valid calls');
  assert.ok(tally.sent > 1000, `enough calls were made (${tally.sent})`);
  assert.ok(rssWarm > 0 && rssEnd - rssWarm <= RSS_GROWTH_MIB, `RSS grew ${(rssEnd - rssWarm).toFixed(1)} MiB after warm-up (allowed ${RSS_GROWTH_MIB})`);
  void nats;
});

test.run();
