/**
 * Issue 7, part 5: soak. Three node processes (test/fixtures/upgrade-steps-node.ts)
 * serve counters to callers of version 1 and version 2 for a bounded time
 * (45 s here; `MOLT_SOAK_SECONDS=600` for a longer run) while:
 *
 * - one of two nodes is killed with SIGKILL and restarted (same id) every few seconds;
 * - the nodes upgrade 1 → 2 one after another, and one is killed in the middle
 *   of its upgrade and restarted (it resumes at version 2).
 *
 * At the end it prints calls, failures by code, lost updates (must be 0) and
 * each node's resident memory over time. Node s1 is never killed, so its
 * memory covers the whole run: after the warm-up it must stay within
 * RSS_GROWTH_MIB. The actor set is fixed (300 keys), so a node's live data
 * stops growing once every actor is resident; what remains is V8 sizing its
 * heap by recent peaks (±20 MiB in the fuzz runs), well under the bound. At
 * 160 calls a second, the 30 s after warm-up catch a leak of about 10 KiB per
 * call; a longer run (`MOLT_SOAK_SECONDS`) catches proportionally smaller ones.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { connect } from '@nats-io/transport-node';
import { Kvm } from '@nats-io/kv';
import { createClient, createSuperjsonCodec } from '../../runtime/index.ts';
import { spawnScript, startEmbeddedNats, type ChildNode } from '../support/nats.ts';
import { History, rssMiB, runOpenLoad } from '../support/load.ts';

const SOAK_MS = Number(process.env.MOLT_SOAK_SECONDS ?? 45) * 1000;
const WARMUP_MS = 15_000;
const RSS_GROWTH_MIB = 50;
const KEYS = Array.from({ length: 300 }, (_, i) => `soak-${i}`);
/** Failures a caller may see while nodes die and upgrade; anything else fails the test. */
const EXPECTED = new Set(['Timeout', 'Unavailable', 'Upgrading', 'VersionUnsupported', 'OutcomeUnknown']);

const test = suite('soak');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

test('soak - mixed-version load, rolling upgrade and node kills: no lost update, flat memory', async () => {
  const nats = await startEmbeddedNats();
  const client = await createClient({ service: 'counters', nats: { servers: nats.url }, timeoutMs: 3000, retryUnavailableMs: 6000 });
  const nodes = new Map<string, ChildNode>();
  const rss = new Map<string, Array<[number, number]>>();
  const kills: string[] = [];
  const t0 = Date.now();
  const at = () => Math.round((Date.now() - t0) / 1000);
  const start = async (id: string) => {
    const child = spawnScript('test/fixtures/upgrade-steps-node.ts', [nats.url, id]);
    nodes.set(id, child);
    await child.waitFor(new RegExp(`ready ${id} at`), 30_000);
    return child;
  };
  const restart = async (id: string, why: string) => {
    await nodes.get(id)!.kill('SIGKILL');
    kills.push(`${at()}s ${id} ${why}`);
    await sleep(1000);
    await start(id);
  };
  const sampler = setInterval(() => {
    for (const [id, child] of nodes) {
      if (child.process.exitCode !== null || child.process.signalCode !== null) continue;
      void rssMiB(child.process.pid!).then(
        (r) => (rss.get(id) ?? rss.set(id, []).get(id)!).push([at(), r]),
        () => undefined,
      );
    }
  }, 5000);

  try {
    await Promise.all(['s1', 's2', 's3'].map(start));
    const history = new History();
    const v1 = runOpenLoad({ client, keys: KEYS, ratePerSec: 80, readShare: 0.2, version: 1 }, history);
    const v2 = runOpenLoad({ client, keys: KEYS, ratePerSec: 80, readShare: 0.2, version: 2 }, history);
    const victim = () => (Math.random() < 0.5 ? 's2' : 's3');

    await sleep(5000);
    await restart(victim(), 'killed');
    // Rolling upgrade, one node at a time; s2 is killed in the middle of its own.
    await sleep(2000);
    nodes.get('s1')!.process.kill('SIGUSR2');
    await nodes.get('s1')!.waitFor(/step upgraded/, 30_000);
    await sleep(2000);
    nodes.get('s2')!.process.kill('SIGUSR2');
    await nodes.get('s2')!.waitFor(/step tf-first/, 30_000);
    await restart('s2', 'killed mid-upgrade');
    await sleep(2000);
    nodes.get('s3')!.process.kill('SIGUSR2');
    await nodes.get('s3')!.waitFor(/step upgraded/, 30_000);
    // Until the end: a node dies every few seconds.
    while (Date.now() - t0 < SOAK_MS - 6000) {
      await sleep(5000 + Math.random() * 3000);
      if (Date.now() - t0 < SOAK_MS - 5000) await restart(victim(), 'killed');
    }
    await sleep(Math.max(0, SOAK_MS - (Date.now() - t0)));
    await v1.stop();
    await v2.stop();

    // Every node runs version 2 (restarted ones resumed there).
    const versionsOk = [...nodes.entries()].map(([id, n]) => [id, /ready \S+ at 2\n?[^]*$/.test(n.output()) || /step upgraded/.test(n.output())] as const);

    // Lost updates, from the KV itself.
    const nc = await connect({ servers: nats.url });
    const kv = await new Kvm(nc).open('molt_counters_state');
    const codec = createSuperjsonCodec();
    const finals = new Map<string, number>();
    for (const key of KEYS) {
      const e = await kv.get(`counter.${key}`);
      if (e && e.operation === 'PUT') finals.set(key, (codec.decode(e.value) as { context: { count: number } }).context.count);
    }
    await nc.close();
    const { lost, phantom } = history.checkFinal(finals);
    const failures = history.failuresByCode();
    const unexpected = Object.keys(failures).filter((c) => !EXPECTED.has(c));
    const totals = [...history.increments().values()].reduce((a, c) => ({ acked: a.acked + c.acked, uncertain: a.uncertain + c.uncertain }), { acked: 0, uncertain: 0 });

    console.log(`soak: ${Math.round((Date.now() - t0) / 1000)} s, ${history.calls} calls (v1 and v2 callers), ${history.okCount} ok, failures by code ${JSON.stringify(failures)}`);
    console.log(`soak: ${totals.acked} acknowledged increments, ${totals.uncertain} uncertain; lost updates ${lost.length}, phantom ${phantom.length}`);
    console.log(`soak: kills ${kills.join('; ')}`);
    for (const [id, series] of rss) console.log(`soak: RSS ${id} (MiB at s): ${series.map(([t, r]) => `${t}s ${r.toFixed(0)}`).join(', ')}`);

    const s1 = rss.get('s1') ?? [];
    const warm = s1.find(([t]) => t >= WARMUP_MS / 1000)?.[1];
    const last = s1[s1.length - 1]?.[1];
    assert.equal(lost, [], 'lost updates = 0');
    assert.equal(phantom, [], 'no increment applied that was not sent');
    assert.equal(unexpected, [], `only failures expected while nodes die and upgrade: ${JSON.stringify(failures)}`);
    assert.ok(history.okCount / history.calls > 0.8, `most calls succeed (${history.okCount}/${history.calls})`);
    assert.ok(versionsOk.every(([, ok]) => ok), `every node ends at version 2: ${JSON.stringify(versionsOk)}`);
    assert.ok(warm !== undefined && last !== undefined, 's1 memory was sampled');
    assert.ok(last! - warm! <= RSS_GROWTH_MIB, `s1 RSS grew ${(last! - warm!).toFixed(1)} MiB after warm-up (allowed ${RSS_GROWTH_MIB})`);
    assert.is(nodes.get('s1')!.process.exitCode, null, 's1 never crashed');
  } finally {
    clearInterval(sampler);
    await client.close().catch(() => undefined);
    await Promise.all([...nodes.values()].map((n) => n.kill('SIGKILL')));
    await nats.stop();
  }
});

test.run();
