/**
 * Node labels: `--label` flags are parsed and checked, a node's record
 * carries them, `molt status` shows them (a LABELS column only when some node
 * has labels), and scheduling functions see them in their node views.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { checkLabels, formatLabels, labelsOf, parseLabelFlags } from '../../runtime/node/labels.ts';
import { buildNodeRecord } from '../../runtime/node/record.ts';
import { renderStatus, statusView } from '../../runtime/operate/status.ts';
import type { NodeRecord, UdbSnapshot } from '../../runtime/udb/index.ts';
import { isMoltError } from '../../runtime/errors.ts';

function refused(fn: () => unknown, pattern: RegExp): void {
  try {
    fn();
  } catch (e) {
    assert.ok(isMoltError(e) && e.code === 'InvalidDefinition', String(e));
    assert.match((e as Error).message, pattern);
    return;
  }
  assert.unreachable(`expected a refusal matching ${pattern}`);
}

test('labels - flags parse into a frozen record of labels', () => {
  const labels = parseLabelFlags(['zone=eu-west-1a', 'group=g1', 'ring=17']);
  assert.equal({ ...labels }, { zone: 'eu-west-1a', group: 'g1', ring: '17' });
  assert.ok(Object.isFrozen(labels));
  assert.equal({ ...parseLabelFlags(undefined) }, {});
  assert.is(formatLabels(labels), 'group=g1,ring=17,zone=eu-west-1a');
  // An empty value is a value (Kubernetes allows it too).
  assert.equal({ ...parseLabelFlags(['canary=']) }, { canary: '' });
});

test('labels - a bad flag, name or value is refused with the form it must have', () => {
  refused(() => parseLabelFlags(['zone']), /--label takes <name>=<value>, e\.g\. --label zone=a; got 'zone'/);
  refused(() => parseLabelFlags(['=a']), /--label takes <name>=<value>/);
  refused(() => parseLabelFlags(['zone=a', 'zone=b']), /--label zone is given twice/);
  refused(() => parseLabelFlags(['Zone=a']), /label name 'Zone' must be/);
  refused(() => parseLabelFlags(['zone=a b']), /label 'zone' has value "a b"/);
  refused(() => checkLabels({ zone: 3 }), /label 'zone' has value 3/);
  refused(() => checkLabels(Object.fromEntries(Array.from({ length: 17 }, (_, i) => [`l${i}`, 'x']))), /at most 16 labels, got 17/);
});

test('labels - the node record carries them; a record without them has none', () => {
  const identity = { nodeId: 'n1', service: 'shop', startedAt: 1, labels: checkLabels({ zone: 'a', group: 'g1' }) };
  const state = { status: 'running' as const, lastError: undefined, upgradingTo: {} };
  const rec = buildNodeRecord(identity, new Map(), state, 2);
  assert.equal(rec.labels, { zone: 'a', group: 'g1' });
  const bare = buildNodeRecord({ nodeId: 'n2', service: 'shop', startedAt: 1 }, new Map(), state, 2);
  assert.is('labels' in bare, false);
  // Read back from the UDB, only string values count.
  assert.equal(labelsOf({ zone: 'a', n: 3 }), { zone: 'a' });
  assert.is(labelsOf('zone=a'), undefined);
  assert.is(labelsOf({}), undefined);
});

const node = (id: string, labels?: Record<string, string>): NodeRecord => ({
  id,
  service: 'shop',
  host: 'h',
  pid: 1,
  versions: { cart: 1 },
  status: 'running',
  startedAt: 0,
  heartbeatAt: 1000,
  ...(labels ? { labels } : {}),
});
const snapshot = (nodes: NodeRecord[]): UdbSnapshot => ({ nodes, rollouts: [], control: [], retired: [], progress: [], reports: [] });

test('labels - molt status shows a LABELS column when some node has labels', () => {
  const view = statusView('shop', snapshot([node('n1', { zone: 'a', group: 'g1' }), node('n2')]), 1500, 5000);
  assert.equal(view.nodes[0]!.labels, { zone: 'a', group: 'g1' });
  assert.is(view.nodes[1]!.labels, undefined);
  const lines = renderStatus(view, { unicode: false });
  assert.match(lines.find((l) => l.startsWith('NODE'))!, /VERSIONS\s+LABELS\s+HEARTBEAT/);
  assert.match(lines.find((l) => l.startsWith('n1'))!, /cart@1\s+group=g1,zone=a\s+/);
  assert.match(lines.find((l) => l.startsWith('n2'))!, /cart@1\s+-\s+/);
  const plain = renderStatus(statusView('shop', snapshot([node('n1'), node('n2')]), 1500, 5000), { unicode: false });
  assert.not.match(plain.find((l) => l.startsWith('NODE'))!, /LABELS/);
});

test.run();
