/**
 * Calls one actor from the command line and prints the reply as JSON:
 *
 *   npx tsx scripts/call.ts <type>@<version> <key> <message> [payload as JSON]
 *   npx tsx scripts/call.ts counter@1 alice increment '{"by":2}'
 *
 * The version is the interface the caller speaks: a node serves its own
 * version natively and neighbouring ones through simulation objects. Uses the
 * NATS server in $NATS_URL, logging in with the `nats` CLI's variables when
 * set (NATS_USER/NATS_PASSWORD, NATS_TOKEN, NATS_CREDS, NATS_NKEY). Errors
 * marked retryable (no node up yet, a newer version not loaded yet) are
 * retried for up to 10 seconds, as a patient client would.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { createClient, isMoltError, isRetryable, natsFromEnv } from 'molt';
import service from '../src/service.ts';

const [target, key, message, payload = '{}'] = process.argv.slice(2);
const parsed = /^([a-z][a-z0-9-]*)@([1-9][0-9]*)$/.exec(target ?? '');
if (!parsed || !key || !message) {
  console.error('usage: npx tsx scripts/call.ts <type>@<version> <key> <message> [payload as JSON]');
  process.exit(2);
}
const url = process.env.NATS_URL;
if (!url) {
  console.error('set NATS_URL to the NATS server the nodes use (e.g. nats://127.0.0.1:4222)');
  process.exit(2);
}

const client = await createClient({ service: service.name, nats: natsFromEnv() });
const giveUpAt = Date.now() + 10_000;
try {
  for (;;) {
    try {
      const reply = await client.call(parsed[1]!, Number(parsed[2]), key, message, JSON.parse(payload));
      console.log(reply === undefined ? 'ok' : JSON.stringify(reply));
      break;
    } catch (e) {
      if (!isRetryable(e) || Date.now() > giveUpAt) throw e;
      await sleep(250);
    }
  }
} catch (e) {
  console.error(isMoltError(e) ? `${e.code}: ${e.message}` : String(e));
  process.exitCode = 1;
} finally {
  await client.close();
}
