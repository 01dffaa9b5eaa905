/**
 * The NATS connection flags every `molt` command that talks to NATS takes:
 * `--nats` (or `NATS_URL`; a URL may carry `user:pass@` or `token@`),
 * `--user`/`--pass` (or `NATS_USER`/`NATS_PASSWORD`), `--token`
 * (`NATS_TOKEN`), `--creds <file>` (`NATS_CREDS`), `--nkey <seed file>`
 * (`NATS_NKEY`), `--inbox-prefix`, and the operator commands' `--service`.
 * Flags win over the environment, and credentials in a flag or variable over
 * those in the URL (connection.ts turns them into a connection).
 *
 * Only commander's types are imported here: every command registers its
 * flags at start, and `molt --help` must not load the NATS client for it.
 *
 * @module
 */
import type { Command } from 'commander';

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

/** The NATS flags and `--service`, as the operator commands take them. */
export interface ConnectionFlags extends NatsFlags {
  service?: string;
}

/** Adds the NATS connection flags and `--service` to a command. */
export function addConnectionFlags(cmd: Command): Command {
  return addNatsFlags(cmd).option('--service <name>', 'the service (default: $MOLT_SERVICE, or the only one on this NATS)');
}
