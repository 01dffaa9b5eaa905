/**
 * Whether the connection calls arrive on still works, for a node whose
 * heartbeats travel on another connection (runtime/node/connections.ts explains why).
 *
 * A connection is alive while bytes keep arriving on it (a node under heavy
 * load is never idle), or, when it is quiet, while a PING is answered with a
 * PONG in time. A connection cut between the node and its server shows
 * neither, and the node then stops renewing its lease.
 *
 * @module
 */
import type { NatsConnection } from '@nats-io/transport-node';
import type { Clock, TimerHandle } from '../env.ts';

export interface CallPathProbe {
  /** True unless the connection has shown no sign of life for `deadAfterMs`. */
  alive(): boolean;
  stop(): void;
}

/**
 * Probes `nc` every `everyMs`: bytes received since the last probe prove it
 * alive; otherwise a flush (PING/PONG) does when it returns.
 */
export function probeCallPath(nc: NatsConnection, clock: Clock, options: { everyMs: number; deadAfterMs: number }): CallPathProbe {
  let lastAlive = clock.monotonic();
  let lastInBytes = nc.stats().inBytes;
  let probing = false;
  let timer: TimerHandle | undefined;
  let stopped = false;
  const check = () => {
    if (stopped) return;
    const inBytes = nc.stats().inBytes;
    if (inBytes !== lastInBytes) {
      lastInBytes = inBytes;
      lastAlive = clock.monotonic();
    } else if (!probing) {
      probing = true;
      const sent = clock.monotonic();
      nc.flush().then(
        () => {
          probing = false;
          lastAlive = Math.max(lastAlive, sent);
        },
        () => {
          probing = false;
        },
      );
    }
    timer = clock.setTimeout(check, options.everyMs);
  };
  timer = clock.setTimeout(check, options.everyMs);
  return {
    alive: () => clock.monotonic() - lastAlive < options.deadAfterMs,
    stop() {
      stopped = true;
      if (timer !== undefined) clock.clearTimeout(timer);
    },
  };
}
