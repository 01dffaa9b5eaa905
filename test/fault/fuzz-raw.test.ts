/**
 * Issue 7, part 4 (below the client library): calls written straight onto a
 * raw TCP connection in the NATS protocol, with header blocks no well-behaved
 * client would produce — invalid UTF-8, NUL bytes, a status line in a
 * request, lines without a colon, no `NATS/1.0` prefix, no final blank line,
 * tens of KiB of header lines, and random bytes (fast-check).
 *
 * nats-server forwards most of these; the node must answer each with a
 * well-formed reply (or the server refuses the message), never crash, and
 * keep its state: a model counter is read back after every case.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { connect as tcpConnect, type Socket } from 'node:net';
import fc from 'fast-check';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { createClient, createSuperjsonCodec, ErrorCode, type MoltClient } from '../../runtime/index.ts';
import { DEFAULT_SHARDS, encodeKey, shardOf } from '../../runtime/internal.ts';
import { spawnScript, startEmbeddedNats, type ChildNode, type EmbeddedNats } from '../support/nats.ts';

const KEY = 'raw-model';
const SUBJECT = `molt.counters.counter.${shardOf(encodeKey(KEY), DEFAULT_SHARDS)}.${KEY}`;
const codes = new Set<string>(Object.values(ErrorCode));
const codec = createSuperjsonCodec();

interface Ctx {
  nats: EmbeddedNats;
  node: ChildNode;
  nc: NatsConnection;
  client: MoltClient;
}
const test = suite<Ctx>('fuzz raw');

test.before(async (ctx) => {
  ctx.nats = await startEmbeddedNats();
  ctx.node = spawnScript('bin/molt.js', ['node', 'test/fixtures/counter.ts', '--nats', ctx.nats.url, '--id', 'raw-node'], { MOLT_LOG: 'warn' });
  await ctx.node.waitFor(/serving counters/);
  ctx.nc = await connect({ servers: ctx.nats.url });
  ctx.client = await createClient({ service: 'counters', nats: { servers: ctx.nats.url } });
  await ctx.client.call('counter', 1, KEY, 'increment', { by: 7 });
});

test.after(async (ctx) => {
  await ctx.client?.close().catch(() => undefined);
  await ctx.nc?.close().catch(() => undefined);
  await ctx.node?.kill('SIGKILL');
  await ctx.nats?.stop();
});

/** A raw NATS protocol connection: CONNECT with headers on, then HPUB frames as given. */
async function rawConnection(port: number): Promise<{ socket: Socket; closed: () => boolean; send(subject: string, reply: string, header: Uint8Array, body: Uint8Array): void }> {
  const socket = tcpConnect(port, '127.0.0.1');
  let closed = false;
  socket.on('close', () => (closed = true));
  socket.on('error', () => (closed = true));
  await new Promise<void>((resolve, reject) => {
    socket.once('data', () => resolve()); // INFO
    socket.once('error', reject);
  });
  socket.on('data', (d: Buffer) => {
    if (d.toString('latin1').includes('PING')) socket.write('PONG\r\n');
  });
  socket.write('CONNECT {"verbose":false,"pedantic":false,"headers":true,"no_responders":true,"protocol":1}\r\n');
  return {
    socket,
    closed: () => closed,
    send(subject, reply, header, body) {
      socket.write(Buffer.concat([Buffer.from(`HPUB ${subject} ${reply} ${header.length} ${header.length + body.length}\r\n`, 'latin1'), Buffer.from(header), Buffer.from(body), Buffer.from('\r\n')]));
    },
  };
}

const latin1 = (s: string) => new Uint8Array(Buffer.from(s, 'latin1'));
const getBody = codec.encode({});

const CASES: Array<[string, Uint8Array]> = [
  ['invalid UTF-8 in the version', latin1('NATS/1.0\r\nMolt-Version: \xff\xfe\r\nMolt-Message: get\r\n\r\n')],
  ['invalid UTF-8 in the message name', latin1('NATS/1.0\r\nMolt-Version: 1\r\nMolt-Message: g\xe9t\xff\r\n\r\n')],
  ['a status line in a request', latin1('NATS/1.0 503\r\n\r\n')],
  ['a status line with the headers', latin1('NATS/1.0 503 No Responders\r\nMolt-Version: 1\r\nMolt-Message: increment\r\n\r\n')],
  ['a line without a colon', latin1('NATS/1.0\r\nMolt-Version 1\r\nMolt-Message: get\r\n\r\n')],
  ['an empty header name', latin1('NATS/1.0\r\n: 1\r\nMolt-Message: get\r\n\r\n')],
  ['no NATS/1.0 prefix', latin1('GARBAGE\r\nMolt-Version: 1\r\nMolt-Message: get\r\n\r\n')],
  ['no final blank line', latin1('NATS/1.0\r\nMolt-Version: 1\r\nMolt-Message: get\r\n')],
  ['NUL bytes', latin1('NATS/1.0\r\nMolt-Version: 1\x00\r\nMolt-Message: get\x00\x00\r\n\r\n')],
  ['60 KiB of header lines', latin1('NATS/1.0\r\nMolt-Version: 1\r\nMolt-Message: get\r\n' + 'X-Pad: ' + 'p'.repeat(100) + '\r\n'.repeat(1) + Array.from({ length: 550 }, (_, i) => `X-P${i}: ${'q'.repeat(100)}\r\n`).join('') + '\r\n')],
  ['an empty header block', new Uint8Array(0)],
  ['only the prefix', latin1('NATS/1.0\r\n\r\n')],
];

test('raw - malformed header blocks get well-formed replies or are refused by the server; the node survives with its state', async ({ nats, node, nc, client }) => {
  const raw = await rawConnection(nats.port);
  const outcomes: string[] = [];
  let n = 0;
  const inbox = `_INBOX.raw.${Date.now()}`;
  const replies = new Map<string, { status: string; body: unknown }>();
  const sub = nc.subscribe(`${inbox}.*`, {
    callback: (_err, msg) => {
      let body: unknown;
      try {
        body = msg.data.length ? codec.decode(msg.data) : undefined;
      } catch {
        body = '(undecodable)';
      }
      replies.set(msg.subject, { status: msg.headers?.get('Molt-Status') ?? `(none; NATS status ${msg.headers?.code ?? '-'})`, body });
    },
  });
  await nc.flush();

  const check = async (name: string, header: Uint8Array): Promise<void> => {
    let conn = raw;
    if (conn.closed()) throw new Error('raw connection closed');
    const reply = `${inbox}.${n++}`;
    conn.send(SUBJECT, reply, header, getBody);
    const deadline = Date.now() + 3000;
    while (!replies.has(reply) && Date.now() < deadline && !conn.closed()) await new Promise((r) => setTimeout(r, 10));
    const got = replies.get(reply);
    if (!got) {
      outcomes.push(`${name}: ${conn.closed() ? 'refused by the server (it closed the raw connection)' : 'no reply'}`);
      assert.ok(conn.closed(), `${name}: the server forwarded it but the node did not answer`);
      return;
    }
    if (got.status === 'error') {
      const e = got.body as { code?: string; message?: string; retryable?: unknown; data?: unknown };
      assert.ok(e && typeof e.code === 'string' && codes.has(e.code) && typeof e.message === 'string' && typeof e.retryable === 'boolean' && typeof e.data === 'object', `${name}: well-formed error: ${JSON.stringify(got.body)}`);
      outcomes.push(`${name}: ${e.code}`);
    } else {
      assert.is(got.status, 'ok', `${name}: Molt-Status`);
      outcomes.push(`${name}: ok ${JSON.stringify(got.body)}`);
    }
    // Whatever it was, the counter is unchanged (a get or a rejected call) and the node serves.
    assert.is(await client.call('counter', 1, KEY, 'get', {}), 7, `${name}: state unchanged`);
  };

  for (const [name, header] of CASES) {
    if (raw.closed()) break;
    await check(name, header);
  }
  // Random header blocks: random bytes after a valid prefix (the server needs only the length).
  let randomCases = 0;
  if (!raw.closed()) {
    await fc.assert(
      fc.asyncProperty(fc.uint8Array({ minLength: 0, maxLength: 400 }), async (bytes) => {
        if (raw.closed()) return;
        randomCases++;
        const header = new Uint8Array([...latin1('NATS/1.0\r\nMolt-Version: 1\r\n'), ...bytes.filter((b) => b !== 0x0a && b !== 0x0d), ...latin1('\r\n\r\n')]);
        await check('random bytes', header);
      }),
      { numRuns: 150, endOnFailure: true },
    ).catch((e) => {
      throw new Error(`${String(e).slice(0, 1500)}\noutcomes:\n${outcomes.slice(-5).join('\n')}\nnode:\n${node.output().slice(-2500)}`);
    });
  }
  sub.unsubscribe();
  raw.socket.destroy();

  for (const o of outcomes.slice(0, CASES.length)) console.log(`fuzz-raw: ${o}`);
  console.log(`fuzz-raw: ${randomCases} random header blocks; the node is ${node.process.exitCode === null ? 'still running' : 'DEAD'}; counter still 7`);
  assert.is(node.process.exitCode, null, `the node survived:\n${node.output().slice(-2000)}`);
  assert.is(await client.call('counter', 1, 'raw-after', 'increment', { by: 1 }), 1, 'still serving valid calls');
});

test.run();
