/**
 * The NATS connection flags every `molt` command that talks to NATS takes, and
 * the one way they become a connection: `--nats` (or `NATS_URL`; a URL may
 * carry `user:pass@` or `token@`), `--user`/`--pass` (or `NATS_USER`/
 * `NATS_PASSWORD`), `--token` (`NATS_TOKEN`), `--creds <file>` (`NATS_CREDS`),
 * `--nkey <seed file>` (`NATS_NKEY`) and `--inbox-prefix`. Flags win over the
 * environment, and credentials in a flag or variable over those in the URL.
 *
 * Molt's tools reply-subscribe under `_MOLT_TOOLS` by default (nodes under
 * `_MOLT_NODE.<id>`, callers under `_INBOX`): the permissions of
 * docs/permissions.md give each role its own inbox, so that no other role can
 * read or forge its replies.
 *
 * @module
 */
import type { Command } from 'commander';
import type { NatsConnection } from '@nats-io/transport-node';
import { ErrorCode, MoltError } from '../errors.ts';
import { connectNats, credentialsFromEnv, type NatsConnectOptions } from '../nats/connect.ts';

/** Reply-subject prefix of the operator and publisher tools (`molt status`, `publish`, `setup`, …). */
export const TOOLS_INBOX_PREFIX = '_MOLT_TOOLS';

/** The connection flags, as commander parses them. */
export interface NatsFlags {
  nats?: string;
  user?: string;
  pass?: string;
  token?: string;
  creds?: string;
  nkey?: string;
  inboxPrefix?: string;
}

/** Adds the connection flags to a command. */
export function addNatsFlags(cmd: Command): Command {
  return cmd
    .option('--nats <urls>', 'NATS server URL(s), comma-separated; may carry user:pass@ or token@ (default: $NATS_URL)')
    .option('--user <user>', 'NATS user (default: $NATS_USER)')
    .option('--pass <password>', 'NATS password (default: $NATS_PASSWORD)')
    .option('--token <token>', 'NATS authentication token (default: $NATS_TOKEN)')
    .option('--creds <file>', 'NATS credentials file: user JWT and nkey seed (default: $NATS_CREDS)')
    .option('--nkey <seedFile>', 'NATS user nkey seed file (default: $NATS_NKEY)')
    .option('--inbox-prefix <prefix>', 'prefix of this connection\'s reply subjects (must match its NATS permissions; see docs/permissions.md)');
}

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
