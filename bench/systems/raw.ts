/**
 * The raw floor: a NATS responder and requester with no framework, the same
 * client library and connection options as Molt, plain JSON bodies carrying
 * the same 100-byte payload, and — like Molt's client — one multiplexed reply
 * subscription per requester with a correlation id in the reply subject (not
 * `request()` per call, which is 2–4× slower and would flatter Molt).
 *
 * The responder does the least an actor call must: parse the body, update a
 * per-key counter in a Map, reply with the new count.
 *
 * @module
 */
import { randomBytes } from 'node:crypto';
import type { Msg } from '@nats-io/transport-node';
import { PAYLOAD } from '../fixtures/service.ts';
import { callers, connect, type Command } from './common.ts';

const encoder = new TextEncoder();
const decoder = new TextDecoder();

export const commands: Record<string, Command> = {
  /** Serves `raw.<key>` in a queue group. */
  'raw.serve': async (args) => {
    const nc = await connect(String(args.url), 'bench raw responder');
    const counts = new Map<string, number>();
    nc.subscribe('raw.>', {
      queue: 'raw',
      callback: (err, msg: Msg) => {
        if (err || !msg.reply) return;
        const request = JSON.parse(decoder.decode(msg.data)) as { by: number };
        const key = msg.subject.slice(4);
        const count = (counts.get(key) ?? 0) + request.by;
        counts.set(key, count);
        msg.respond(encoder.encode(JSON.stringify(count)));
      },
    });
    await nc.flush();
    return {};
  },
  /** Registers caller `name`: worker w sends the payload to `raw.<prefix><w>`. */
  'raw.caller': async (args) => {
    const nc = await connect(String(args.url), 'bench raw requester');
    const prefix = String(args.keyPrefix ?? 'k');
    const inbox = `_INBOX.raw.${randomBytes(9).toString('base64url')}`;
    const pending = new Map<string, (value: unknown) => void>();
    let seq = 0;
    nc.subscribe(`${inbox}.*`, {
      callback: (err, msg) => {
        if (err) return;
        const id = msg.subject.slice(inbox.length + 1);
        const resolve = pending.get(id);
        if (!resolve) return;
        pending.delete(id);
        resolve(JSON.parse(decoder.decode(msg.data)));
      },
    });
    await nc.flush();
    const send = (key: string) =>
      new Promise<unknown>((resolve) => {
        const id = (seq++).toString(36);
        pending.set(id, resolve);
        nc.publish(`raw.${key}`, encoder.encode(JSON.stringify(PAYLOAD)), { reply: `${inbox}.${id}` });
      });
    callers.set(String(args.name), { call: (w) => send(`${prefix}${w}`), callKey: (i) => send(`${prefix}${i}`) });
    return {};
  },
};
