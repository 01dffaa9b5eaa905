/**
 * `molt node <module>`: run a node of a service on the NATS at `--nats` /
 * `NATS_URL`. `molt dev <module>`: the same, starting an embedded nats-server
 * first when no NATS_URL is set. The node itself starts in ../run-node.ts.
 *
 * @module
 */
import type { Command } from 'commander';
import { ErrorCode, MoltError } from '../../errors.ts';
import { addNatsFlags } from '../flags.ts';
import type { NodeFlags } from '../run-node.ts';

function stopOnSignals(stop: () => Promise<void>): void {
  let stopping = false;
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.on(signal, () => {
      if (stopping) process.exit(1);
      stopping = true;
      void stop().then(() => process.exit(0));
    });
  }
}

function addNodeFlags(cmd: Command): Command {
  return addNatsFlags(cmd)
    .option('--id <id>', 'stable node id; reuse it across restarts to resume an interrupted upgrade')
    .option('--version <type=version...>', 'native version of a type at start (default: the newest in the module)')
    .option('--shards <n>', 'shard count of the service (every node and client must agree)', undefined)
    .option('--passivate-after <ms>', 'drop actors idle this long from memory')
    .option('--lease <ms>', 'a node silent this long is considered dead; its shards move')
    .option('--heartbeat <ms>', 'heartbeat period')
    .option('--replicas <n>', 'replicas the service\'s buckets must have; refuses to start if they differ (see molt setup)')
    .option('--caller-inbox-prefix <prefix>', 'prefix of the reply subjects this node answers (default _INBOX); calls with any other are dropped unrun')
    .option('--state-max-bytes <n>', 'size limit of the actor-state bucket when this node sets the service up (a server without credentials; elsewhere: molt setup --state-max-bytes)')
    .option('--metrics-port <port>', 'serve Prometheus metrics at http://<host>:<port>/metrics (default: not served; 0 takes a free port)')
    .option('--metrics-host <host>', 'interface the metrics listen on (default: every interface)')
    .option('--label <name=value>', 'a label of this node, e.g. --label zone=a --label group=g1 (repeat for each; schedules zones, groups and ring read them)', (v: string, prev: string[] | undefined) => [...(prev ?? []), v])
    .option('--trust <publicKeys...>', 'publisher public keys whose upgrades this node accepts (also $MOLT_TRUSTED_KEYS, comma-separated)')
    .option('--reconcile <ms>', 'how often the upgrade manager re-reads published upgrades (default 5000)')
    .option('--tick <ms>', 'clock tick of scheduling functions (default 1000)')
    .option('--max-bundle-bytes <n>', 'refuse upgrade bundles larger than this, before downloading them (default 16777216, 16 MiB)');
}

export function registerNodeCommands(program: Command): void {
  addNodeFlags(program.command('node <module>').description('run a node of the service exported by <module>')).action(async (modulePath: string, flags: NodeFlags) => {
    if (!flags.nats && !process.env.NATS_URL) throw new MoltError(ErrorCode.Environment, 'no NATS server given: pass --nats nats://host:4222 or set NATS_URL (or use `molt dev` to start an embedded one)');
    const { runNodeFromFlags } = await import('../run-node.ts');
    const { natsTargetFromFlags } = await import('../connection.ts');
    const node = await runNodeFromFlags(modulePath, flags, natsTargetFromFlags(flags, 'molt-node'));
    stopOnSignals(() => node.stop());
  });

  addNodeFlags(program.command('dev <module>').description('run a node locally; starts an embedded nats-server when NATS_URL is unset')).action(async (modulePath: string, flags: NodeFlags) => {
    const { runNodeFromFlags } = await import('../run-node.ts');
    const { natsTargetFromFlags } = await import('../connection.ts');
    const { startEmbeddedNats } = await import('../../nats/embedded.ts');
    let embedded: Awaited<ReturnType<typeof startEmbeddedNats>> | undefined;
    let url = flags.nats ?? process.env.NATS_URL;
    if (!url) {
      embedded = await startEmbeddedNats();
      url = embedded.url;
      process.stdout.write(`embedded nats-server on ${url} (JetStream in ${embedded.storeDir}); export NATS_URL=${url} to call it\n`);
    }
    const node = await runNodeFromFlags(modulePath, flags, natsTargetFromFlags(flags, 'molt-node', { defaultUrl: url }));
    stopOnSignals(async () => {
      await node.stop();
      await embedded?.stop();
    });
  });
}
