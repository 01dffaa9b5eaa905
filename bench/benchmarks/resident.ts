/**
 * Shared by the benchmarks that need many resident durable actors: write
 * their persisted state straight to the state bucket (raw KV puts of the
 * exact bytes a node writes, far quicker than one `inc` per actor through a
 * node), then load each into the node with a read-only `get` (one KV read
 * per actor, no write).
 *
 * @module
 */
import type { KV } from '@nats-io/kv';
import { stateKey } from '../../runtime/internal.ts';
import type { Agent } from '../harness.ts';

interface Sweep {
  ms: number;
  count: number;
  errors: number;
  firstError?: string;
  latenciesUs?: number[];
}

/** Runs a sweep and throws if any call failed. */
export async function sweep(agent: Agent, args: Record<string, unknown>): Promise<Sweep> {
  const r = await agent.call<Sweep>('sweep', args);
  if (r.errors) throw new Error(`${r.errors} of ${r.count} calls failed, first: ${r.firstError}`);
  return r;
}

/**
 * Makes actors `<prefix>0 … <prefix>n-1` of `type` resident on the node
 * `requester`'s callers reach, with state at the node's version. Registers
 * callers `<tag>-inc` and `<tag>-get` on `requester` and `<tag>-fill` on `kvClient`.
 * Returns the bytes of one persisted actor.
 */
export async function makeResident(opts: {
  url: string;
  state: KV;
  stateBucket: string;
  requester: Agent;
  kvClient: Agent;
  type: string;
  version: number;
  prefix: string;
  n: number;
  tag: string;
}): Promise<{ stateBytes: number; fillMs: number; loadMs: number }> {
  const { url, requester, kvClient, type, version, prefix, n, tag } = opts;
  await requester.call('molt.caller', { url, name: `${tag}-inc`, type, version, keyPrefix: prefix });
  await requester.call('molt.caller', { url, name: `${tag}-get`, type, version, keyPrefix: prefix, message: 'get' });
  // One actor written by the node itself gives the exact bytes to copy.
  await sweep(requester, { caller: `${tag}-inc`, from: 0, to: 1, concurrency: 1 });
  const entry = await opts.state.get(stateKey(type, `${prefix}0`));
  if (!entry) throw new Error(`no state written for ${type}/${prefix}0`);
  await kvClient.call('kv.caller', {
    url,
    name: `${tag}-fill`,
    bucket: opts.stateBucket,
    keyPrefix: `${type}.${prefix}`,
    valueBase64: Buffer.from(entry.value).toString('base64'),
  });
  const fill = await sweep(kvClient, { caller: `${tag}-fill`, from: 1, to: n, concurrency: 128 });
  const load = await sweep(requester, { caller: `${tag}-get`, from: 0, to: n, concurrency: 256 });
  return { stateBytes: entry.value.length, fillMs: fill.ms, loadMs: load.ms };
}
