/**
 * The upgrade manager's verification (runtime/manager/verify.ts), with a
 * stand-in store: the replay check's read of a descriptor key's earlier
 * revisions runs beside the bundle download, and the bundle is imported only
 * once both the digest and the replay check passed — a replayed descriptor's
 * bundle may be fetched, never run.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createVerifier } from '../../runtime/manager/verify.ts';
import type { ManagerContext } from '../../runtime/manager/context.ts';
import { DESCRIPTOR_FORMAT, descriptorKey, signDescriptor, type UpgradeDescriptor } from '../../runtime/server/descriptor.ts';
import { sha256Hex } from '../../runtime/server/bundle.ts';
import type { StoredDescriptor, UpgradeStore } from '../../runtime/server/store.ts';
import { ErrorCode, isMoltError } from '../../runtime/errors.ts';
import { generatePublisherKeys, signerFromSeed } from '../../runtime/index.ts';

const KEY = descriptorKey('feed', 2);
const keys = generatePublisherKeys();
const signer = signerFromSeed(keys.seed);
const encode = (s: string) => new TextEncoder().encode(s);

/** A bundle that, once imported, says so through a global (any import counts: it runs top-level code). */
function probeBundle(tag: string): Uint8Array {
  return encode(`globalThis.__moltVerifyProbe = [...(globalThis.__moltVerifyProbe ?? []), ${JSON.stringify(tag)}];\nexport const schedules = {};\n`);
}
const imported = (): string[] => (globalThis as { __moltVerifyProbe?: string[] }).__moltVerifyProbe ?? [];

function signed(bundle: Uint8Array, createdAt: number, rolloutId: string): Uint8Array {
  const d: UpgradeDescriptor = {
    format: DESCRIPTOR_FORMAT,
    service: 'dissemination',
    type: 'feed',
    from: 1,
    to: 2,
    bundle: { digest: sha256Hex(bundle), size: bundle.length },
    schedule: { name: 'immediate', params: {} },
    publisher: keys.publicKey,
    createdAt,
    rolloutId,
  };
  return encode(JSON.stringify(signDescriptor(d, signer)));
}

interface Gate<T> {
  promise: Promise<T>;
  open(value: T): void;
}
function gate<T>(): Gate<T> {
  let open!: (value: T) => void;
  const promise = new Promise<T>((resolve) => (open = resolve));
  return { promise, open };
}

/** A manager context around a stand-in store whose earlier-revisions read waits for `earlier` to open. */
function contextWith(descriptor: StoredDescriptor, bundle: Uint8Array, earlier: Gate<StoredDescriptor[]>, events: string[]): ManagerContext {
  const store = {
    earlierRevisions: async () => {
      events.push('earlier-read');
      const out = await earlier.promise;
      events.push('earlier-done');
      return out;
    },
    getBundle: async () => {
      events.push('download');
      return bundle;
    },
  } as unknown as UpgradeStore;
  return {
    node: { id: 'n1', service: 'dissemination' },
    udb: { rollout: async () => undefined, control: async () => undefined },
    logger: { debug() {}, info() {}, warn() {}, error() {} },
    config: { trustedKeys: [keys.publicKey], maxBundleBytes: 1 << 20, findSchedule: () => ({}) },
    store,
    descriptors: new Map([[descriptor.key, descriptor]]),
    rollouts: new Map(),
    controls: new Map(),
    types: () => ({ feed: { known: [1], current: 1 } }),
  } as unknown as ManagerContext;
}

async function settle(): Promise<void> {
  for (let i = 0; i < 20; i++) await new Promise((r) => setImmediate(r));
}

test('verify - the bundle downloads while the earlier revisions are read, and is not imported before that read is done', async () => {
  const bundle = probeBundle('beside');
  const events: string[] = [];
  const earlier = gate<StoredDescriptor[]>();
  const verifier = createVerifier(contextWith({ key: KEY, revision: 1, value: signed(bundle, 1_000, 'r-beside') }, bundle, earlier, events));
  const verdict = verifier.verify(KEY).then(
    () => 'verified',
    (e: unknown) => (isMoltError(e, ErrorCode.UpgradeRejected) ? String(e.data.reason) : `error: ${String(e)}`),
  );
  await settle();
  assert.ok(events.includes('download'), `the download started before the replay read was answered (${events.join(', ')})`);
  assert.not.ok(imported().includes('beside'), 'and nothing was imported');
  earlier.open([]);
  // The bundle exports no feed@2: refused after the import, which is the point here.
  assert.is(await verdict, 'bundle-invalid');
  assert.ok(imported().includes('beside'), 'imported once the replay check passed');
});

test('verify - a replayed descriptor is refused and its bundle, though downloaded, is never imported', async () => {
  const bundle = probeBundle('replayed');
  const events: string[] = [];
  const earlier = gate<StoredDescriptor[]>();
  // Revision 5 holds a descriptor published at t=1000; the bucket's history has a newer one (t=2000) at revision 3.
  const newer = signed(probeBundle('newer'), 2_000, 'r-newer');
  const verifier = createVerifier(contextWith({ key: KEY, revision: 5, value: signed(bundle, 1_000, 'r-old') }, bundle, earlier, events));
  const verdict = verifier.verify(KEY).then(
    () => 'verified',
    (e: unknown) => (isMoltError(e, ErrorCode.UpgradeRejected) ? String(e.data.reason) : `error: ${String(e)}`),
  );
  await settle();
  assert.ok(events.includes('download'));
  earlier.open([{ key: KEY, revision: 3, value: newer }]);
  assert.is(await verdict, 'replayed');
  await settle();
  assert.not.ok(imported().includes('replayed'), 'the replayed bundle was never imported');
  assert.is(verifier.rejectionReason(KEY), 'replayed');
});

test.run();
