/**
 * The package's public doors: every name the docs use is exported by the door
 * the docs name (imported by its package specifier, as a user would), so a
 * missing re-export fails here rather than in a user's project; the root door
 * stays small, and internals stay behind molt/internal.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';

const documented: Record<string, string[]> = {
  molt: [
    'P', 'ask', 'tell', 'defineVersion', 'disallow', 'isDisallow', 'ActorVersion', 'defineActorType', 'defineService',
    'checkSchema', 'ErrorCode', 'MoltError', 'isMoltError', 'isRetryable', 'createClient', 'createSuperjsonCodec', 'connectNats', 'natsFromEnv',
  ],
  'molt/node': [
    'createNode', 'systemClock', 'SimulatedClock', 'createJsonLogger', 'silentLogger', 'createIdGenerator', 'startEmbeddedNats', 'findNatsServer',
    'connectNats', 'natsFromEnv', 'setupServiceBuckets', 'permissionsConfig',
  ],
  // upgrade infrastructure (docs/publishing.md, docs/upgrade-database.md) and the operator functions the CLI runs
  'molt/upgrades': [
    'startUpgradeManager', 'publishUpgrade', 'generatePublisherKeys', 'signerFromSeed', 'loadSeedFile', 'parseTrustedKeys', 'keyFingerprint',
    'Udb', 'openUdb', 'controlRollout', 'retireVersion', 'rollbackRollout', 'statusView',
  ],
  // scheduling functions (docs/scheduling.md)
  'molt/schedules': ['builtInSchedules', 'resolveSchedule', 'defineSchedule', 'fromSchedulePolicy', 'parseWith', 'minutesOfDay'],
  'molt/testing': ['checkIdentity', 'checkIdentityPath', 'SimulatedActor', 'DISALLOWED'],
};

test('public api - every documented runtime export is reachable from its door', async () => {
  for (const [door, names] of Object.entries(documented)) {
    const mod = (await import(door)) as Record<string, unknown>;
    const missing = names.filter((name) => mod[name] === undefined);
    assert.equal(missing, [], door);
  }
});

test('public api - the root door is defining, calling and errors only', async () => {
  const molt = (await import('molt')) as Record<string, unknown>;
  for (const name of ['createNode', 'startEmbeddedNats', 'startUpgradeManager', 'publishUpgrade', 'Udb', 'defineSchedule', 'minutesOfDay', 'SimulatedActor']) {
    assert.is(molt[name], undefined, `${name} belongs behind its own door, not the package root`);
  }
});

test('public api - internals stay behind molt/internal', async () => {
  const internal = (await import('molt/internal')) as Record<string, unknown>;
  for (const door of Object.keys(documented)) {
    const mod = (await import(door)) as Record<string, unknown>;
    for (const name of ['ActorHost', 'Placement', 'runTurn', 'encodeKey']) assert.is(mod[name], undefined, `${name} must not be public (${door})`);
  }
  for (const name of ['ActorHost', 'Placement', 'runTurn', 'encodeKey']) assert.ok(internal[name] !== undefined, `${name} is available to staff`);
});

test.run();
