/**
 * Molt's side: a node serving the benchmark service, and typed-client callers.
 *
 * @module
 */
import { createClient, createNode, defineService, silentLogger, type ActorInterface, type ActorRef, type MoltClient, type MoltNode } from '../../runtime/index.ts';
import { registerDroppingTracer } from './tracing.ts';
import service, { cacheV1, chain, chainMem, counterV1, messages, PAYLOAD } from '../fixtures/service.ts';
import { callers, cleanups, type Command } from './common.ts';

/** Interfaces a caller may speak, by `type@version`. */
const interfaces = new Map<string, ActorInterface<string, number, typeof messages>>();
for (const v of [counterV1, cacheV1, ...chain, ...chainMem]) interfaces.set(`${v.type}@${v.version}`, v);

let node: MoltNode | undefined;
const clients = new Map<string, MoltClient>();

export const commands: Record<string, Command> = {
  /** Starts a node of the benchmark service. */
  'molt.serve': async (args) => {
    if (node) throw new Error('this agent already runs a node');
    // `tracing`: an SDK registered for the whole agent; `metrics`: served on a free port.
    if (args.tracing) await registerDroppingTracer();
    const n = await createNode({
      service: args.service ? defineService(String(args.service), service.types) : service,
      ...(args.metrics ? { metrics: { port: 0, host: '127.0.0.1' } } : {}),
      nats: { servers: String(args.url), name: 'bench molt node' },
      logger: silentLogger,
      ...(args.versions ? { versions: args.versions as Record<string, number> } : {}),
      ...(args.passivateAfterMs ? { passivateAfterMs: Number(args.passivateAfterMs) } : {}),
      ...(args.holdLimit ? { holdLimit: Number(args.holdLimit) } : {}),
      ...(args.idempotencyLimit !== undefined || args.checkpointEvery !== undefined
        ? {
            idempotency: {
              ...(args.idempotencyLimit !== undefined ? { limit: Number(args.idempotencyLimit) } : {}),
              ...(args.checkpointEvery !== undefined ? { checkpointEvery: Number(args.checkpointEvery) } : {}),
            },
          }
        : {}),
    });
    node = n;
    cleanups.push(() => n.stop());
    return { id: n.id, owned: n.ownedShards().length };
  },
  'molt.status': async () => {
    if (!node) throw new Error('no node in this agent');
    return node.status();
  },
  /** Upgrades `type` on this agent's node one step at a time up to `to`; times each step. */
  'molt.upgrade': async (args) => {
    if (!node) throw new Error('no node in this agent');
    const type = String(args.type);
    const to = Number(args.to);
    const steps: Array<{ version: number; ms: number; transformed: number; failed: number }> = [];
    for (let v = node.status().types[type]!.current + 1; v <= to; v++) {
      const t0 = performance.now();
      const r = await node.upgrade(type, v);
      steps.push({ version: v, ms: performance.now() - t0, ...r });
    }
    return { steps, ms: steps.reduce((s, x) => s + x.ms, 0) };
  },
  /**
   * Registers caller `name`: worker w asks `inc` (or `message: 'get'`, which
   * changes nothing) of actor `<prefix><w>` of `type`, speaking `version`.
   * One client (and connection) per caller; `idempotency: false` sends no idempotency keys,
 * `batching: true` sends the calls of a tick for one node together.
   */
  'molt.caller': async (args) => {
    const key = `${String(args.type)}@${Number(args.version ?? 1)}`;
    const iface = interfaces.get(key);
    if (!iface) throw new Error(`no interface ${key} in the benchmark service`);
    if (args.tracing) await registerDroppingTracer();
    // `idempotency: false`: calls without an idempotency key (the client gives every call one by default).
    const client = await createClient({
      service: args.service ? String(args.service) : service.name,
      nats: { servers: String(args.url), name: 'bench molt client' },
      timeoutMs: 30_000,
      ...(args.idempotency === false ? { idempotency: false } : {}),
      // Each benchmark says which form it measures: single calls unless it asks for `batching: true`.
      batching: args.batching === true,
    });
    clients.set(String(args.name), client);
    cleanups.push(() => client.close());
    const prefix = String(args.keyPrefix ?? 'k');
    const refs: Array<ActorRef<typeof messages>> = [];
    const ask = args.message === 'get' ? (ref: ActorRef<typeof messages>) => ref.get() : (ref: ActorRef<typeof messages>) => ref.inc(PAYLOAD);
    callers.set(String(args.name), {
      call: (w) => ask((refs[w] ??= client.actor(iface, `${prefix}${w}`))),
      callKey: (i) => ask(client.actor(iface, `${prefix}${i}`)),
    });
    return {};
  },
};
