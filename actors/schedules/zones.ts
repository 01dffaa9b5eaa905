/**
 * `zones`: zone by zone. Every node of a zone (label `zone`, `molt node
 * --label zone=a`) upgrades before any node of the next zone starts, so a
 * bad version is met in one zone while the others still serve the old one —
 * the rollout Kubernetes operators get from one Deployment per zone.
 *
 * The zone order is `order` when given (zones it does not list follow, in
 * name order), else the zone names sorted (code units, the same on every
 * node). Nodes without the label form one last zone. A node goes when every
 * node of an earlier zone has reached the target or is gone (dead or
 * stopped); within its zone, `batch` nodes at a time in the stable order
 * (default: the whole zone at once).
 *
 * Why never two zones at once: reaching the target and being gone do not
 * revert, so once a node of zone z decided, no node of an earlier zone is
 * still upgrading, and no node of a later zone can decide until every live
 * node of zone z has reached the target (see order.ts for the same argument
 * about batches).
 *
 * Params:
 * - `label` — the label naming a node's zone, default `"zone"`.
 * - `order` — zone names in the order they go, e.g. `["eu-1", "eu-2"]`.
 * - `batch` — nodes upgrading at once within a zone, an integer ≥ 1 (default: the zone).
 * - `maxUnavailable` — at most this many nodes `upgrading` or `failed` at once
 *   (a number or `"25%"` of the nodes recorded), as for `rolling`.
 * - `health` — the health gate (optional).
 *
 * Descriptor: `{ "name": "zones", "params": { "order": ["a", "b", "c"], "batch": 2 } }`
 *
 * @module
 */
import type { ScheduleNodeView } from './contract.ts';
import { checkLabelName, labelOf, pending, perList, unavailableGate, waitFor } from './labels.ts';
import { fromSchedulePolicy, type SchedulePolicy, type ScheduleView } from './machine.ts';
import { findNode, rollingGate, stableOrder } from './order.ts';
import { parseWith, type HealthParams, type NodeCount } from './params.ts';

/** Parsed params of `zones`. */
export interface ZonesParams {
  label: string;
  order: string[] | undefined;
  batch: number | undefined;
  maxUnavailable: NodeCount | undefined;
  health: HealthParams | undefined;
}

/** The zone a node is in ('' for a node without the label). */
export const zoneOf = (n: ScheduleNodeView, label: string): string => labelOf(n, label) ?? '';

/**
 * The zones in the order they go: `order` first, then the other named zones
 * sorted, then '' (nodes without the label).
 */
export function zoneOrder(nodes: readonly ScheduleNodeView[], params: Pick<ZonesParams, 'label' | 'order'>): string[] {
  const named = new Set(nodes.map((n) => zoneOf(n, params.label)).filter((z) => z !== ''));
  const listed = params.order ?? [];
  const rest = [...named].filter((z) => !listed.includes(z)).sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  return [...listed, ...rest, ''];
}

/** The rule of `zones`. */
export const zonesPolicy: SchedulePolicy<ZonesParams, null> = {
  name: 'zones',
  needsLedger: false,
  parse: (params) =>
    parseWith('zones', params, (r) => ({
      label: r.str('label', { expected: 'a label name such as "zone"', check: checkLabelName }) ?? 'zone',
      order: r.list('order', { expected: 'a list of distinct zone names, e.g. ["eu-1", "eu-2"]' }),
      batch: r.int('batch', { min: 1, unit: 'nodes upgrading at once within a zone' }),
      maxUnavailable: r.nodeCount('maxUnavailable', { unit: 'the most nodes upgrading or failed at once' }),
      health: r.health(),
    })),
  init: () => null,
  evaluate: (_state, view: ScheduleView<ZonesParams>) => {
    if (!view.nodes) return { ready: false, note: 'waiting for the node list' };
    const { label } = view.params;
    const self = findNode(view.nodes, view.input.nodeId);
    if (!self) return { ready: false, note: `this node (${view.input.nodeId}) is not in the node list yet` };
    const nodes = view.nodes;
    const to = view.input.to;
    // Per zone, in the zone order: its members (stable order) and those still pending; once per list.
    const zones = perList(nodes, `zones:${label}:${JSON.stringify(view.params.order ?? null)}:${to}`, () => {
      const members = new Map<string, ScheduleNodeView[]>(zoneOrder(nodes, view.params).map((z) => [z, []]));
      for (const n of stableOrder(nodes)) members.get(zoneOf(n, label))!.push(n);
      return [...members].map(([zone, list]) => ({ zone, members: list, pending: pending(list, to) }));
    });
    const mine = zoneOf(self, label);
    const index = zones.findIndex((z) => z.zone === mine);
    const zoneName = mine === '' ? `the nodes without label "${label}"` : `zone ${mine}`;
    // What the nodes of this zone wait for: the same for all of them, so once per list.
    const waiting = perList(nodes, `zones-wait:${label}:${JSON.stringify(view.params.order ?? null)}:${to}:${index}`, () => {
      const blockers = zones.slice(0, index).flatMap((z) => z.pending);
      return blockers.length > 0 ? Object.freeze(waitFor(zoneName, blockers, to)) : null;
    });
    if (waiting) return waiting;
    // Within the zone: k at a time in the stable order, or all at once.
    const members = zones[index]!.members;
    if (view.params.batch !== undefined) {
      const gate = rollingGate(members, members, self.id, view.params.batch, view.input.to);
      if (!gate.ready) return { ready: false, note: `${zoneName}: ${gate.note}` };
    }
    return unavailableGate(view.nodes, self.id, view.params.maxUnavailable);
  },
};

/** The `zones` SF machine; params come through `input.params`. */
export const zones = fromSchedulePolicy(zonesPolicy);
