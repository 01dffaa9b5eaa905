/**
 * The peer framework: Moleculer 0.15 with its NATS transporter (on the `nats`
 * 2.x client, given `noAsyncTraces: true` like every other side), default
 * broker settings otherwise (JSON serializer, its built-in balancer off since
 * the NATS transporter balances). The service does what the raw responder
 * does: a per-key counter in a Map. The key travels in the params, since
 * Moleculer addresses services, not actors.
 *
 * @module
 */
import { ServiceBroker } from 'moleculer';
import { PAYLOAD } from '../fixtures/service.ts';
import { callers, cleanups, type Command } from './common.ts';

function broker(url: string, nodeID: string): ServiceBroker {
  return new ServiceBroker({
    nodeID,
    namespace: 'bench',
    logger: false,
    transporter: { type: 'NATS', options: { url, noAsyncTraces: true } } as never,
  });
}

export const commands: Record<string, Command> = {
  'moleculer.serve': async (args) => {
    const b = broker(String(args.url), `responder-${process.pid}`);
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
    const b = broker(String(args.url), `requester-${process.pid}-${String(args.name)}`);
    await b.start();
    cleanups.push(() => b.stop());
    await b.waitForServices(['counter'], 10_000);
    const prefix = String(args.keyPrefix ?? 'k');
    const send = (key: string) => b.call('counter.inc', { key, ...PAYLOAD });
    callers.set(String(args.name), { call: (w) => send(`${prefix}${w}`), callKey: (i) => send(`${prefix}${i}`) });
    return {};
  },
};
