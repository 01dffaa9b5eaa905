/**
 * `molt rehearse` and its baseline, a raw KV read of the same keys, both run
 * by one agent: a process of their own, as the command is, rather than the
 * harness process, whose heap and JIT state carry every benchmark run before
 * (a rehearsal allocates per actor, so a large retained heap slows it more
 * than it slows a read).
 *
 * @module
 */
import { Kvm, type KV } from '@nats-io/kv';
import type { NatsConnection } from '@nats-io/transport-node';
import { bucketNames } from '../../runtime/wire/protocol.ts';
import { connect, type Command } from './common.ts';

let opened: { nc: NatsConnection; kv: KV; keys: readonly string[]; service: string } | undefined;

function state(): NonNullable<typeof opened> {
  if (!opened) throw new Error('verify.open first');
  return opened;
}

export const commands: Record<string, Command> = {
  /** Opens the state bucket of `service` on `url` and keeps the `keys` the raw read gets. */
  'verify.open': async (args) => {
    const nc = await connect(String(args.url), 'bench verify');
    const service = String(args.service);
    const kv = await new Kvm(nc).open(bucketNames(service).state);
    opened = { nc, kv, keys: args.keys as string[], service };
    return {};
  },
  /** Gets every key, `concurrency` gets in flight; actors per second. */
  'verify.raw': async (args) => {
    const { kv, keys } = state();
    const started = performance.now();
    let next = 0;
    await Promise.all(
      Array.from({ length: Number(args.concurrency) }, async () => {
        while (next < keys.length) await kv.get(keys[next++]!);
      }),
    );
    return (keys.length / (performance.now() - started)) * 1000;
  },
  /** `molt rehearse` of the test counter to version 2 over the bucket; actors checked per second. */
  'verify.rehearse': async () => {
    const { nc, service } = state();
    // Loaded here, not with the agent: every other agent starts without the verifier.
    const [{ rehearse }, { counter }] = await Promise.all([import('../../runtime/verify/rehearse.ts'), import('../../test/fixtures/counter-v2.ts')]);
    const report = await rehearse({ nats: nc, service, type: counter, to: 2 });
    if (report.failures.length > 0) throw new Error(`rehearse named ${report.failures.length} actors, expected none: ${report.failures[0]!.detail}`);
    return (report.checked / report.ms) * 1000;
  },
};
