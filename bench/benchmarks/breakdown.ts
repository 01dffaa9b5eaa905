/**
 * Where a call's CPU goes: the per-call work of a volatile Molt ask, step by
 * step, next to the per-call work of the raw NATS responder and requester —
 * measured in this process, each step alone in a tight loop, so the figures
 * are CPU time without the network and without the other processes.
 *
 * This is the profile behind the messaging and peer targets: the raw
 * responder's whole per-call work (parse a JSON body, update a Map, stringify
 * the count) is about as much CPU as Molt's actor step alone — an xstate
 * transition — so Molt's per-call total cannot come within 0.8× of raw on
 * this design. The NATS client library's own work (parsing frames, writing
 * sockets) and nats-server's are the same for both and are not in these rows;
 * Molt's header blocks make its frames ~150 bytes longer.
 *
 * Also the durable write path alone: a record made, encoded and committed with
 * one keyed call among 64 remembered, beside the record without calls.
 *
 * No target: an explanation, recomputed on every run.
 *
 * @module
 */
import { MsgHdrsImpl } from '@nats-io/nats-core/internal';
import { admit, createSuperjsonCodec, decodeKey, encodeKey, Header, initialActorState, nativeRoute, persist, runTurn, shardOf, type TypeVersions } from '../../runtime/internal.ts';
import { RememberedCalls } from '../../runtime/host/remembered.ts';
import { fixedHeaders } from '../../runtime/wire/codec.ts';
import { HeaderBlock } from '../../runtime/wire/header-block.ts';
import { stat, type Benchmark } from '../harness.ts';
import { cacheV1, PAYLOAD } from '../fixtures/service.ts';

/** CPU µs per run of `step`, over a loop of at least `ms` of CPU. */
export function cpuPerOp(step: () => void, ms: number): number {
  for (let i = 0; i < 2000; i++) step(); // warm up the JIT
  let n = 0;
  const start = process.cpuUsage();
  let used = 0;
  while (used < ms * 1000) {
    for (let i = 0; i < 1000; i++) step();
    n += 1000;
    const d = process.cpuUsage(start);
    used = d.user + d.system;
  }
  return used / n;
}

export const breakdown: Benchmark = {
  name: 'breakdown',
  title: 'per-call CPU of each step of a volatile ask vs the raw responder and requester (in-process)',
  async run(ctx) {
    const codec = createSuperjsonCodec();
    const encoder = new TextEncoder();
    const decoder = new TextDecoder();
    const types: TypeVersions = { name: 'cache', byVersion: new Map([[1, cacheV1]]), current: 1, retired: new Set() };
    let state = initialActorState(types);
    const key = 'm17';
    const encodedKey = encodeKey(key);
    const rawBody = encoder.encode(JSON.stringify(PAYLOAD));
    const moltBody = codec.encode(PAYLOAD);
    const callHeaders = (fixedHeaders([[Header.Version, '1'], [Header.Message, 'inc'], [Header.Protocol, '1']]) as unknown as { encode(): Uint8Array }).encode();
    const replyHeaders = (fixedHeaders([[Header.Status, 'ok'], [Header.Protocol, '1'], [Header.Version, '1'], [Header.NodeVersion, '1']]) as unknown as { encode(): Uint8Array }).encode();
    const rawReply = encoder.encode('42');
    const moltReply = codec.encode(42);
    const counts = new Map<string, number>();
    let sink: unknown;
    // A durable actor's record as each write makes it: with no calls remembered, and with the
    // newest 64 keyed calls (the client's default keys; every write holds all of them, no checkpoint).
    const record = persist(runTurn(types, state, nativeRoute, 1, 'inc', PAYLOAD).state);
    const remembered = new RememberedCalls({ windowMs: 600_000, limit: 64, checkpointEvery: 0 });
    let written = 0;

    const steps: Record<string, Record<string, () => void>> = {
      'Molt node': {
        read_call_headers: () => {
          const h = HeaderBlock.fromBytes(callHeaders);
          sink = [h.get(Header.Version), h.get(Header.Message), h.get(Header.Correlation)];
        },
        route_key: () => (sink = decodeKey(encodedKey) && shardOf(encodedKey, 64)),
        decode_body: () => (sink = codec.decode(moltBody)),
        validate_message: () => (sink = admit(types, 1, 'inc', PAYLOAD)),
        actor_turn_xstate: () => (state = runTurn(types, state, nativeRoute, 1, 'inc', PAYLOAD).state),
        encode_reply: () => (sink = codec.encode(42)),
      },
      'raw responder': {
        parse_body: () => (sink = JSON.parse(decoder.decode(rawBody))),
        update_map: () => counts.set(key, (counts.get(key) ?? 0) + 1),
        encode_reply: () => (sink = encoder.encode(JSON.stringify(42))),
      },
      'Molt requester': {
        encode_call: () => (sink = codec.encode(PAYLOAD)),
        read_reply_headers: () => {
          const h = HeaderBlock.fromBytes(replyHeaders);
          sink = h.code === 503 || h.get(Header.Status);
        },
        decode_reply: () => (sink = codec.decode(moltReply)),
      },
      'raw requester': {
        encode_call: () => (sink = encoder.encode(JSON.stringify(PAYLOAD))),
        decode_reply: () => (sink = JSON.parse(decoder.decode(rawReply))),
      },
      'Molt durable write': {
        record_without_calls: () => (sink = codec.encode(record)),
        record_with_keyed_call: () => {
          written++;
          remembered.stage(`AbCdEfGhIjKl${written.toString(36)}`, written, 1_800_000_000_000 + written);
          const calls = remembered.toRecord(1_800_000_000_000 + written);
          sink = remembered.encodeRecord(codec, record, calls);
          remembered.commit(calls);
        },
      },
      'for reference': {
        // What reading the call's headers through nats.js's header map costs (Molt scans the block instead).
        natsjs_header_map: () => {
          const h = MsgHdrsImpl.decode(callHeaders);
          sink = [h.get(Header.Version), h.get(Header.Message), h.get(Header.Correlation)];
        },
      },
    };

    const ms = ctx.options.quick ? 20 : 300;
    const reps = ctx.options.quick ? 1 : Math.max(3, ctx.options.reps);
    for (const [system, named] of Object.entries(steps)) {
      const metrics: Record<string, number[]> = {};
      const totals: number[] = [];
      for (let rep = 0; rep < reps; rep++) {
        let total = 0;
        for (const [name, step] of Object.entries(named)) {
          const us = cpuPerOp(step, ms);
          (metrics[`${name}_us`] ??= []).push(us);
          total += us;
        }
        totals.push(total);
      }
      ctx.row({
        system: `${system}, per call`,
        setting: system === 'for reference' ? 'not on the call path' : system === 'Molt durable write' ? 'one keyed write, 64 calls remembered' : 'volatile inc, 100 B',
        metrics: { ...Object.fromEntries(Object.entries(metrics).map(([k, v]) => [k, stat(v)])), ...(system === 'for reference' || system === 'Molt durable write' ? {} : { total_us: stat(totals) }) },
      });
    }
    if (sink === Symbol.for('never')) ctx.log('unreachable'); // keeps `sink` observable
  },
};
