/**
 * The package's public door: every name the docs use is exported from the
 * package root (imported by its own name, as a user would), so a missing
 * re-export fails here rather than in a user's project.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';

const documented = [
  'P', 'ask', 'tell', 'defineVersion', 'disallow', 'isDisallow', 'ActorVersion', 'defineActorType', 'defineService',
  'checkSchema', 'ErrorCode', 'MoltError', 'isMoltError', 'isRetryable', 'createNode', 'createClient',
  'createSuperjsonCodec', 'systemClock', 'SimulatedClock', 'createJsonLogger', 'silentLogger', 'createIdGenerator',
  'startEmbeddedNats', 'findNatsServer', 'connectNats', 'natsFromEnv',
  // upgrade infrastructure (docs/publishing.md, docs/upgrade-database.md)
  'startUpgradeManager', 'publishUpgrade', 'generatePublisherKeys', 'signerFromSeed', 'loadSeedFile', 'parseTrustedKeys', 'keyFingerprint',
  'Udb', 'openUdb',
  // scheduling functions (docs/scheduling.md)
  'builtInSchedules', 'resolveSchedule', 'defineSchedule', 'fromSchedulePolicy',
];

test('public api - every documented runtime export is reachable from the package root', async () => {
  const molt = (await import('molt')) as Record<string, unknown>;
  const missing = documented.filter((name) => molt[name] === undefined);
  assert.equal(missing, []);
});

test('public api - internals stay behind molt/internal', async () => {
  const molt = (await import('molt')) as Record<string, unknown>;
  const internal = (await import('molt/internal')) as Record<string, unknown>;
  for (const name of ['ActorHost', 'Placement', 'runTurn', 'encodeKey']) {
    assert.is(molt[name], undefined, `${name} must not be public`);
    assert.ok(internal[name] !== undefined, `${name} is available to staff`);
  }
});

test.run();
