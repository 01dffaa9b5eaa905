/**
 * The peer framework: Moleculer 0.15 with its NATS transporter (on the `nats`
 * 2.x client, given `noAsyncTraces: true` like every other side), default
 * broker settings otherwise (JSON serializer), run both ways it balances:
 * with its own balancer (the default: the caller picks a node and sends to
 * that node's subject) and with `disableBalancer: true` (calls go to a NATS
 * queue group and the server balances). Each way has its own namespace, so
 * the two never serve each other's calls. The service does what the raw
 * responder does: a per-key counter in a Map. The key travels in the params,
 * since Moleculer addresses services, not actors.
 *
 * @module
 */
import { ServiceBroker } from 'moleculer';
import { PAYLOAD } from '../fixtures/service.ts';
import { callers, cleanups, type Command } from './common.ts';

function broker(url: string, nodeID: string, disableBalancer: boolean): ServiceBroker {
  return new ServiceBroker({
    nodeID,
    namespace: disableBalancer ? 'bench-nats-balanced' : 'bench',
    disableBalancer,
    logger: false,
    transporter: { type: 'NATS', options: { url, noAsyncTraces: true } } as never,
  });
}

export const commands: Record<string, Command> = {
  'moleculer.serve': async (args) => {
    const b = broker(String(args.url), `responder-${process.pid}`, args.disableBalancer === true);
    const counts = new Map<string, number>();
    b.createService({
      name: 'counter',
      actions: {
        inc(ctx) {
          const params = ctx.params as { key: string; by: number };
          const count = (counts.get(params.key) ?? 0) + params.by;
          counts.set(params.key, count);
          return count;
        },
      },
    });
    await b.start();
    cleanups.push(() => b.stop());
    return {};
  },
  'moleculer.caller': async (args) => {
    const b = broker(String(args.url), `requester-${process.pid}-${String(args.name)}`, args.disableBalancer === true);
    await b.start();
    cleanups.push(() => b.stop());
    await b.waitForServices(['counter'], 10_000);
    const prefix = String(args.keyPrefix ?? 'k');
    const send = (key: string) => b.call('counter.inc', { key, ...PAYLOAD });
    callers.set(String(args.name), { call: (w) => send(`${prefix}${w}`), callKey: (i) => send(`${prefix}${i}`) });
    return {};
  },
};
