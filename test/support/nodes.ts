/**
 * Test support for fault tests: counter-service nodes as separate OS
 * processes (`molt node`), and a per-key exact accounting of increments made
 * while nodes die.
 */
import { isMoltError, isRetryable, type MoltClient } from '../../runtime/index.ts';
import { counterV1 } from '../fixtures/counter.ts';
import { spawnScript, type ChildNode, type EmbeddedNats } from './nats.ts';

/** Lease and heartbeat the fault tests give their nodes (fast, so failover takes ~2 s). */
export const LEASE_MS = 1500;
export const HEARTBEAT_MS = 300;

/** Starts `molt node test/fixtures/counter.ts` as its own process; resolves once it prints that it serves. */
export async function startNodeProcess(url: string, id: string): Promise<ChildNode> {
  const child = spawnScript(
    'bin/molt.js',
    ['node', 'test/fixtures/counter.ts', '--nats', url, '--id', id, '--lease', String(LEASE_MS), '--heartbeat', String(HEARTBEAT_MS)],
    { MOLT_LOG: 'warn' },
  );
  try {
    await child.waitFor(new RegExp(`molt node ${id} serving`), 30_000);
  } catch (e) {
    await child.kill('SIGKILL');
    throw e;
  }
  return child;
}

/**
 * Ends a fault test that may have left node processes frozen (SIGSTOP):
 * resumes them, closes the client, kills every node and stops the server.
 * Anything not started is skipped, so it also ends a test whose set-up
 * failed halfway.
 */
export async function tearDown(parts: { nodes: Array<ChildNode | undefined>; client?: MoltClient | undefined; nats?: EmbeddedNats | undefined }): Promise<void> {
  for (const node of parts.nodes) node?.process.kill('SIGCONT');
  await parts.client?.close().catch(() => undefined);
  await Promise.all(parts.nodes.map((node) => node?.kill('SIGKILL')));
  await parts.nats?.stop();
}

/** What one key's caller knows about its counter. */
export interface KeyLedger {
  key: string;
  /** The counter's exact value as last established (by a reply or a read). */
  value: number;
  /** Increments acknowledged with a reply. */
  acked: number;
  /** Increments that failed without saying whether they applied (Timeout, OutcomeUnknown, Unavailable). */
  uncertain: number;
  /** How many of the uncertain ones a later read showed were applied. */
  uncertainApplied: number;
  /** Increments acknowledged after `mark()` was called (e.g. after a node died). */
  ackedSinceMark: number;
  /** Contradictions seen: a reply that is not the previous value + 1. */
  problems: string[];
  /** Error codes seen, with counts. */
  errors: Record<string, number>;
}

/**
 * One caller per key, one increment at a time, so the caller always knows the
 * counter's exact value: each reply must be the previous value + 1 (anything
 * else is a lost or doubled update), and after an increment whose outcome is
 * unknown (Timeout, Unavailable) the caller reads the counter — through the
 * same connection, so the read is ordered after the increment — and learns
 * whether it was applied (value + 0 or + 1; anything else is a problem).
 */
export function runKeyedLoad(client: MoltClient, keys: readonly string[]) {
  let running = true;
  let mark = false;
  const ledgers = keys.map<KeyLedger>((key) => ({ key, value: 0, acked: 0, uncertain: 0, uncertainApplied: 0, ackedSinceMark: 0, problems: [], errors: {} }));
  const note = (l: KeyLedger, e: unknown) => {
    const code = isMoltError(e) ? e.code : `non-Molt: ${String(e).slice(0, 80)}`;
    l.errors[code] = (l.errors[code] ?? 0) + 1;
  };
  const readUntilServed = async (l: KeyLedger): Promise<number> => {
    for (;;) {
      try {
        return await client.actor(counterV1, l.key).get();
      } catch (e) {
        note(l, e);
        if (!isRetryable(e)) throw e;
      }
    }
  };
  const worker = async (l: KeyLedger) => {
    const c = client.actor(counterV1, l.key);
    await c.reset();
    while (running) {
      try {
        const reply = await c.increment({ by: 1 });
        if (reply !== l.value + 1) l.problems.push(`${l.key}: increment answered ${reply} after ${l.value}`);
        l.value = reply;
        l.acked++;
        if (mark) l.ackedSinceMark++;
      } catch (e) {
        note(l, e);
        // OutcomeUnknown: the node could not tell whether it was applied, like a Timeout.
        if (!isRetryable(e) && !isMoltError(e, 'OutcomeUnknown')) {
          l.problems.push(`${l.key}: increment failed with a non-retryable error: ${String(e)}`);
          continue;
        }
        l.uncertain++;
        const read = await readUntilServed(l);
        if (read !== l.value && read !== l.value + 1) l.problems.push(`${l.key}: read ${read} after an uncertain increment on ${l.value}`);
        if (read === l.value + 1) l.uncertainApplied++;
        l.value = read;
      }
    }
  };
  const done = Promise.all(ledgers.map(worker));
  return {
    ledgers,
    /** Starts counting `ackedSinceMark`. */
    mark() {
      mark = true;
    },
    /** Stops the callers once each finished its current call. */
    async stop(): Promise<KeyLedger[]> {
      running = false;
      await done;
      return ledgers;
    },
    readUntilServed,
  };
}
