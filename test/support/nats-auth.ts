/**
 * Test support: nats-servers that require each kind of NATS credentials, and
 * the credentials to log in with — user/password, token, nkey, and `.creds`
 * files (a user JWT signed by an account signed by an operator: the server
 * runs in operator mode with the accounts preloaded in memory).
 *
 * The JWTs are minted here with the nkeys library (the server checks their
 * signatures and claims; `nsc` would write the same shapes).
 */
import { createHash } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createAccount, createOperator, createUser, type KeyPair } from '@nats-io/nkeys';

const b64url = (bytes: Uint8Array | string) => Buffer.from(bytes).toString('base64url');
const decoder = new TextDecoder();

/** Base32 (RFC 4648, no padding) of the claims' SHA-512/256, as NATS JWT ids are. */
function jwtId(claims: object): string {
  const hash = createHash('sha512-256').update(JSON.stringify(claims)).digest();
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
  let bits = 0;
  let value = 0;
  let out = '';
  for (const byte of hash) {
    value = (value << 8) | byte;
    bits += 8;
    while (bits >= 5) {
      out += alphabet[(value >>> (bits - 5)) & 31];
      bits -= 5;
    }
  }
  if (bits > 0) out += alphabet[(value << (5 - bits)) & 31];
  return out;
}

function signJwt(issuer: KeyPair, subject: string, name: string, nats: object): string {
  const body = { iat: Math.floor(Date.now() / 1000), iss: issuer.getPublicKey(), name, sub: subject, nats: { ...nats, version: 2 } };
  const claims = { jti: jwtId(body), ...body };
  const signing = `${b64url(JSON.stringify({ typ: 'JWT', alg: 'ed25519-nkey' }))}.${b64url(JSON.stringify(claims))}`;
  return `${signing}.${b64url(issuer.sign(new TextEncoder().encode(signing)))}`;
}

/** A server configuration in operator mode, and a `.creds` file for one user of its account (JetStream enabled). */
export function operatorModeAuth(dir = mkdtempSync(join(tmpdir(), 'molt-creds-'))): { config: string; credsFile: string; credsText: string } {
  const operator = createOperator();
  const account = createAccount();
  const system = createAccount();
  const user = createUser();
  const unlimited = { subs: -1, data: -1, payload: -1, imports: -1, exports: -1, wildcards: true, conn: -1, leaf: -1 };
  const operatorJwt = signJwt(operator, operator.getPublicKey(), 'molt-test-operator', { type: 'operator', system_account: system.getPublicKey() });
  const accountJwt = signJwt(operator, account.getPublicKey(), 'molt', {
    type: 'account',
    limits: { ...unlimited, mem_storage: -1, disk_storage: -1, streams: -1, consumer: -1 },
  });
  const systemJwt = signJwt(operator, system.getPublicKey(), 'SYS', { type: 'account', limits: unlimited });
  const userJwt = signJwt(account, user.getPublicKey(), 'molt-user', { type: 'user', pub: {}, sub: {}, subs: -1, data: -1, payload: -1 });
  const credsText = [
    '-----BEGIN NATS USER JWT-----',
    userJwt,
    '------END NATS USER JWT------',
    '',
    '************************* IMPORTANT *************************',
    'NKEY Seed printed below can be used to sign and prove identity.',
    '',
    '-----BEGIN USER NKEY SEED-----',
    decoder.decode(user.getSeed()),
    '------END USER NKEY SEED------',
    '',
  ].join('\n');
  const credsFile = join(dir, 'user.creds');
  writeFileSync(credsFile, credsText, { mode: 0o600 });
  const config = [
    `operator: ${operatorJwt}`,
    `system_account: ${system.getPublicKey()}`,
    'resolver: MEMORY',
    'resolver_preload: {',
    `  ${account.getPublicKey()}: ${accountJwt}`,
    `  ${system.getPublicKey()}: ${systemJwt}`,
    '}',
    '',
  ].join('\n');
  return { config, credsFile, credsText };
}

/** A server configuration with one nkey user, and the user's seed file. */
export function nkeyAuth(dir = mkdtempSync(join(tmpdir(), 'molt-nkey-'))): { config: string; seedFile: string } {
  const user = createUser();
  const seedFile = join(dir, 'user.nk');
  writeFileSync(seedFile, `${decoder.decode(user.getSeed())}\n`, { mode: 0o600 });
  return { config: `authorization { users = [ { nkey: ${user.getPublicKey()} } ] }\n`, seedFile };
}

/** A server configuration with one user and password. */
export function passwordAuth(user: string, password: string): string {
  return `authorization { users = [ { user: "${user}", password: "${password}" } ] }\n`;
}

/** A server configuration with one token. */
export function tokenAuth(token: string): string {
  return `authorization { token: "${token}" }\n`;
}
