/**
 * The upgrade manager's lifecycle machine (actors/upgrade-manager.ts) with
 * stub actors, no NATS: ordering, catch-up, pause, abort and failures,
 * exactly and without waiting.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { createActor, fromCallback, fromPromise } from 'xstate';
import { upgradeLifecycle, type UpgradeLifecycleEvent, type VerifiedUpgrade } from '../../actors/upgrade-manager.ts';

const test = suite('upgrades: lifecycle machine');

interface Harness {
  states: string[];
  sf: { started: number; stopped: number; received: unknown[]; sendBack?: (e: UpgradeLifecycleEvent) => void };
  upgrade: { calls: number; release?: () => void };
  actor: ReturnType<typeof createActor<typeof upgradeLifecycle>>;
}

function start(options: { current?: number; rollout?: VerifiedUpgrade['rollout']; verifyError?: string; upgradeGate?: boolean } = {}): Harness {
  const h = { states: [] as string[], sf: { started: 0, stopped: 0, received: [] as unknown[] }, upgrade: { calls: 0 } } as Harness;
  const verified: VerifiedUpgrade = {
    descriptor: { type: 'counter', from: 1, to: 2, rolloutId: 'r1', schedule: { name: 'test', params: {} } },
    ...(options.rollout ? { rollout: options.rollout } : {}),
  };
  const logic = upgradeLifecycle.provide({
    actors: {
      verify: fromPromise(async () => {
        if (options.verifyError) throw new Error(options.verifyError);
        return verified;
      }),
      load: fromPromise<void, { verified: VerifiedUpgrade }>(async () => {}),
      runSchedule: fromCallback(({ sendBack, receive }) => {
        h.sf.started++;
        h.sf.sendBack = sendBack as (e: UpgradeLifecycleEvent) => void;
        receive((e) => h.sf.received.push(e));
        return () => h.sf.stopped++;
      }),
      upgrade: fromPromise(async () => {
        h.upgrade.calls++;
        if (options.upgradeGate) await new Promise<void>((resolve) => (h.upgrade.release = resolve));
        return { transformed: 3, failed: 0 };
      }),
    },
  });
  h.actor = createActor(logic, { input: { key: 'upgrade.counter.2', current: options.current ?? 1, paused: false, aborted: false, rolloutDone: false } });
  h.actor.subscribe((s) => {
    const v = String(s.value);
    if (h.states[h.states.length - 1] !== v) h.states.push(v);
  });
  h.actor.start();
  return h;
}

const settle = () => new Promise((r) => setTimeout(r, 5));

test('lifecycle - verify, load, schedule, upgrade, in that order', async () => {
  const h = start();
  await settle();
  assert.equal(h.states, ['verifying', 'loading', 'scheduling']);
  h.actor.send({ type: 'schedule.feed', event: { type: 'tick', now: 1 } });
  assert.equal(h.sf.received, [{ type: 'tick', now: 1 }], 'SF events are forwarded');
  h.sf.sendBack!({ type: 'schedule.decided', decision: { decision: 'upgrade' } });
  await settle();
  assert.equal(h.states, ['verifying', 'loading', 'scheduling', 'upgrading', 'upgraded']);
  assert.equal(h.actor.getSnapshot().output, { outcome: 'upgraded', transformed: 3, failed: 0 });
  assert.is(h.sf.stopped, 1, 'the SF is stopped once it decided');
});

test('lifecycle - waits until the node runs the from version', async () => {
  const h = start({ current: 0 });
  await settle();
  assert.equal(h.states, ['verifying', 'loading', 'waiting']);
  assert.is(h.sf.started, 0);
  h.actor.send({ type: 'node.current', version: 1 });
  assert.is(String(h.actor.getSnapshot().value), 'scheduling');
});

test('lifecycle - a rollout already done is caught up without the SF', async () => {
  const h = start({ rollout: { done: true, paused: false, aborted: false } });
  await settle();
  assert.equal(h.states, ['verifying', 'loading', 'upgrading', 'upgraded']);
  assert.is(h.sf.started, 0);
});

test('lifecycle - an SF that decides while paused is held until resume', async () => {
  const h = start();
  await settle();
  h.actor.send({ type: 'control', command: 'pause' });
  assert.equal(h.sf.received, [{ type: 'control', command: 'pause' }], 'control reaches the SF');
  h.sf.sendBack!({ type: 'schedule.decided', decision: { decision: 'upgrade' } });
  assert.is(String(h.actor.getSnapshot().value), 'held');
  assert.is(h.upgrade.calls, 0);
  h.actor.send({ type: 'control', command: 'resume' });
  await settle();
  assert.is(String(h.actor.getSnapshot().value), 'upgraded');
});

test('lifecycle - abort ends scheduling at once; an upgrade in progress completes', async () => {
  const a = start();
  await settle();
  a.actor.send({ type: 'control', command: 'abort', reason: 'bad' });
  assert.equal(a.actor.getSnapshot().output, { outcome: 'aborted', reason: 'bad' });
  assert.is(a.sf.stopped, 1);

  const b = start({ upgradeGate: true });
  await settle();
  b.sf.sendBack!({ type: 'schedule.decided', decision: { decision: 'upgrade' } });
  await settle();
  assert.is(String(b.actor.getSnapshot().value), 'upgrading');
  b.actor.send({ type: 'control', command: 'abort' });
  assert.is(String(b.actor.getSnapshot().value), 'upgrading', 'never cut in half');
  b.upgrade.release!();
  await settle();
  assert.is(String(b.actor.getSnapshot().value), 'upgraded');

  const c = start({ rollout: { done: false, paused: false, aborted: true, reason: 'earlier' } });
  await settle();
  assert.equal(c.actor.getSnapshot().output, { outcome: 'aborted', reason: 'earlier' });
  assert.is(c.sf.started, 0);
});

test('lifecycle - refused verification, SF abandon and SF crash end without upgrading', async () => {
  const r = start({ verifyError: 'not signed' });
  await settle();
  assert.equal(r.actor.getSnapshot().output, { outcome: 'rejected', error: 'not signed' });
  const s = start();
  await settle();
  s.sf.sendBack!({ type: 'schedule.decided', decision: { decision: 'abort', reason: 'health gate' } });
  assert.equal(s.actor.getSnapshot().output, { outcome: 'aborted', reason: 'health gate' });
  const f = start();
  await settle();
  f.sf.sendBack!({ type: 'schedule.failed', error: 'boom' });
  assert.equal(f.actor.getSnapshot().output, { outcome: 'failed', error: 'the scheduling function failed: boom' });
  assert.is(r.upgrade.calls + s.upgrade.calls + f.upgrade.calls, 0);
});

test('lifecycle - a fix (code.changed) starts the SF again, so what it measured of the old code does not count (issue 13)', async () => {
  const h = start();
  await settle();
  assert.is(h.sf.started, 1);
  h.actor.send({ type: 'code.changed' });
  await settle();
  assert.equal([h.sf.started, h.sf.stopped], [2, 1], 'the old SF stopped, a new one started');
  assert.is(String(h.actor.getSnapshot().value), 'scheduling');
});

test('lifecycle - held says who paused the rollout and why (issue 13)', async () => {
  const h = start();
  await settle();
  h.actor.send({ type: 'control', command: 'pause', by: 'node node-a', reason: '1 transform failure(s)' });
  h.sf.sendBack!({ type: 'schedule.decided', decision: { decision: 'upgrade' } });
  await settle();
  assert.is(String(h.actor.getSnapshot().value), 'held');
  assert.is(h.actor.getSnapshot().context.note, 'paused by node node-a: 1 transform failure(s); upgrades on resume');
  assert.equal(h.sf.received.at(-1), { type: 'control', command: 'pause', reason: '1 transform failure(s)', by: 'node node-a' }, 'the SF is told who paused too');
});

test.run();
