/**
 * The one way the connection flags (flags.ts) become a connection. Commands
 * import this module when they run, not when they register: it loads the
 * NATS client.
 *
 * Molt's tools reply-subscribe under `_MOLT_TOOLS` by default (nodes under
 * `_MOLT_NODE.<id>`, callers under `_INBOX`): the permissions of
 * docs/permissions.md give each role its own inbox, so that no other role can
 * read or forge its replies.
 *
 * @module
 */
import type { NatsConnection } from '@nats-io/transport-node';
import { ErrorCode, MoltError } from '../errors.ts';
import { connectNats, credentialsFromEnv, type NatsConnectOptions } from '../nats/connect.ts';
import { TOOLS_INBOX_PREFIX, type NatsFlags } from './flags.ts';

export { TOOLS_INBOX_PREFIX, type NatsFlags } from './flags.ts';

/**
 * Where and as whom the flags say to connect. `defaultUrl` stands in when
 * neither `--nats` nor `NATS_URL` is given (`molt dev`'s embedded server).
 */
export function natsTargetFromFlags(flags: NatsFlags, name: string, options: { env?: NodeJS.ProcessEnv; defaultUrl?: string; inboxPrefix?: string } = {}): NatsConnectOptions {
  const env = options.env ?? process.env;
  const url = flags.nats ?? env.NATS_URL ?? options.defaultUrl;
  if (!url) throw new MoltError(ErrorCode.Environment, 'no NATS server given: pass --nats nats://host:4222 or set NATS_URL');
  const fromEnv = credentialsFromEnv(env);
  // Flags replace the environment as a whole kind: `--token` must not meet NATS_USER from the shell.
  const flagged = [flags.user, flags.pass, flags.token, flags.creds, flags.nkey].some((v) => v !== undefined);
  const credentials = flagged
    ? {
        ...(flags.user !== undefined ? { user: flags.user } : {}),
        ...(flags.pass !== undefined ? { pass: flags.pass } : {}),
        ...(flags.token !== undefined ? { token: flags.token } : {}),
        ...(flags.creds !== undefined ? { creds: flags.creds } : {}),
        ...(flags.nkey !== undefined ? { nkey: flags.nkey } : {}),
      }
    : urlHasCredentials(url)
      ? {}
      : fromEnv;
  const inboxPrefix = flags.inboxPrefix ?? options.inboxPrefix;
  return { servers: url.split(','), name, ...credentials, ...(inboxPrefix ? { inboxPrefix } : {}) };
}

function urlHasCredentials(url: string): boolean {
  return url.split(',').some((u) => /^([a-z][a-z0-9+.-]*:\/\/)?[^@/]*@/i.test(u.trim()));
}

/** Connects as the flags say (a tool's connection: replies under {@link TOOLS_INBOX_PREFIX} unless `--inbox-prefix`). */
export function connectFromFlags(flags: NatsFlags, name: string): Promise<NatsConnection> {
  return connectNats(natsTargetFromFlags(flags, name, { inboxPrefix: TOOLS_INBOX_PREFIX }));
}
