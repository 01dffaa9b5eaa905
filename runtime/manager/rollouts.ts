/**
 * Rollout accounting: the `counts` of each rollout (live nodes per native
 * version of its type) and its end — `done` when every live node hosting the
 * type runs `to` or later, `rolled-back` when a rollout rolling back finds
 * every live node at `from` again, none mid-restart.
 *
 * Counts stay current after the end for the newest rollout of each type: a
 * node killed when the rollout ended, restarted later, must show in its
 * counts (`molt status` showed `{"2":2}` for three nodes at v2 otherwise).
 * Older rollouts of a type keep the counts they had when the next one
 * started: they are history.
 *
 * Who writes: there is no coordinator, but there is a first choice. Every
 * manager recounts when a node's version or status changes and at every
 * reconciliation; the manager of the live node with the lowest id among those
 * hosting the type (its *counter*) writes at once, with compare-and-set on
 * the rollout's revision. Every other manager, finding the record behind what
 * it counts, looks again a scheduling tick later: if nobody wrote the record
 * in that tick (the counter's node may run no manager, or be cut off), it
 * writes; if someone did, the counter is at work and it waits another tick.
 * So one change costs one write, where every manager writing at once cost N
 * attempts, N − 1 of them refused compare-and-sets each followed by a read
 * (N² per rollout over N nodes); and when the counter cannot write, the
 * others still do, a tick later. Concurrent writers never lose each other's
 * writes, and the first to see the end records it.
 *
 * @module
 */
import { supersedes, type RolloutRecord } from '../udb/index.ts';
import { nodeViews, type ManagerContext } from './context.ts';
import { errorText } from './model.ts';
import type { TimerHandle } from '../env.ts';

export interface RolloutAccounting {
  /**
   * Recounts every rollout that is not over (coalesced: a call during a
   * recount runs one more round). Writes the rollouts this manager counts;
   * for the others, looks again a tick later (see the module notes).
   */
  refresh(): Promise<void>;
  /** Cancels a pending second look. */
  stop(): void;
}

export function createRolloutAccounting(ctx: ManagerContext): RolloutAccounting {
  const { udb, clock, logger } = ctx;
  let refreshing: Promise<void> | undefined;
  let refreshAgain = false;
  /** Set by a recount that left a rollout it found behind to its counter: the second look, a tick later. */
  let lookAgain: TimerHandle | undefined;
  let secondLook = false;
  /**
   * Rollouts this manager found behind and left to their counter, with the
   * record's `updatedAt` then. A second look writes one only if nobody has
   * written it since: while the counter keeps writing, the others wait.
   */
  const leftBehind = new Map<string, number>();

  function scheduleSecondLook(): void {
    if (lookAgain !== undefined || ctx.stopped) return;
    lookAgain = clock.setTimeout(() => {
      lookAgain = undefined;
      secondLook = true;
      void refresh();
    }, ctx.config.tickMs);
  }

  async function refresh(): Promise<void> {
    if (refreshing) {
      refreshAgain = true;
      return refreshing;
    }
    refreshing = (async () => {
      do {
        refreshAgain = false;
        const looking = secondLook;
        secondLook = false;
        let leftToCounter = false;
        const all = [...ctx.rollouts.values()];
        for (const r of all) {
          if (ctx.stopped) continue;
          const over = r.state === 'done' || r.state === 'rolled-back' || r.state === 'aborted';
          if (over && all.some((o) => supersedes(o, r))) continue;
          const views = nodeViews(ctx, r.type).filter((n) => n.live);
          const counts: Record<string, number> = {};
          for (const n of views) counts[String(n.version)] = (counts[String(n.version)] ?? 0) + 1;
          const done = views.length > 0 && views.every((n) => n.version >= r.to);
          // Rolled back: every live node is at `from` again, none in the middle of a soft restart.
          const back = views.length > 0 && views.every((n) => n.version <= r.from && n.status !== 'upgrading');
          const ending = (state: RolloutRecord['state']): 'done' | 'rolled-back' | undefined =>
            state === 'rolling-back' ? (back ? 'rolled-back' : undefined) : state === 'running' || state === 'paused' ? (done ? 'done' : undefined) : undefined;
          const same = JSON.stringify(counts) === JSON.stringify(r.counts);
          if (same && !ending(r.state)) {
            leftBehind.delete(r.rolloutId);
            continue;
          }
          // The views are sorted by id: the first is the rollout's counter.
          if (views[0]?.id !== ctx.node.id) {
            const since = leftBehind.get(r.rolloutId);
            // Written since it was found behind: its counter is at work, wait another tick.
            if (!looking || since !== r.updatedAt) {
              if (looking || since === undefined) leftBehind.set(r.rolloutId, r.updatedAt);
              leftToCounter = true;
              continue;
            }
          }
          leftBehind.delete(r.rolloutId);
          try {
            const next = await udb.updateRollout(r.rolloutId, (cur) => {
              const finish = ending(cur.state);
              if (JSON.stringify(cur.counts) === JSON.stringify(counts) && !finish) return undefined;
              const now = clock.now();
              return { ...cur, counts, updatedAt: now, ...(finish ? { state: finish, endedAt: now } : {}) };
            });
            if (next) ctx.rollouts.set(next.rolloutId, next);
          } catch (e) {
            logger.warn('could not update rollout', { rolloutId: r.rolloutId, error: errorText(e) });
          }
        }
        if (leftToCounter) scheduleSecondLook();
      } while (refreshAgain && !ctx.stopped);
    })().finally(() => {
      refreshing = undefined;
    });
    return refreshing;
  }

  return {
    refresh,
    stop() {
      if (lookAgain !== undefined) clock.clearTimeout(lookAgain);
      lookAgain = undefined;
    },
  };
}
