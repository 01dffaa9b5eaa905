/**
 * Test support: UDB records built with only what a test cares about.
 */
import type { RolloutRecord } from '../../runtime/udb/index.ts';

/** A rollout of `type` (default `counter`) from `to - 1` to `to`, started at `to` unless `extra` says otherwise. */
export function rolloutRecord(id: string, to: number, state: RolloutRecord['state'], extra: Partial<RolloutRecord> = {}): RolloutRecord {
  return {
    rolloutId: id,
    service: 's',
    type: 'counter',
    from: to - 1,
    to,
    schedule: { name: 'immediate', params: {} },
    publisher: 'U',
    state,
    counts: {},
    startedAt: to,
    updatedAt: 0,
    ...extra,
  };
}
