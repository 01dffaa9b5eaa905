/**
 * The verification `molt publish` runs before it writes anything: the rules
 * of every upgrade into each version it publishes (see docs/verify.md).
 *
 * @module
 */
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { ErrorCode, MoltError } from '../errors.ts';
import type { ServiceDefinition } from '../define/service.ts';
import { formatFailure, verifyType, type VerifyOptions, type VerifyReport } from './check.ts';

/** The `verifyOptions` a service module exports (generators for `P.when`, runs, a seed), if any. */
export async function moduleVerifyOptions(modulePath: string): Promise<VerifyOptions> {
  const mod = (await import(pathToFileURL(resolve(modulePath)).href)) as { verifyOptions?: VerifyOptions };
  return mod.verifyOptions ?? {};
}

/**
 * Verifies the upgrades into each of `targets` (a type and the version to be
 * published). Throws OperationRefused with every counterexample found, and
 * the way out (`--no-verify`), if a rule is broken.
 */
export async function verifyForPublish(modulePath: string, service: ServiceDefinition, targets: ReadonlyArray<{ type: string; to: number }>): Promise<VerifyReport[]> {
  const options = await moduleVerifyOptions(modulePath);
  const reports: VerifyReport[] = [];
  for (const { type, to } of targets) {
    const def = service.types.find((t) => t.name === type);
    if (!def) continue;
    const report = verifyType(def, { ...options, to });
    reports.push(report);
    if (!report.ok) {
      throw new MoltError(
        ErrorCode.OperationRefused,
        `${type}@${to} breaks the rules of upgrades, so it was not published (nothing was written):\n${report.failures.map(formatFailure).join('\n')}\nFix it and check with \`molt verify ${modulePath} --to ${to}\`; or publish it anyway with --no-verify, which the descriptor and \`molt status\` will say.`,
        { data: { type, to, failures: report.failures.map((f) => ({ rule: f.rule, from: f.from, to: f.to, detail: f.detail })) } },
      );
    }
  }
  return reports;
}
