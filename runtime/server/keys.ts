/**
 * Publisher keys: ed25519 key pairs in the NATS nkeys encoding. A seed (the
 * secret, starting with `S`) signs upgrade descriptors; nodes are configured
 * with the public keys (starting with `U`, or `A` for account keys) they trust.
 *
 * @module
 */
import { readFileSync, writeFileSync, existsSync } from 'node:fs';
import { createHash, createPublicKey, verify as verifyEd25519, type KeyObject } from 'node:crypto';
import { createUser, fromPublic, fromSeed, type KeyPair } from '@nats-io/nkeys';
import { ErrorCode, MoltError } from '../errors.ts';

/** A publisher key pair, as text. */
export interface PublisherKeys {
  /** The secret seed (`SU…`): keep it private; it signs upgrades. */
  seed: string;
  /** The public key (`U…`): give it to nodes with `--trust`. */
  publicKey: string;
}

/** A public nkey that may sign upgrades: user (`U…`) or account (`A…`) keys. */
const publicKeyPattern = /^[UA][A-Z2-7]{55}$/;

/** Generates a new publisher key pair. */
export function generatePublisherKeys(): PublisherKeys {
  const pair = createUser();
  const keys = { seed: new TextDecoder().decode(pair.getSeed()), publicKey: pair.getPublicKey() };
  pair.clear();
  return keys;
}

/** True if `key` is a well-formed public key a node can trust. */
export function isPublicKey(key: string): boolean {
  if (!publicKeyPattern.test(key)) return false;
  try {
    fromPublic(key);
    return true;
  } catch {
    return false;
  }
}

/** Checks a list of trusted keys, throwing a message that names the bad one. */
export function checkTrustedKeys(keys: readonly string[]): string[] {
  const out: string[] = [];
  for (const raw of keys) {
    const key = raw.trim();
    if (key === '') continue;
    if (key.startsWith('S')) {
      throw new MoltError(ErrorCode.InvalidDefinition, `a trusted key starting with 'S' is a secret seed, not a public key: never give seeds to nodes. Print the public key with \`molt keys public <seed file>\``);
    }
    if (!isPublicKey(key)) {
      throw new MoltError(ErrorCode.InvalidDefinition, `'${key.slice(0, 12)}…' is not a publisher public key (56 characters starting with U or A, as printed by \`molt keys generate\`)`);
    }
    out.push(key);
  }
  return [...new Set(out)];
}

/**
 * The fingerprint of a public key: the first 16 hex digits of the SHA-256 of
 * its text. Nodes publish the fingerprints of the keys they trust in their
 * UDB record (`trusts`), where `molt publish` checks its own key against them;
 * 16 characters instead of 56 per key in a record written every heartbeat.
 *
 * @example
 * ```ts
 * keyFingerprint('UCX…') // → '3f9a1c…' (16 hex digits)
 * ```
 */
export function keyFingerprint(publicKey: string): string {
  return createHash('sha256').update(publicKey).digest('hex').slice(0, 16);
}

/** Parses trusted keys from a comma- or whitespace-separated list (e.g. `MOLT_TRUSTED_KEYS`). */
export function parseTrustedKeys(text: string | undefined): string[] {
  if (!text) return [];
  return checkTrustedKeys(text.split(/[\s,]+/));
}

/** A signer made from a seed. */
export interface Signer {
  readonly publicKey: string;
  sign(data: Uint8Array): Uint8Array;
}

/** Makes a signer from a seed (`SU…` or `SA…`). */
export function signerFromSeed(seed: string): Signer {
  let pair: KeyPair;
  try {
    pair = fromSeed(new TextEncoder().encode(seed.trim()));
  } catch (e) {
    throw new MoltError(ErrorCode.InvalidDefinition, `not a publisher seed: ${(e as Error).message}. Generate one with \`molt keys generate\``, { cause: e });
  }
  const publicKey = pair.getPublicKey();
  if (!isPublicKey(publicKey)) {
    throw new MoltError(ErrorCode.InvalidDefinition, `the seed is a '${publicKey[0]}' key; publisher keys are user (U) or account (A) keys. Generate one with \`molt keys generate\``);
  }
  return { publicKey, sign: (data) => pair.sign(data) };
}

/** Reads a seed file (as written by `molt keys generate`) and returns a signer. */
export function loadSeedFile(path: string): Signer {
  if (!existsSync(path)) {
    throw new MoltError(ErrorCode.InvalidDefinition, `no seed file at ${path}: create one with \`molt keys generate --out ${path}\``);
  }
  const text = readFileSync(path, 'utf8');
  // A seed file may hold comments; the seed is the line starting with S.
  const line = text.split(/\r?\n/).map((l) => l.trim()).find((l) => /^S[UA][A-Z2-7]{56}$/.test(l));
  if (!line) throw new MoltError(ErrorCode.InvalidDefinition, `${path} holds no publisher seed (a line of 58 characters starting with SU or SA)`);
  return signerFromSeed(line);
}

/** Writes a seed file readable only by its owner. */
export function writeSeedFile(path: string, keys: PublisherKeys): void {
  const text = `# Molt publisher seed: keep it secret. Public key (give it to nodes with --trust):\n# ${keys.publicKey}\n${keys.seed}\n`;
  writeFileSync(path, text, { mode: 0o600, flag: 'wx' });
}

/**
 * Trusted keys as node:crypto key objects. Every node verifies every
 * descriptor it reads; node's native ed25519 takes ≈ 0.1 ms where the nkeys
 * library's pure-JS tweetnacl takes 5–10 ms, on the path from publish to the
 * future SO being installed.
 */
const keyObjects = new Map<string, KeyObject>();
const base32Alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';

function keyObjectOf(publicKey: string): KeyObject {
  let key = keyObjects.get(publicKey);
  if (!key) {
    fromPublic(publicKey); // throws unless it is a well-formed public nkey (prefix and checksum)
    // An nkey is base32 of: prefix byte, the 32-byte ed25519 key, CRC-16.
    const bytes: number[] = [];
    let bits = 0;
    let acc = 0;
    for (const c of publicKey) {
      acc = (acc << 5) | base32Alphabet.indexOf(c);
      bits += 5;
      if (bits >= 8) {
        bits -= 8;
        bytes.push((acc >>> bits) & 0xff);
      }
    }
    const raw = Buffer.from(bytes.slice(1, 33));
    key = createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: raw.toString('base64url') }, format: 'jwk' });
    if (keyObjects.size >= 1024) keyObjects.clear();
    keyObjects.set(publicKey, key);
  }
  return key;
}

/** True if `signature` is `publicKey`'s signature of `data`. Never throws. */
export function verifySignature(publicKey: string, data: Uint8Array, signature: Uint8Array): boolean {
  try {
    return verifyEd25519(null, data, keyObjectOf(publicKey), signature);
  } catch {
    return false;
  }
}
