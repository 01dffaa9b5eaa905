/**
 * Finding the service an operator acts on, and opening its upgrade database
 * without creating it (an operator's typo must not conjure an empty service).
 *
 * @module
 */
import type { NatsConnection } from '@nats-io/transport-node';
import { Kvm } from '@nats-io/kv';
import { ErrorCode, MoltError } from '../errors.ts';
import { Udb } from '../udb/index.ts';
import { bucketNames } from '../wire/protocol.ts';

/**
 * The service to act on: `explicit` (a `--service` flag), else
 * `$MOLT_SERVICE`, else the only service whose UDB exists on this NATS.
 *
 * @throws MoltError `OperationRefused` when there is no service, or several and none was named.
 */
export async function findService(nc: NatsConnection, explicit?: string, env: NodeJS.ProcessEnv = process.env): Promise<string> {
  const named = explicit ?? env.MOLT_SERVICE;
  if (named) return named;
  const found: string[] = [];
  for await (const status of new Kvm(nc).list()) {
    const m = /^molt_([a-z][a-z0-9-]*)_udb$/.exec(status.bucket);
    if (m) found.push(m[1]!);
  }
  if (found.length === 1) return found[0]!;
  if (found.length === 0) throw new MoltError(ErrorCode.OperationRefused, 'no Molt service on this NATS yet (no molt_<service>_udb bucket): start a node first, or pass --service');
  throw new MoltError(ErrorCode.OperationRefused, `several services on this NATS (${found.join(', ')}): pass --service <name>`);
}

/**
 * Opens a service's UDB without creating it.
 *
 * @throws MoltError `OperationRefused` when the service has no UDB on this NATS.
 */
export async function openUdbFor(nc: NatsConnection, service: string): Promise<Udb> {
  const kv = await new Kvm(nc).open(bucketNames(service).udb);
  try {
    await kv.status();
  } catch {
    throw new MoltError(ErrorCode.OperationRefused, `service '${service}' has no upgrade database on this NATS (bucket ${bucketNames(service).udb}): is the name right, and has a node run?`);
  }
  return new Udb(kv, service, nc);
}
