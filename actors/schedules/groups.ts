/**
 * `groups`: at most one node of each replica group upgrading at a time, so a
 * replicated service (three replicas of a shard, a Raft group) keeps its
 * quorum throughout — the paper's replicated-service scenario. Groups go in
 * parallel: the rollout takes as many steps as the largest group has nodes.
 *
 * A node's group is its label `group` (`molt node --label group=g1`); a node
 * without it is a group of its own. Within a group the nodes go one after
 * another in the stable order (ids sorted): a node goes when every node
 * before it in its group has reached the target or is gone (dead or stopped),
 * and no other live node of its group is `upgrading` in its view.
 *
 * Why never two of a group at once, even on stale views: reaching the target
 * and being gone do not revert, so when a node decides, every earlier node of
 * its group is done (or gone) for good, and no later node of its group can
 * decide before it has reached the target itself. The second check keeps the
 * bound when a group's order shifts (a node joins with a smaller id).
 *
 * Params:
 * - `label` — the label naming a node's group, default `"group"`.
 * - `maxUnavailable` — at most this many nodes `upgrading` or `failed` at once
 *   over the whole service (a number, or `"25%"` of the nodes recorded); default: no cap.
 * - `health` — the health gate (optional).
 *
 * Descriptor: `{ "name": "groups", "params": { "label": "group" } }`
 *
 * @module
 */
import type { ScheduleNodeView } from './contract.ts';
import { checkLabelName, labelOf, pending, perList, unavailableGate, upgradingOthers, waitFor } from './labels.ts';
import { fromSchedulePolicy, type SchedulePolicy, type ScheduleView } from './machine.ts';
import { findNode, stableOrder } from './order.ts';
import { parseWith, type HealthParams, type NodeCount } from './params.ts';

/** Parsed params of `groups`. */
export interface GroupsParams {
  label: string;
  maxUnavailable: NodeCount | undefined;
  health: HealthParams | undefined;
}

/** The group of a node: its label, or (without it) a group of its own. */
export function groupOf(n: ScheduleNodeView, label: string): string {
  const g = labelOf(n, label);
  return g === undefined ? `\u0000${n.id}` : g;
}

/** The rule of `groups`. */
export const groupsPolicy: SchedulePolicy<GroupsParams, null> = {
  name: 'groups',
  needsLedger: false,
  parse: (params) =>
    parseWith('groups', params, (r) => ({
      label: r.str('label', { expected: 'a label name such as "group"', check: checkLabelName }) ?? 'group',
      maxUnavailable: r.nodeCount('maxUnavailable', { unit: 'the most nodes upgrading or failed at once' }),
      health: r.health(),
    })),
  init: () => null,
  evaluate: (_state, view: ScheduleView<GroupsParams>) => {
    if (!view.nodes) return { ready: false, note: 'waiting for the node list' };
    const { label } = view.params;
    const self = findNode(view.nodes, view.input.nodeId);
    if (!self) return { ready: false, note: `this node (${view.input.nodeId}) is not in the node list yet` };
    const group = groupOf(self, label);
    const nodes = view.nodes;
    const byGroup = perList(nodes, `groups:${label}`, () => {
      const out = new Map<string, ScheduleNodeView[]>();
      for (const n of stableOrder(nodes)) {
        const g = groupOf(n, label);
        const list = out.get(g);
        if (list) list.push(n);
        else out.set(g, [n]);
      }
      return out;
    });
    const members = byGroup.get(group) ?? [self];
    const name = labelOf(self, label) === undefined ? `node ${self.id} (no label "${label}")` : `group ${group}`;
    const before = pending(members.slice(0, members.findIndex((n) => n.id === self.id)), view.input.to);
    if (before.length > 0) return waitFor(name, before, view.input.to);
    const busy = upgradingOthers(members, self.id);
    if (busy.length > 0) return { ready: false, note: `${name}: ${busy.map((n) => n.id).join(', ')} upgrading; one node of a group at a time` };
    return unavailableGate(view.nodes, self.id, view.params.maxUnavailable);
  },
};

/** The `groups` SF machine; params come through `input.params`. */
export const groups = fromSchedulePolicy(groupsPolicy);
