/**
 * Actor types (a linear chain of versions) and services (a set of types run
 * by the same nodes). Validated when declared, so a bad chain fails at import
 * time with a message that says what to fix.
 *
 * @module
 */
import { ErrorCode, MoltError } from '../errors.ts';
import type { AnyActorVersion } from './version.ts';

/** Options of an actor type. */
export interface ActorTypeOptions {
  /**
   * Keep state in memory only, never in KV: faster, and lost when the actor
   * passivates or its node stops. For caches and other rebuildable state only.
   */
  volatile?: boolean;
  /** Drop an idle actor from memory after this many ms (default: the node's setting). */
  passivateAfterMs?: number;
  /**
   * Retire-by-evidence policy: an old version of this type may be retired once
   * no node has seen a caller of it for this many ms. Nodes publish it with
   * their caller evidence; `molt retire --when-unused` uses it when no window is
   * given, and `molt status` lists the versions ready by it (docs/operations.md).
   */
  retireWhenUnusedMs?: number;
}

/** An actor type: a name and its version chain 1, 2, 3, … */
export interface ActorType<TName extends string = string, TVersions extends readonly AnyActorVersion[] = readonly AnyActorVersion[]> {
  readonly name: TName;
  readonly versions: TVersions;
  readonly options: ActorTypeOptions;
}

const typeNamePattern = /^[a-z][a-z0-9-]{0,62}$/;
const serviceNamePattern = /^[a-z][a-z0-9-]{0,62}$/;

function invalid(message: string, data: Record<string, unknown> = {}): MoltError {
  return new MoltError(ErrorCode.InvalidDefinition, message, { data });
}

/** Checks that `versions` form the chain 1..n of one type; throws InvalidDefinition otherwise. */
export function checkVersionChain(name: string, versions: readonly AnyActorVersion[]): void {
  if (versions.length === 0) throw invalid(`actor type '${name}' has no versions: pass at least version 1`);
  versions.forEach((v, i) => {
    if (v.type !== name) {
      throw invalid(`actor type '${name}' lists a version of type '${v.type}' (version ${v.version}); every version must have type '${name}'`);
    }
    if (!Number.isInteger(v.version) || v.version < 1) {
      throw invalid(`actor type '${name}': version numbers are integers from 1, got ${String(v.version)}`);
    }
    const before = versions[i - 1];
    if (before && v.version !== before.version + 1) {
      throw invalid(`actor type '${name}': versions must be consecutive, but ${v.version} follows ${before.version}`);
    }
    if (before && v.previous && (v.previous.type !== name || v.previous.version !== before.version)) {
      throw invalid(`actor type '${name}': version ${v.version} declares .from(${v.previous.type}@${v.previous.version}) but follows version ${before.version}`);
    }
    for (const message of Object.keys(v.messages)) {
      if (message.startsWith('$') || message.includes('.')) {
        throw invalid(`actor type '${name}' version ${v.version}: message name '${message}' may not start with '$' or contain '.'`);
      }
      const request = v.messages[message]?.request;
      if (request && typeof request === 'object' && !Array.isArray(request) && Object.getOwnPropertySymbols(request).length === 0 && 'type' in request) {
        throw invalid(`actor type '${name}' version ${v.version}: message '${message}' has a payload field named 'type', which the machine event uses for the message name; rename the field`);
      }
    }
    if (v.upgrade?.compatible) {
      const prev = before ?? v.previous;
      for (const message of Object.keys(prev?.messages ?? {})) {
        if (!(message in v.messages)) {
          throw invalid(`actor type '${name}' version ${v.version} is declared compatible but has no message '${message}' of version ${prev?.version}`);
        }
      }
    }
  });
}

/**
 * Declares an actor type from its versions, oldest first.
 * @example `export const counter = defineActorType('counter', [counterV1, counterV2]);`
 */
export function defineActorType<const TName extends string, const TVersions extends readonly AnyActorVersion[]>(
  name: TName,
  versions: TVersions,
  options: ActorTypeOptions = {},
): ActorType<TName, TVersions> {
  if (!typeNamePattern.test(name)) {
    throw invalid(`actor type name '${name}' is not allowed: use lower-case letters, digits and '-', starting with a letter (at most 63)`);
  }
  checkVersionChain(name, versions);
  if (options.passivateAfterMs !== undefined && !(options.passivateAfterMs > 0)) {
    throw invalid(`actor type '${name}': passivateAfterMs must be a positive number of milliseconds`);
  }
  if (options.retireWhenUnusedMs !== undefined && !(Number.isFinite(options.retireWhenUnusedMs) && options.retireWhenUnusedMs > 0)) {
    throw invalid(`actor type '${name}': retireWhenUnusedMs must be a positive number of milliseconds (e.g. 7 * 24 * 3600_000 for a week)`);
  }
  return { name, versions, options };
}

/** A service: the actor types that its nodes run. */
export interface ServiceDefinition<TTypes extends readonly ActorType[] = readonly ActorType[]> {
  readonly name: string;
  readonly types: TTypes;
}

/**
 * Declares a service: a name (used in subjects and bucket names) and its actor types.
 * @example `export default defineService('shop', [cart, inventory]);`
 */
export function defineService<const TTypes extends readonly ActorType[]>(name: string, types: TTypes): ServiceDefinition<TTypes> {
  if (!serviceNamePattern.test(name)) {
    throw invalid(`service name '${name}' is not allowed: use lower-case letters, digits and '-', starting with a letter (at most 63)`);
  }
  const seen = new Set<string>();
  for (const t of types) {
    if (seen.has(t.name)) throw invalid(`service '${name}' lists actor type '${t.name}' twice`);
    seen.add(t.name);
  }
  return { name, types };
}
