/**
 * A rollout's id comes from the publisher's id source, not from hidden
 * randomness: given one, a publish is reproducible (and a republish of the
 * same version with the default source still gets an id of its own).
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { publishUpgrade } from '../../runtime/server/publish.ts';
import { startEmbeddedNats, type EmbeddedNats } from '../support/nats.ts';
import { testPublisher } from '../support/upgrades.ts';

const test = suite<{ nats: EmbeddedNats }>('publish: rollout ids');

test.before(async (ctx) => {
  ctx.nats = await startEmbeddedNats();
});

test.after(async (ctx) => {
  await ctx.nats?.stop();
});

test('rollout ids - type, version and the id source\'s unique part; random by default', async ({ nats }) => {
  const publisher = testPublisher();
  const publish = (ids?: { next(): string }) =>
    publishUpgrade({ nats: { servers: nats.url }, module: 'test/fixtures/counter-v2.ts', signer: publisher.signer, schedule: { name: 'immediate', params: {} }, dryRun: true, typecheck: false, force: true, ...(ids ? { ids } : {}) });
  const fixed = await publish({ next: () => 'release-7' });
  assert.equal(fixed.upgrades.map((u) => u.rolloutId), ['counter-v2-release-7']);
  const [a, b] = [await publish(), await publish()];
  assert.match(a.upgrades[0]!.rolloutId, /^counter-v2-[0-9a-f]{6}$/);
  assert.is.not(a.upgrades[0]!.rolloutId, b.upgrades[0]!.rolloutId, 'two publishes, two ids');
});

test.run();
