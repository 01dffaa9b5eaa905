/**
 * Loading a user's service module from the command line.
 *
 * @module
 */
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { existsSync } from 'node:fs';
import { ErrorCode, MoltError } from '../errors.ts';
import type { ServiceDefinition } from '../define/service.ts';
import { ensureTypeScriptLoader } from '../optional-packages.ts';

/** Imports `path` and returns its service: the default export, or an export named `service`. */
export async function loadServiceModule(path: string): Promise<ServiceDefinition> {
  const file = resolve(path);
  if (!existsSync(file)) {
    throw new MoltError(ErrorCode.InvalidDefinition, `no service module at ${file}: pass the file that exports your service (e.g. src/service.ts)`);
  }
  await ensureTypeScriptLoader(file);
  const mod = (await import(pathToFileURL(file).href)) as Record<string, unknown>;
  const candidate = (mod.default ?? mod.service) as ServiceDefinition | undefined;
  if (!candidate || typeof candidate !== 'object' || typeof candidate.name !== 'string' || !Array.isArray(candidate.types)) {
    throw new MoltError(
      ErrorCode.InvalidDefinition,
      `${path} does not export a service: add \`export default defineService('my-service', [myType])\` (or \`export const service = ...\`)`,
    );
  }
  return candidate;
}

/**
 * A service's name from a command argument that is either the service module
 * (a file that exists, or a path ending in .ts/.js) or the service's name.
 */
export async function serviceNameOf(moduleOrName: string): Promise<string> {
  if (/\.[cm]?[jt]s$/.test(moduleOrName) || existsSync(resolve(moduleOrName))) return (await loadServiceModule(moduleOrName)).name;
  if (!/^[a-z][a-z0-9-]{0,62}$/.test(moduleOrName)) {
    throw new MoltError(ErrorCode.InvalidDefinition, `'${moduleOrName}' is neither a service module (no such file) nor a service name (lower-case letters, digits and '-', starting with a letter)`);
  }
  return moduleOrName;
}
