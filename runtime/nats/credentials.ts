/**
 * NATS credentials in the forms the NATS tools use, turned into one set of
 * connection options: user and password or a token in the server URL
 * (`nats://user:pass@host:4222`, `nats://token@host:4222`), explicit
 * user/password/token, a `.creds` file (a user JWT and its nkey seed, for
 * servers in operator mode) and an nkey seed file. The environment variables
 * of the `nats` CLI (`NATS_USER`, `NATS_PASSWORD`, `NATS_TOKEN`, `NATS_CREDS`,
 * `NATS_NKEY`) are read only where a caller asks for them
 * ({@link credentialsFromEnv}): the library never reads the environment by
 * itself.
 *
 * Why Molt parses URLs itself: nats.js does not take credentials from a server
 * URL (it sends none, and the server answers `Authorization Violation`).
 *
 * @module
 */
import { readFileSync } from 'node:fs';
import { credsAuthenticator, nkeyAuthenticator, type Authenticator } from '@nats-io/transport-node';
import { ErrorCode, MoltError } from '../errors.ts';

/** Ways to prove who a connection is; at most one kind per connection. */
export interface NatsCredentials {
  /** User name (with `pass`). */
  user?: string;
  /** Password of `user`. */
  pass?: string;
  /** An authentication token. */
  token?: string;
  /** A NATS credentials file (`.creds`: a user JWT and its nkey seed): its path, or its bytes. */
  creds?: string | Uint8Array;
  /** A user nkey seed (`SU…`), as `nsc` or `nk -gen user` write it: the file's path, or its bytes. */
  nkey?: string | Uint8Array;
}

/** What {@link resolveCredentials} gives nats.js's `connect`. */
export interface ConnectAuth {
  servers: string[];
  user?: string;
  pass?: string;
  token?: string;
  authenticator?: Authenticator;
  /** Says which credentials were used, without their secrets (for error messages). */
  describe: string;
}

/** The credentials of the `nats` CLI's environment variables (empty ones ignored). */
export function credentialsFromEnv(env: NodeJS.ProcessEnv = process.env): NatsCredentials {
  const out: NatsCredentials = {};
  if (env.NATS_USER) out.user = env.NATS_USER;
  if (env.NATS_PASSWORD) out.pass = env.NATS_PASSWORD;
  if (env.NATS_TOKEN) out.token = env.NATS_TOKEN;
  if (env.NATS_CREDS) out.creds = env.NATS_CREDS;
  if (env.NATS_NKEY) out.nkey = env.NATS_NKEY;
  return out;
}

/**
 * Splits credentials out of server URLs: `nats://user:pass@host` gives a user
 * and password, `nats://secret@host` a token (the NATS convention). The URLs
 * come back without them (nats.js would not use them, and they must not end up
 * in logs). Every URL that carries credentials must carry the same ones.
 */
export function splitServerUrls(servers: string | string[]): { servers: string[]; user?: string; pass?: string; token?: string } {
  const list = (Array.isArray(servers) ? servers : [servers]).flatMap((s) => s.split(',')).map((s) => s.trim()).filter((s) => s.length > 0);
  let found: { user?: string; pass?: string; token?: string } | undefined;
  let foundIn = '';
  const clean = list.map((raw) => {
    const at = /^([a-z][a-z0-9+.-]*:\/\/)?([^@/]*)@(.*)$/i.exec(raw);
    if (!at) return raw;
    const [, scheme = '', userinfo = '', rest = ''] = at;
    const colon = userinfo.indexOf(':');
    const decode = (s: string) => {
      try {
        return decodeURIComponent(s);
      } catch {
        throw new MoltError(ErrorCode.Environment, `the credentials in NATS URL '${scheme}…@${rest}' are not valid URL encoding: percent-encode special characters (e.g. '@' as %40)`);
      }
    };
    const here = colon < 0 ? { token: decode(userinfo) } : { user: decode(userinfo.slice(0, colon)), pass: decode(userinfo.slice(colon + 1)) };
    if (found && JSON.stringify(found) !== JSON.stringify(here)) {
      throw new MoltError(ErrorCode.Environment, `the NATS URLs ${foundIn} and ${scheme}${rest} carry different credentials: one connection logs in once; give them once (or the same in every URL)`);
    }
    found = here;
    foundIn = `${scheme}${rest}`;
    return `${scheme}${rest}`;
  });
  return { servers: clean, ...(found ?? {}) };
}

function readSecretFile(what: string, flag: string, source: string | Uint8Array): Uint8Array {
  if (typeof source !== 'string') return source;
  try {
    return readFileSync(source);
  } catch (e) {
    throw new MoltError(ErrorCode.Environment, `cannot read the NATS ${what} '${source}' (${flag}): ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`, { cause: e });
  }
}

const decoder = new TextDecoder();

/**
 * Resolves credentials into connection options, checking that they make
 * sense together: those given explicitly, else those in the URLs (which are
 * stripped from the URLs either way). One kind per connection: a creds file,
 * an nkey seed, a user and password, or a token.
 */
export function resolveCredentials(servers: string | string[], given: NatsCredentials): ConnectAuth {
  const urls = splitServerUrls(servers);
  // Credentials given explicitly replace those in the URLs as a whole (a token
  // given must not meet a user from the URL).
  const explicit = [given.user, given.pass, given.token, given.creds, given.nkey].some((v) => v !== undefined);
  const { user, pass, token } = explicit ? given : urls;
  const kinds = [given.creds !== undefined && 'a creds file', given.nkey !== undefined && 'an nkey seed', (user !== undefined || pass !== undefined) && 'a user and password', token !== undefined && 'a token'].filter(
    (k): k is string => typeof k === 'string',
  );
  if (kinds.length > 1) {
    throw new MoltError(ErrorCode.Environment, `NATS credentials given as ${kinds.join(' and ')}: a connection logs in one way; give only one (check the URL and NATS_USER/NATS_PASSWORD/NATS_TOKEN/NATS_CREDS/NATS_NKEY too)`);
  }
  if (pass !== undefined && user === undefined) throw new MoltError(ErrorCode.Environment, 'a NATS password was given without a user: give the user too (--user or NATS_USER)');
  if (given.creds !== undefined) {
    const bytes = readSecretFile('credentials file', '--creds', given.creds);
    const text = decoder.decode(bytes);
    if (!/-----BEGIN NATS USER JWT-----/.test(text) || !/-----BEGIN USER NKEY SEED-----/.test(text)) {
      throw new MoltError(ErrorCode.Environment, `the NATS credentials file${typeof given.creds === 'string' ? ` '${given.creds}'` : ''} is not a .creds file (a user JWT and a user nkey seed, as \`nsc generate creds\` writes it)`);
    }
    return { servers: urls.servers, authenticator: credsAuthenticator(bytes), describe: `the creds file${typeof given.creds === 'string' ? ` ${given.creds}` : ''}` };
  }
  if (given.nkey !== undefined) {
    const seed = decoder.decode(readSecretFile('nkey seed file', '--nkey', given.nkey)).trim();
    if (!/^SU[A-Z2-7]{50,}$/.test(seed)) {
      throw new MoltError(ErrorCode.Environment, `the NATS nkey seed${typeof given.nkey === 'string' ? ` in '${given.nkey}'` : ''} is not a user seed (one line starting with 'SU', as \`nk -gen user\` writes it)`);
    }
    return { servers: urls.servers, authenticator: nkeyAuthenticator(new TextEncoder().encode(seed)), describe: `the nkey seed${typeof given.nkey === 'string' ? ` ${given.nkey}` : ''}` };
  }
  if (user !== undefined) return { servers: urls.servers, user, ...(pass !== undefined ? { pass } : {}), describe: `user '${user}'` };
  if (token !== undefined) return { servers: urls.servers, token, describe: 'a token' };
  return { servers: urls.servers, describe: 'no credentials' };
}
