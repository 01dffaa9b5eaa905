/**
 * The durability floor: raw JetStream KV puts, with the same client library,
 * connection options and bucket settings as Molt's state bucket (history 1,
 * one replica, file storage), values the size of a persisted benchmark actor.
 *
 * @module
 */
import { Kvm, type KV } from '@nats-io/kv';
import { callers, connect, type Command } from './common.ts';

export const commands: Record<string, Command> = {
  /**
   * Registers caller `name`: worker w puts a value to key `<prefix><w>` of
   * `bucket` — `valueBytes` filler bytes, or exactly `valueBase64` (to write
   * records another system would write, e.g. persisted actors).
   */
  'kv.caller': async (args) => {
    const nc = await connect(String(args.url), 'bench kv requester');
    const kv: KV = await new Kvm(nc).create(String(args.bucket ?? 'bench_raw'), { history: 1, replicas: 1 });
    const value = typeof args.valueBase64 === 'string' ? new Uint8Array(Buffer.from(args.valueBase64, 'base64')) : new Uint8Array(Number(args.valueBytes ?? 200)).fill(120);
    const prefix = String(args.keyPrefix ?? 'k');
    callers.set(String(args.name), {
      call: (w) => kv.put(`${prefix}${w}`, value),
      callKey: (i) => kv.put(`${prefix}${i}`, value),
    });
    return {};
  },
};
