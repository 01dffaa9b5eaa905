/**
 * `npm run demo`: a counter service on two node processes with a client.
 *
 * Starts an embedded nats-server (unless NATS_URL is set), two `molt node`
 * processes, and a load generator that increments counters for a few seconds
 * while counting every acknowledged call. At the end it reads every counter
 * back and compares it with the acknowledged increments: a counter lower
 * than its acknowledgements would be a lost update.
 *
 * Prints a summary and one JSON line: {"calls","ok","disallowed","failed","lostUpdates","finalVersions","durationMs"}.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createClient, isMoltError, startEmbeddedNats, type EmbeddedNats } from '../runtime/index.ts';
import { counterV1 } from './service.ts';

const root = new URL('..', import.meta.url).pathname;
const seconds = Number(process.env.DEMO_SECONDS ?? 5);
const started = Date.now();

function log(line: string): void {
  process.stdout.write(`[demo ${((Date.now() - started) / 1000).toFixed(1).padStart(5)}s] ${line}\n`);
}

function startNode(url: string, id: string): Promise<ChildProcess> {
  const child = spawn(process.execPath, [`${root}/bin/molt.js`, 'node', `${root}/demo/service.ts`, '--nats', url, '--id', id, '--lease', '2000', '--heartbeat', '400'], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, MOLT_LOG: 'warn' },
  });
  return new Promise((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (d: Buffer) => {
      out += d;
      if (/serving/.test(out)) resolve(child);
    });
    child.stderr!.on('data', (d: Buffer) => (out += d));
    child.once('exit', (code) => reject(new Error(`node ${id} exited with ${code}:\n${out}`)));
  });
}

let embedded: EmbeddedNats | undefined;
const nodes: ChildProcess[] = [];
try {
  let url = process.env.NATS_URL;
  if (!url) {
    embedded = await startEmbeddedNats();
    url = embedded.url;
    log(`embedded nats-server on ${url}`);
  }
  for (const id of ['demo-a', 'demo-b']) {
    nodes.push(await startNode(url, id));
    log(`node ${id} is serving counter@1`);
  }
  const client = await createClient({ service: 'demo', nats: { servers: url } });
  const keys = Array.from({ length: 50 }, (_, i) => `counter-${i}`);
  const acked = new Map(keys.map((k) => [k, 0]));
  const tally = { calls: 0, ok: 0, disallowed: 0, failed: 0 };
  const failures = new Map<string, number>();
  const deadline = Date.now() + seconds * 1000;
  log(`load: 32 concurrent callers of counter@1 for ${seconds}s`);
  await Promise.all(
    Array.from({ length: 32 }, async (_, worker) => {
      for (let i = worker; Date.now() < deadline; i += 32) {
        const key = keys[i % keys.length]!;
        tally.calls++;
        try {
          await client.actor(counterV1, key).increment({ by: 1 });
          acked.set(key, acked.get(key)! + 1);
          tally.ok++;
        } catch (e) {
          const code = isMoltError(e) ? e.code : 'Error';
          if (code === 'Disallowed') tally.disallowed++;
          else {
            tally.failed++;
            failures.set(code, (failures.get(code) ?? 0) + 1);
          }
        }
      }
    }),
  );
  let lostUpdates = 0;
  for (const key of keys) {
    const value = await client.actor(counterV1, key).get();
    if (value < acked.get(key)!) lostUpdates += acked.get(key)! - value;
  }
  await client.close();
  const durationMs = Date.now() - started;
  log(`${tally.calls} calls, ${tally.ok} ok, ${tally.failed} failed${failures.size ? ` (${[...failures].map(([c, n]) => `${c}: ${n}`).join(', ')})` : ''}, ${lostUpdates} lost updates`);
  log(`throughput ${(tally.ok / seconds).toFixed(0)} calls/s across 2 nodes`);
  console.log(JSON.stringify({ ...tally, lostUpdates, finalVersions: { counter: 1 }, durationMs }));
  process.exitCode = tally.failed === 0 && lostUpdates === 0 ? 0 : 1;
} finally {
  for (const n of nodes) n.kill('SIGTERM');
  await Promise.all(nodes.map((n) => new Promise((r) => (n.exitCode !== null ? r(null) : n.once('exit', r)))));
  await embedded?.stop();
}
