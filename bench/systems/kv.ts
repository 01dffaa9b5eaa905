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
  /** Registers caller `name`: worker w puts `valueBytes` bytes to key `<prefix><w>` of `bucket`. */
  'kv.caller': async (args) => {
    const nc = await connect(String(args.url), 'bench kv requester');
    const kv: KV = await new Kvm(nc).create(String(args.bucket ?? 'bench_raw'), { history: 1, replicas: 1 });
    const value = new Uint8Array(Number(args.valueBytes ?? 200)).fill(120);
    const prefix = String(args.keyPrefix ?? 'k');
    callers.set(String(args.name), {
      call: (w) => kv.put(`${prefix}${w}`, value),
      callKey: (i) => kv.put(`${prefix}${i}`, value),
    });
    return {};
  },
};
