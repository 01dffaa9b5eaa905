/**
 * Test support: calling actors with the bare NATS client, the way a client in
 * another language would (see docs/protocol.md), and reading actor state
 * straight from its KV bucket.
 */
import { headers as natsHeaders, type NatsConnection } from '@nats-io/transport-node';
import { Kvm } from '@nats-io/kv';
import { bucketNames, encodeKey, shardOf, stateKey, DEFAULT_SHARDS } from '../../runtime/internal.ts';

/** A reply as a foreign client sees it: status header, all headers, decoded body. */
export interface RawReply {
  status: string | undefined;
  headers: Record<string, string>;
  /** The body as raw JSON text. */
  text: string;
  /** The `json` field of the superjson body (meta ignored). */
  json: any;
}

/** What to send; anything left out is filled in correctly, `null` means "leave this header out". */
export interface RawCall {
  service?: string;
  type?: string;
  /** The encoded key token (default: `encodeKey(key)`). */
  token?: string;
  key?: string;
  /** The shard token (default: the right shard of the token). */
  shard?: string | number;
  version?: string | null;
  message?: string | null;
  correlation?: string;
  /** Raw body bytes or text (default: `{"json":{}}`). */
  body?: string | Uint8Array;
  timeoutMs?: number;
}

/** Sends one call with `nc.request` and returns the reply as it arrived. */
export async function rawCall(nc: NatsConnection, call: RawCall): Promise<RawReply> {
  const token = call.token ?? encodeKey(call.key ?? 'raw');
  const shard = call.shard ?? shardOf(token, DEFAULT_SHARDS);
  const subject = `molt.${call.service ?? 'counters'}.${call.type ?? 'counter'}.${shard}.${token}`;
  const h = natsHeaders();
  if (call.version !== null) h.set('Molt-Version', call.version ?? '1');
  if (call.message !== null) h.set('Molt-Message', call.message ?? 'get');
  if (call.correlation !== undefined) h.set('Molt-Correlation', call.correlation);
  const body = call.body ?? '{"json":{}}';
  const reply = await nc.request(subject, typeof body === 'string' ? new TextEncoder().encode(body) : body, {
    headers: h,
    timeout: call.timeoutMs ?? 5000,
  });
  const headers: Record<string, string> = {};
  for (const [k, v] of reply.headers ?? []) headers[k] = v.join(',');
  const text = new TextDecoder().decode(reply.data);
  let json: unknown;
  try {
    json = text.length === 0 ? undefined : (JSON.parse(text) as { json: unknown }).json;
  } catch {
    json = undefined;
  }
  return { status: reply.headers?.get('Molt-Status') || undefined, headers, text, json };
}

/** The KV revision of an actor's state record (0 if it has none). */
export async function stateRevision(nc: NatsConnection, service: string, type: string, key: string): Promise<number> {
  const kv = await new Kvm(nc).open(bucketNames(service).state);
  const entry = await kv.get(stateKey(type, encodeKey(key)));
  return entry && entry.operation === 'PUT' ? entry.revision : 0;
}
