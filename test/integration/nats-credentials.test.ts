/**
 * Logging in to a nats-server that requires credentials, in each form NATS
 * users know (issue 13 item 11, issue 14 §4): user and password or a token in
 * the URL, NATS_USER/NATS_PASSWORD, NATS_TOKEN, a `.creds` file (operator
 * mode) and an nkey seed, given as flags or in the environment — to `molt
 * setup`, `molt node` (a real process), a client, and `molt status`.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { createClient } from '../../runtime/index.ts';
import { splitServerUrls } from '../../runtime/nats/credentials.ts';
import { natsTargetFromFlags } from '../../runtime/cli/connection.ts';
import { counterV1 } from '../fixtures/counter.ts';
import { spawnScript, startEmbeddedNats, type ChildNode, type EmbeddedNats } from '../support/nats.ts';
import { nkeyAuth, operatorModeAuth, passwordAuth, tokenAuth } from '../support/nats-auth.ts';
import type { NatsConnectOptions } from '../../runtime/nats/connect.ts';

const test = suite<{ servers: EmbeddedNats[]; nodes: ChildNode[] }>('nats credentials');

test.before((ctx) => {
  ctx.servers = [];
  ctx.nodes = [];
});

test.after(async (ctx) => {
  for (const n of ctx.nodes) await n.kill('SIGKILL');
  for (const s of ctx.servers) await s.stop();
});

/** Runs a `molt` command to its end. */
function molt(args: string[], env: Record<string, string> = {}): Promise<{ code: number | null; output: string }> {
  const child = spawnScript('bin/molt.js', args, { MOLT_LOG: 'warn', ...env });
  return new Promise((resolve) => child.process.once('close', (code) => resolve({ code, output: child.output() })));
}

/** `url` with `userinfo@` inserted after the scheme. */
const withUserinfo = (url: string, userinfo: string) => url.replace('nats://', `nats://${userinfo}@`);

/**
 * On one server: `molt setup` logs in one way, `molt node` another, a client a
 * third and `molt status` a fourth; the node serves the client's call.
 */
async function roundTrip(
  ctx: { servers: EmbeddedNats[]; nodes: ChildNode[] },
  config: string,
  ways: (url: string) => { setup: [string[], Record<string, string>]; node: [string[], Record<string, string>]; client: NatsConnectOptions; status: [string[], Record<string, string>] },
): Promise<void> {
  const server = await startEmbeddedNats({ config });
  ctx.servers.push(server);
  const w = ways(server.url);

  const setup = await molt(['setup', 'test/fixtures/counter.ts', ...w.setup[0]], w.setup[1]);
  assert.is(setup.code, 0, setup.output);
  assert.match(setup.output, /created molt_counters_state \(actor state\), 1 replica\(s\)/);

  const id = `cred-${ctx.servers.length}`;
  const node = spawnScript('bin/molt.js', ['node', 'test/fixtures/counter.ts', '--id', id, ...w.node[0]], { MOLT_LOG: 'warn', ...w.node[1] });
  ctx.nodes.push(node);
  const serving = await node.waitFor(new RegExp(`molt node ${id} serving counters \\([^)]*\\) on \\S+`), 30_000);
  assert.not.match(serving, /@127\.0\.0\.1/, 'the printed URL carries no credentials');

  const client = await createClient({ service: 'counters', nats: w.client });
  try {
    assert.is(await client.actor(counterV1, 'k').increment({ by: 3 }), 3);
  } finally {
    await client.close();
  }

  const status = await molt(['status', '--json', '--service', 'counters', ...w.status[0]], w.status[1]);
  assert.is(status.code, 0, status.output);
  const view = JSON.parse(status.output) as { nodes: Array<{ id: string; live: boolean }> };
  assert.equal(view.nodes.map((n) => [n.id, n.live]), [[id, true]]);
  await node.kill('SIGKILL');
}

test('credentials - user and password: in the URL, in NATS_USER/NATS_PASSWORD, as options, as flags', async (ctx) => {
  const password = 'p@ss:w/rd';
  await roundTrip(ctx, passwordAuth('molt', password), (url) => ({
    setup: [['--nats', withUserinfo(url, `molt:${encodeURIComponent(password)}`)], {}],
    node: [[], { NATS_URL: url, NATS_USER: 'molt', NATS_PASSWORD: password }],
    client: { servers: url, user: 'molt', pass: password },
    status: [['--nats', url, '--user', 'molt', '--pass', password], {}],
  }));
  const bare = await molt(['status', '--json', '--service', 'counters', '--nats', ctx.servers[0]!.url]);
  assert.is(bare.code, 2, bare.output);
  assert.match(bare.output, /refused to log in with no credentials/);
  const wrong = await molt(['status', '--service', 'counters', '--nats', ctx.servers[0]!.url, '--user', 'molt', '--pass', 'nope']);
  assert.is(wrong.code, 2);
  assert.match(wrong.output, /^molt: Environment: NATS at nats:\/\/127\.0\.0\.1:\d+ refused to log in with user 'molt' \(Authorization Violation\)/m);
  assert.not.match(wrong.output, /nope/, 'the password is not printed');
});

test('credentials - a token: in the URL, in NATS_TOKEN, as a flag', async (ctx) => {
  await roundTrip(ctx, tokenAuth('t0ken-xyz'), (url) => ({
    setup: [['--nats', url, '--token', 't0ken-xyz'], {}],
    node: [['--nats', withUserinfo(url, 't0ken-xyz')], {}],
    client: { servers: withUserinfo(url, 't0ken-xyz') },
    status: [['--nats', url], { NATS_TOKEN: 't0ken-xyz' }],
  }));
});

test('credentials - an nkey seed file: --nkey, NATS_NKEY, the nkey option', async (ctx) => {
  const { config, seedFile } = nkeyAuth();
  await roundTrip(ctx, config, (url) => ({
    setup: [['--nats', url, '--nkey', seedFile], {}],
    node: [['--nats', url], { NATS_NKEY: seedFile }],
    client: { servers: url, nkey: seedFile },
    status: [['--nats', url, '--nkey', seedFile], {}],
  }));
});

test('credentials - a .creds file (operator mode): --creds, NATS_CREDS, the creds option', async (ctx) => {
  const { config, credsFile } = operatorModeAuth();
  await roundTrip(ctx, config, (url) => ({
    setup: [['--nats', url], { NATS_CREDS: credsFile }],
    node: [['--nats', url, '--creds', credsFile], {}],
    client: { servers: url, creds: credsFile },
    status: [['--nats', url, '--creds', credsFile], {}],
  }));
});

test('credentials - URLs, flags and the environment combine as documented', () => {
  assert.equal(splitServerUrls('nats://u:p%40ss@a:4222,nats://u:p%40ss@b:4222'), { servers: ['nats://a:4222', 'nats://b:4222'], user: 'u', pass: 'p@ss' });
  assert.equal(splitServerUrls(['tok@a:4222']), { servers: ['a:4222'], token: 'tok' });
  assert.throws(() => splitServerUrls('nats://u:p@a:4222,nats://v:q@b:4222'), /carry different credentials/);
  const env = { NATS_URL: 'nats://a:4222', NATS_USER: 'env-user', NATS_PASSWORD: 'env-pass' };
  assert.equal(natsTargetFromFlags({}, 'x', { env }), { servers: ['nats://a:4222'], name: 'x', user: 'env-user', pass: 'env-pass' });
  // A flag replaces the environment's credentials as a whole; credentials in the URL replace the environment's.
  assert.equal(natsTargetFromFlags({ token: 't' }, 'x', { env }), { servers: ['nats://a:4222'], name: 'x', token: 't' });
  assert.equal(natsTargetFromFlags({ nats: 'nats://u:p@b:4222' }, 'x', { env }), { servers: ['nats://u:p@b:4222'], name: 'x' });
});

test.run();
