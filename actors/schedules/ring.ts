/**
 * `ring`: never two successors on a ring upgrading at once — the paper's
 * Chord scenario, where a key's replicas live on a node and its successors,
 * so upgrading two neighbours together could make keys unreachable.
 *
 * The ring orders the nodes by the number in their label `ring` (`molt node
 * --label ring=17`: the node's position, e.g. its Chord identifier), then by
 * id; nodes without the label follow, by id. Dead nodes keep their place (a
 * ring member that is down is still a member until it leaves). Positions
 * 0, 2, 4, … go first, then 1, 3, 5, …; with an odd number of nodes the last
 * one (a neighbour of position 0) goes alone, third. So within a phase no two
 * nodes are neighbours; a node goes when every node of an earlier phase has
 * reached the target or is gone, which never reverts — so no two neighbours
 * upgrade at once however stale each node's view.
 *
 * When nodes between two members of one phase are gone, those two become
 * successors among the live nodes: then the later one in the ring order waits
 * until the earlier one has reached the target (or is gone), and every node
 * also waits while a live neighbour in its view is upgrading.
 *
 * Params:
 * - `label` — the label holding a node's ring position, default `"ring"`.
 * - `maxUnavailable` — at most this many nodes `upgrading` or `failed` at
 *   once (a number, or `"25%"` of the nodes recorded); default: no cap.
 * - `health` — the health gate (optional).
 *
 * Descriptor: `{ "name": "ring", "params": { "maxUnavailable": "10%" } }`
 *
 * @module
 */
import type { ScheduleNodeView } from './contract.ts';
import { checkLabelName, labelOf, perList, unavailableGate, waitFor } from './labels.ts';
import { fromSchedulePolicy, type SchedulePolicy, type ScheduleView } from './machine.ts';
import { gone, positions, reached } from './order.ts';
import { parseWith, type HealthParams, type NodeCount } from './params.ts';

/** Parsed params of `ring`. */
export interface RingParams {
  label: string;
  maxUnavailable: NodeCount | undefined;
  health: HealthParams | undefined;
}

/** The ring's order: by the label's number, then id; nodes without a number after, by id. */
export function ringOrder(nodes: readonly ScheduleNodeView[], label: string): ScheduleNodeView[] {
  const position = (n: ScheduleNodeView): number => {
    const v = labelOf(n, label);
    const x = v === undefined || v === '' ? NaN : Number(v);
    return Number.isFinite(x) ? x : Infinity;
  };
  return [...nodes].sort((a, b) => {
    const pa = position(a);
    const pb = position(b);
    if (pa !== pb) return pa < pb ? -1 : 1;
    return a.id < b.id ? -1 : a.id > b.id ? 1 : 0;
  });
}

/** The phase of ring position `i` of `n`: 0 (even), 1 (odd), 2 (the last of an odd ring). */
export function ringPhase(i: number, n: number): number {
  if (n > 1 && n % 2 === 1 && i === n - 1) return 2;
  return i % 2;
}

/** The live neighbours of position `i` in `order` (predecessor, successor), skipping gone nodes. */
export function liveNeighbours(order: readonly ScheduleNodeView[], i: number): ScheduleNodeView[] {
  const n = order.length;
  const out: ScheduleNodeView[] = [];
  for (const step of [-1, 1]) {
    for (let k = 1; k < n; k++) {
      const j = (((i + step * k) % n) + n) % n;
      const m = order[j]!;
      if (!gone(m)) {
        if (!out.includes(m)) out.push(m);
        break;
      }
    }
  }
  return out.filter((m) => m !== order[i]);
}

/** The rule of `ring`. */
export const ringPolicy: SchedulePolicy<RingParams, null> = {
  name: 'ring',
  needsLedger: false,
  parse: (params) =>
    parseWith('ring', params, (r) => ({
      label: r.str('label', { expected: 'a label name such as "ring"', check: checkLabelName }) ?? 'ring',
      maxUnavailable: r.nodeCount('maxUnavailable', { unit: 'the most nodes upgrading or failed at once' }),
      health: r.health(),
    })),
  init: () => null,
  evaluate: (_state, view: ScheduleView<RingParams>) => {
    if (!view.nodes) return { ready: false, note: 'waiting for the node list' };
    const nodes = view.nodes;
    const order = perList(nodes, `ring:${view.params.label}`, () => ringOrder(nodes, view.params.label));
    const i = positions(order).ids.get(view.input.nodeId) ?? -1;
    if (i < 0) return { ready: false, note: `this node (${view.input.nodeId}) is not in the node list yet` };
    const to = view.input.to;
    const phase = ringPhase(i, order.length);
    // Pending nodes per phase, once per list.
    const pendingByPhase = perList(nodes, `ring-pending:${view.params.label}:${to}`, () => {
      const out: ScheduleNodeView[][] = [[], [], []];
      order.forEach((m, j) => {
        if (!reached(m, to) && !gone(m)) out[ringPhase(j, order.length)]!.push(m);
      });
      return out;
    });
    // What the nodes of this phase wait for: the same for all of them, so once per list.
    const waiting = perList(nodes, `ring-wait:${view.params.label}:${to}:${phase}`, () => {
      const earlier = pendingByPhase.slice(0, phase).flat();
      return earlier.length > 0 ? Object.freeze(waitFor(`ring phase ${phase}`, earlier, to)) : null;
    });
    if (waiting) return waiting;
    const neighbours = liveNeighbours(order, i);
    const busy = neighbours.filter((m) => m.status === 'upgrading');
    if (busy.length > 0) return { ready: false, note: `ring neighbour ${busy.map((m) => m.id).join(', ')} upgrading; never two successors at once` };
    // A neighbour of the same phase (the nodes between are gone): the earlier in the ring goes first.
    const first = neighbours.filter((m) => {
      const j = positions(order).ids.get(m.id)!;
      return j < i && ringPhase(j, order.length) === phase && !reached(m, to);
    });
    if (first.length > 0) return waitFor(`ring position ${i}`, first, to);
    return unavailableGate(view.nodes, order[i]!.id, view.params.maxUnavailable);
  },
};

/** The `ring` SF machine; params come through `input.params`. */
export const ring = fromSchedulePolicy(ringPolicy);
