/**
 * docs/protocol.md is executable: its canonical example (the code block after
 * `<!-- example:protocol -->`) runs unchanged, as its own Node program with
 * only @nats-io/transport-node, against a real node, and must print exactly
 * the documented output; the worked FNV-1a example must equal `shardOf()`;
 * and the error-code table must list exactly the codes of runtime/errors.ts.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect } from '@nats-io/transport-node';
import { Kvm } from '@nats-io/kv';
import { createNode, ErrorCode, MoltError, silentLogger, type MoltNode } from '../../runtime/index.ts';
import { callSubject, encodeKey, fnv1a, Header, shardOf } from '../../runtime/internal.ts';
import service from '../fixtures/counter.ts';
import { startEmbeddedNats, type EmbeddedNats } from '../support/nats.ts';

const root = new URL('../..', import.meta.url).pathname;
const doc = readFileSync(join(root, 'docs/protocol.md'), 'utf8');

/** The fenced block right after `<!-- example:<name> -->`. */
function block(name: string): string {
  const m = new RegExp(`<!-- example:${name} -->\\s*\\n\`\`\`[a-z]*\\n([\\s\\S]*?)\\n\`\`\``).exec(doc);
  if (!m) throw new Error(`docs/protocol.md has no fenced block marked <!-- example:${name} -->`);
  return m[1]!;
}

/** The markdown table right after `<!-- example:<name> -->`, as rows of cells (header and rule dropped). */
function table(name: string): string[][] {
  const start = doc.indexOf(`<!-- example:${name} -->`);
  if (start < 0) throw new Error(`docs/protocol.md has no table marked <!-- example:${name} -->`);
  const lines = doc.slice(start).split('\n').slice(1);
  const rows: string[][] = [];
  for (const line of lines) {
    if (!line.startsWith('|')) break;
    rows.push(line.split('|').slice(1, -1).map((c) => c.trim().replace(/^`|`$/g, '')));
  }
  return rows.slice(2);
}

function run(file: string, env: Record<string, string>): Promise<{ stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    execFile(process.execPath, [file], { env: { ...process.env, ...env }, timeout: 20_000 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`${err.message}\nstdout:\n${stdout}\nstderr:\n${stderr}`));
      else resolve({ stdout, stderr });
    });
  });
}

const test = suite<{ nats: EmbeddedNats; node: MoltNode; dir: string }>('protocol doc');

test.before(async (ctx) => {
  ctx.nats = await startEmbeddedNats();
  ctx.node = await createNode({ service, nats: { servers: ctx.nats.url }, logger: silentLogger });
  // The example imports '@nats-io/transport-node' as any user program would: give
  // its directory the repository's node_modules, and nothing else.
  ctx.dir = mkdtempSync(join(tmpdir(), 'molt-protocol-doc-'));
  symlinkSync(join(root, 'node_modules'), join(ctx.dir, 'node_modules'), 'dir');
});

test.after(async (ctx) => {
  await ctx.node.stop();
  await ctx.nats.stop();
  rmSync(ctx.dir, { recursive: true, force: true });
});

test('canonical example - runs with the bare NATS client and prints the documented replies', async (ctx) => {
  const code = block('protocol');
  assert.match(code, /from '@nats-io\/transport-node'/);
  const imports = [...code.matchAll(/\bfrom\s+'([^']+)'|\bimport\s*\(\s*'([^']+)'/g)].map((m) => m[1] ?? m[2]);
  assert.equal(imports, ['@nats-io/transport-node'], 'the example imports nothing but @nats-io/transport-node');
  const file = join(ctx.dir, 'example.mjs');
  writeFileSync(file, code);
  const expected = block('protocol-output');
  // Twice: the documented output holds on every run, not only on a fresh actor.
  for (let i = 0; i < 2; i++) {
    const { stdout } = await run(file, { NATS_URL: ctx.nats.url });
    assert.fixture(stdout.trimEnd(), expected, `run ${i + 1}`);
  }
});

test('canonical example - leaves the documented record in KV', async (ctx) => {
  const nc = await connect({ servers: ctx.nats.url });
  try {
    const kv = await new Kvm(nc).open('molt_counters_state');
    const entry = await kv.get(`counter.${encodeKey('user 7')}`);
    assert.ok(entry && entry.operation === 'PUT', 'the actor has a record');
    assert.fixture(entry!.string(), block('kv-record'));
  } finally {
    await nc.close();
  }
});

test('worked example - the documented token, hash, shard and subject equal the runtime', () => {
  const lines = Object.fromEntries(
    block('shard')
      .split('\n')
      .map((l) => /^(\w+)\s+(.*)$/.exec(l)!)
      .map((m) => [m[1]!, m[2]!]),
  );
  const token = encodeKey(lines.key!);
  assert.is(lines.token, token);
  const [hex, decimal] = lines.fnv1a!.split(' = ');
  assert.is(fnv1a(token), Number(hex));
  assert.is(fnv1a(token), Number(decimal));
  const shard = /^(\d+) mod (\d+) = (\d+)$/.exec(lines.shard!)!;
  assert.is(Number(shard[1]), fnv1a(token));
  assert.is(shardOf(token, Number(shard[2])), Number(shard[3]));
  assert.is(lines.subject, callSubject('counters', 'counter', token, Number(shard[2])));
});

test('worked example - every step of the FNV-1a table is right', () => {
  const rows = table('fnv-steps');
  const token = encodeKey(block('shard').match(/^key\s+(.*)$/m)![1]!);
  assert.is(rows.length, Buffer.byteLength(token));
  let hash = 0x811c9dc5;
  rows.forEach(([char, byte, xored, multiplied], i) => {
    const b = token.charCodeAt(i);
    assert.is(char, token[i], `row ${i + 1} char`);
    assert.is(Number(byte), b, `row ${i + 1} byte`);
    hash = (hash ^ b) >>> 0;
    assert.is(Number(xored), hash, `row ${i + 1} xor`);
    hash = Math.imul(hash, 0x01000193) >>> 0;
    assert.is(Number(multiplied!.replace(/\s.*$/, '')), hash, `row ${i + 1} multiply`);
  });
  assert.is(hash, fnv1a(token));
});

test('worked example - the further keys to check against are right', () => {
  const found = [...doc.matchAll(/`([^`]+)` (?:is raw|is `([^`]+)`), hashes to\s+`(0x[0-9a-f]{8})`, shard (\d+)/g)];
  assert.ok(found.length >= 2, 'the doc lists further keys');
  for (const [, key, token, hex, shard] of found) {
    const t = encodeKey(key!);
    assert.is(t, token ?? key, `token of ${key}`);
    assert.is(fnv1a(t), Number(hex), `hash of ${key}`);
    assert.is(shardOf(t, 64), Number(shard), `shard of ${key}`);
  }
});

test('error codes - the table lists exactly the codes of runtime/errors.ts, with their retryable defaults', () => {
  const start = doc.indexOf('### Error codes');
  const end = doc.indexOf('\n#', start + 1);
  assert.ok(start >= 0 && end > start, 'the doc has an "Error codes" section');
  const rows = doc
    .slice(start, end)
    .split('\n')
    .filter((l) => /^\| `[A-Za-z]+` \|/.test(l))
    .map((l) => l.split('|').slice(1, -1).map((c) => c.trim()));
  const documented = rows.map((r) => r[0]!.replace(/`/g, ''));
  assert.equal([...documented].sort(), Object.values(ErrorCode).sort());
  for (const [code, retryable] of rows) {
    const name = code!.replace(/`/g, '') as ErrorCode;
    const flag = retryable!.replace(/\*/g, '');
    if (flag === 'depends') continue;
    assert.is(new MoltError(name, 'x').retryable, flag === 'yes', `${name} retryable`);
  }
});

test('headers - every header of the protocol is documented', () => {
  for (const name of Object.values(Header)) assert.ok(doc.includes(`\`${name}\``), `${name} is documented`);
});

test.run();
