/**
 * Upgrade descriptors: what a node learns about a published upgrade before it
 * trusts any code. One descriptor per actor type and target version, stored in
 * the KV bucket `molt_<service>_upgrades` under `upgrade.<type>.<to>`, as
 *
 * ```json
 * { "descriptor": { …UpgradeDescriptor… }, "signature": "<base64url ed25519 signature>" }
 * ```
 *
 * The signature is detached: it covers the bytes
 * `molt-upgrade-descriptor/v1\n` + canonical JSON of `descriptor` (keys sorted
 * at every level, no whitespace), so any re-serialisation of the same values
 * verifies, and a signature can never be replayed as a signature of anything else.
 *
 * @module
 */
import { isMatching, P } from 'ts-pattern';
import { ErrorCode, MoltError } from '../errors.ts';
import { verifySignature, type Signer } from './keys.ts';

/** The format tag of descriptors this runtime reads and writes. */
export const DESCRIPTOR_FORMAT = 'molt.upgrade/v1';

const SIGNING_CONTEXT = 'molt-upgrade-descriptor/v1\n';

/** A published upgrade of one actor type from `from` to `to = from + 1`. */
export interface UpgradeDescriptor {
  format: typeof DESCRIPTOR_FORMAT;
  service: string;
  type: string;
  from: number;
  to: number;
  /** The code bundle: an ES module in `molt_<service>_bundles` named `sha256-<digest>`. */
  bundle: { digest: string; size: number };
  /** The scheduling function: a built-in name or a custom SF the bundle exports, and its parameters. */
  schedule: { name: string; params: Record<string, unknown> };
  /** Public key of the publisher that signed this descriptor. */
  publisher: string;
  /** When it was published (ms since epoch, publisher's clock). */
  createdAt: number;
  /** The rollout this upgrade starts (`molt pause <rolloutId>` …). */
  rolloutId: string;
  /** Set on a fix (`molt publish --fix`): the digest of the bundle this one replaces. */
  replaces?: string;
  /** Set when it was published with `--no-verify`: its SOs and TF were not checked (`molt verify`). */
  unverified?: true;
}

/** The stored form: a descriptor and its detached signature. */
export interface SignedDescriptor {
  descriptor: UpgradeDescriptor;
  signature: string;
}

const descriptorPattern = {
  format: DESCRIPTOR_FORMAT,
  service: P.string,
  type: P.string,
  from: P.number,
  to: P.number,
  bundle: { digest: P.string.regex(/^[0-9a-f]{64}$/), size: P.number },
  schedule: { name: P.string, params: P.when((v): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v)) },
  publisher: P.string,
  createdAt: P.number,
  rolloutId: P.string.regex(/^[A-Za-z0-9_-]{1,128}$/),
} as const;

/** KV key of the descriptor of `type`'s upgrade to version `to`. */
export function descriptorKey(type: string, to: number): string {
  return `upgrade.${type}.${to}`;
}

/** Parses a descriptor key; undefined if `key` is not one. */
export function parseDescriptorKey(key: string): { type: string; to: number } | undefined {
  const m = /^upgrade\.([a-z][a-z0-9-]{0,62})\.([1-9][0-9]{0,8})$/.exec(key);
  return m ? { type: m[1]!, to: Number(m[2]) } : undefined;
}

/** Object name of a bundle in the bundles store. */
export function bundleObjectName(digest: string): string {
  return `sha256-${digest}`;
}

/** JSON with keys sorted at every level and no whitespace; refuses values JSON cannot carry exactly. */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value === 'boolean' || typeof value === 'string') return JSON.stringify(value);
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) throw new MoltError(ErrorCode.InvalidDefinition, `a descriptor cannot hold the number ${value}`);
    return JSON.stringify(value);
  }
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (typeof value === 'object') {
    const entries = Object.keys(value as object)
      .filter((k) => (value as Record<string, unknown>)[k] !== undefined)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${canonicalJson((value as Record<string, unknown>)[k])}`);
    return `{${entries.join(',')}}`;
  }
  throw new MoltError(ErrorCode.InvalidDefinition, `a descriptor cannot hold a ${typeof value}`);
}

function signingBytes(descriptor: UpgradeDescriptor): Uint8Array {
  return new TextEncoder().encode(SIGNING_CONTEXT + canonicalJson(descriptor));
}

/** Signs a descriptor; the signer's public key must be the descriptor's `publisher`. */
export function signDescriptor(descriptor: UpgradeDescriptor, signer: Signer): SignedDescriptor {
  if (descriptor.publisher !== signer.publicKey) {
    throw new MoltError(ErrorCode.Internal, 'descriptor.publisher must be the public key of the signing seed');
  }
  const signature = Buffer.from(signer.sign(signingBytes(descriptor))).toString('base64url');
  return { descriptor, signature };
}

/** Why a descriptor was refused (the `reason` of an `UpgradeRejected` error). */
export type RejectionReason =
  | 'malformed'
  | 'unsigned'
  | 'untrusted-key'
  | 'bad-signature'
  | 'wrong-place'
  | 'digest-mismatch'
  | 'bundle-missing'
  | 'bundle-too-large'
  | 'bundle-invalid'
  | 'replayed'
  | 'chain'
  | 'schedule-unknown';

/** The error a node raises (and reports in the UDB) for an upgrade it refuses. */
export function rejected(reason: RejectionReason, message: string, data: Record<string, unknown> = {}): MoltError {
  return new MoltError(ErrorCode.UpgradeRejected, message, { retryable: false, data: { reason, ...data } });
}

/** Reads a stored descriptor without checking its signature (for tools that only display). */
export function parseSignedDescriptor(key: string, bytes: Uint8Array): SignedDescriptor {
  let value: unknown;
  try {
    value = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes));
  } catch (e) {
    throw rejected('malformed', `${key} is not JSON: ${(e as Error).message}`, { key });
  }
  if (typeof value !== 'object' || value === null) throw rejected('malformed', `${key} is not a JSON object`, { key });
  const { descriptor, signature } = value as Record<string, unknown>;
  if (!isMatching(descriptorPattern, descriptor)) {
    throw rejected('malformed', `${key} does not hold a ${DESCRIPTOR_FORMAT} descriptor (format, service, type, from, to, bundle, schedule, publisher, createdAt, rolloutId)`, { key });
  }
  const d = descriptor as UpgradeDescriptor;
  if (!Number.isInteger(d.from) || !Number.isInteger(d.to) || d.from < 1 || d.to !== d.from + 1) {
    throw rejected('malformed', `${key}: an upgrade goes from version i to i+1, not ${d.from} → ${d.to}`, { key });
  }
  return { descriptor: d, signature: typeof signature === 'string' ? signature : '' };
}

/**
 * Verifies a stored descriptor: well-formed, stored under the key and service
 * it names, signed by one of `trustedKeys`. Returns the descriptor; throws
 * `UpgradeRejected` (with `data.reason`) otherwise. The bundle digest is
 * checked later, against the downloaded bytes.
 */
export function verifyDescriptor(key: string, bytes: Uint8Array, options: { service: string; trustedKeys: readonly string[] }): UpgradeDescriptor {
  const { descriptor, signature } = parseSignedDescriptor(key, bytes);
  const where = `${descriptor.type}@${descriptor.to}`;
  if (key !== descriptorKey(descriptor.type, descriptor.to) || descriptor.service !== options.service) {
    throw rejected('wrong-place', `${key} holds a descriptor of ${descriptor.service}/${where}: a descriptor is valid only under its own key and service`, { key });
  }
  if (signature === '') {
    throw rejected('unsigned', `upgrade ${where} (rollout ${descriptor.rolloutId}) is not signed: publish it with \`molt publish --key <seed file>\``, { key, rolloutId: descriptor.rolloutId });
  }
  if (options.trustedKeys.length === 0) {
    throw rejected('untrusted-key', `upgrade ${where} is signed by ${descriptor.publisher}, but this node trusts no publisher keys: start it with --trust <public key> (or MOLT_TRUSTED_KEYS)`, {
      key,
      rolloutId: descriptor.rolloutId,
      publisher: descriptor.publisher,
    });
  }
  if (!options.trustedKeys.includes(descriptor.publisher)) {
    throw rejected('untrusted-key', `upgrade ${where} is signed by ${descriptor.publisher}, which this node does not trust (it trusts ${options.trustedKeys.join(', ')})`, {
      key,
      rolloutId: descriptor.rolloutId,
      publisher: descriptor.publisher,
    });
  }
  let sig: Uint8Array;
  try {
    sig = Buffer.from(signature, 'base64url');
  } catch {
    sig = new Uint8Array();
  }
  if (!verifySignature(descriptor.publisher, signingBytes(descriptor), sig)) {
    throw rejected('bad-signature', `upgrade ${where}: the signature does not match the descriptor (altered after signing, or signed with another key)`, {
      key,
      rolloutId: descriptor.rolloutId,
      publisher: descriptor.publisher,
    });
  }
  return descriptor;
}
