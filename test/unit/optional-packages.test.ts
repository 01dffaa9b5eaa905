/**
 * Packages only some commands need: a missing one is an Environment error that
 * names the command and the install line; any other failure passes through.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { ensureTypeScriptLoader, withOptionalPackage } from '../../runtime/optional-packages.ts';
import { ErrorCode, isMoltError } from '../../runtime/errors.ts';

const missing = 'molt-test-no-such-package';

test('optional packages - a missing package is an Environment error saying which command needs it and how to install it', async () => {
  const error = await withOptionalPackage(missing, '`molt version add`', () => import(missing as string)).then(
    () => undefined,
    (e: unknown) => e,
  );
  assert.ok(isMoltError(error), String(error));
  if (!isMoltError(error)) return;
  assert.is(error.code, ErrorCode.Environment);
  assert.match(error.message, `\`molt version add\` needs the package '${missing}'`);
  assert.match(error.message, `npm install --save-dev ${missing}`);
});

test('optional packages - another failure while loading passes through unchanged', async () => {
  const boom = new Error('the module threw while loading');
  const error = await withOptionalPackage(missing, 'x', () => Promise.reject(boom)).then(
    () => undefined,
    (e: unknown) => e,
  );
  assert.is(error, boom);
});

test('optional packages - a present package loads', async () => {
  const mod = await withOptionalPackage('ts-pattern', 'x', () => import('ts-pattern'));
  assert.type(mod.match, 'function');
});

test('optional packages - no TypeScript loader is needed for JavaScript, nor when Molt runs from its sources', async () => {
  await ensureTypeScriptLoader('/tmp/service.js');
  await ensureTypeScriptLoader('/tmp/service.ts');
});

test.run();
