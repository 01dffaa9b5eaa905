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
 * Who writes: there is no coordinator, but there is a first choice, the
 * rollout's *counter* — the manager of the live node with the lowest id among
 * those hosting the type. It recounts whenever a node's version or status
 * changes, when a rollout appears and at every reconciliation, and writes at
 * once, with compare-and-set on the rollout's revision. Every other manager
 * recounts at most once per scheduling tick after such an event, and writes
 * a record it finds behind only once nobody has written it for as many
 * ticks as its rank among those nodes (the node after the counter after one
 * quiet tick, the one after it after two): the counter's node may run no
 * manager, or be cut off. While someone keeps writing, the others wait.
 *
 * So one change costs one write, where every manager writing at once cost N
 * attempts, N − 1 of them refused compare-and-sets each followed by a read
 * (N² per rollout over N nodes; docs/performance.md, "Dissemination"). When
 * the counter cannot write, the next one does, a tick later; concurrent
 * writers never lose each other's writes, and the first to see the end
 * records it.
 *
 * @module
 */
import { supersedes, type RolloutRecord } from '../udb/index.ts';
import { counterOf, nodeViews, type ManagerContext } from './context.ts';
import { errorText } from './model.ts';
import type { TimerHandle } from '../env.ts';

export interface RolloutAccounting {
  /**
   * Recounts every rollout that is not over (coalesced: a call during a
   * recount runs one more round). Writes the rollouts this manager counts;
   * the others it looks at again a tick later (see the module notes).
   */
  refresh(): Promise<void>;
  /** Cancels the pending look, if any. */
  stop(): void;
}

export function createRolloutAccounting(ctx: ManagerContext): RolloutAccounting {
  const { udb, clock, logger } = ctx;
  let refreshing: Promise<void> | undefined;
  let refreshAgain = false;
  /** The next look at the rollouts this manager does not count, a tick after a recount left one to its counter. */
  let nextLook: TimerHandle | undefined;
  /** Set while the recount is that look. */
  let lookDue = false;
  /**
   * Rollouts this manager found behind and left to their counter: the
   * record's `updatedAt` then, and the ticks since in which nobody wrote it.
   */
  const leftBehind = new Map<string, { updatedAt: number; quietTicks: number }>();

  function scheduleLook(): void {
    if (nextLook !== undefined || ctx.stopped) return;
    nextLook = clock.setTimeout(() => {
      nextLook = undefined;
      lookDue = true;
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
        const looking = lookDue;
        lookDue = false;
        let leftToCounter = false;
        const all = [...ctx.rollouts.values()];
        for (const r of all) {
          if (ctx.stopped) continue;
          const over = r.state === 'done' || r.state === 'rolled-back' || r.state === 'aborted';
          if (over && all.some((o) => supersedes(o, r))) continue;
          // Not its counter: counted at the next tick's look, not on every change.
          if (!looking && counterOf(ctx, r.type) !== ctx.node.id) {
            leftToCounter = true;
            continue;
          }
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
          // The views are sorted by id: the first is the rollout's counter; a node not among them comes after them all.
          const rank = views.findIndex((n) => n.id === ctx.node.id);
          if (rank !== 0) {
            const left = leftBehind.get(r.rolloutId);
            if (left === undefined || left.updatedAt !== r.updatedAt) {
              // Found behind now, or written since: someone is counting; wait.
              leftBehind.set(r.rolloutId, { updatedAt: r.updatedAt, quietTicks: 0 });
              leftToCounter = true;
              continue;
            }
            if (looking) left.quietTicks++;
            if (left.quietTicks < (rank < 0 ? Math.max(1, views.length) : rank)) {
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
        if (leftToCounter) scheduleLook();
      } while (refreshAgain && !ctx.stopped);
    })().finally(() => {
      refreshing = undefined;
    });
    return refreshing;
  }

  return {
    refresh,
    stop() {
      if (nextLook !== undefined) clock.clearTimeout(nextLook);
      nextLook = undefined;
    },
  };
}
