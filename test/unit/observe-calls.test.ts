/**
 * The call counters (runtime/observe/calls.ts) that the node record, the
 * health gate and the metrics all read: how routes are named, what counts as
 * failed, and the traffic a node publishes per caller version.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { CallCounts, MAX_VERSIONS_COUNTED, OTHER_VERSIONS, routeLabel } from '../../runtime/observe/calls.ts';
import { nativeRoute, type Route } from '../../runtime/upgrade/layer.ts';

const so = { handlers: {} } as never;
const past: Route = { kind: 'past', so, target: 3, steps: 2 };
const compatible: Route = { kind: 'compatible', target: 2, steps: 1 };
const future: Route = { kind: 'future', so, target: 1, steps: 1 };
const future2: Route = { kind: 'future', so, target: 2, steps: 2 };

test('calls - routes are named native, past (chained or compatible), future, future2, none', () => {
  assert.equal([nativeRoute, past, compatible, future, future2, undefined].map(routeLabel), ['native', 'past', 'past', 'future', 'future2', 'none']);
});

test('calls - totals: disallowed apart from failed; a call shed at the node door is overloaded, not failed', () => {
  const c = new CallCounts();
  c.ok(2, nativeRoute);
  c.ok(1, past);
  c.error(1, past, 'Disallowed');
  c.error(3, future, 'ActorFailed');
  c.error(2, nativeRoute, 'Overloaded'); // the actor's mailbox was full: a failure of the call
  c.shed(2); // the node had too many calls admitted
  c.error(9, undefined, 'VersionUnsupported');
  assert.equal({ calls: c.calls, failed: c.failed, disallowed: c.disallowed, overloaded: c.overloaded }, { calls: 7, failed: 3, disallowed: 1, overloaded: 2 });
  assert.equal(
    [...c.series()].map((s) => `${s.version} ${s.route} ${s.outcome} ${s.count}`).sort(),
    ['1 past disallowed 1', '1 past ok 1', '2 native Overloaded 1', '2 native ok 1', '2 none Overloaded 1', '3 future ActorFailed 1', '9 none VersionUnsupported 1'],
  );
  assert.equal(c.traffic(), {
    1: { calls: 2, simulated: 2, disallowed: 1 },
    2: { calls: 3, simulated: 0, disallowed: 0 },
    3: { calls: 1, simulated: 1, disallowed: 0 },
    9: { calls: 1, simulated: 0, disallowed: 0 },
  });
});

test('calls - transform failures by step', () => {
  const c = new CallCounts();
  c.transformFailed(1, 2);
  c.transformFailed(1, 2);
  c.transformFailed(2, 3);
  assert.is(c.transformFailures, 3);
  assert.equal(c.transformSteps(), [{ from: 1, to: 2, count: 2 }, { from: 2, to: 3, count: 1 }]);
});

test('calls - a caller sending ever new versions cannot grow the counters without bound', () => {
  const c = new CallCounts();
  for (let v = 1; v <= 10_000; v++) c.error(v, undefined, 'VersionUnsupported');
  const series = [...c.series()];
  assert.is(series.length, MAX_VERSIONS_COUNTED + 1);
  assert.equal(series.find((s) => s.version === OTHER_VERSIONS), { version: OTHER_VERSIONS, route: 'none', outcome: 'VersionUnsupported', count: 10_000 - MAX_VERSIONS_COUNTED });
  assert.is(c.calls, 10_000);
});

test.run();
