/**
 * How a node links an upgrade bundle (runtime/server/bundle.ts): the build
 * writes each import of a shared package (`molt…`, `xstate…`, `ts-pattern…`)
 * as a string marked with a mark of the bundle's own, declared on its first
 * line, and the node replaces exactly those strings by its own copies' URLs —
 * no second esbuild pass. Bundles without the mark (built before it) are
 * still linked by esbuild. Either way, what the node cannot provide is
 * refused as `bundle-invalid`, and the same module builds to the same bytes.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createHash } from 'node:crypto';
import { buildBundle, importBundle } from '../../runtime/server/bundle.ts';
import { ErrorCode, isMoltError } from '../../runtime/errors.ts';

const text = (bytes: Uint8Array) => new TextDecoder().decode(bytes);
const bytesOf = (s: string) => new TextEncoder().encode(s);
/** A mark as the build makes them (any 32 hex digits will do for the loader). */
const markOf = (seed: string) => createHash('sha256').update(seed).digest('hex').slice(0, 32);

async function refusal(promise: Promise<unknown>): Promise<{ reason: unknown; message: string }> {
  try {
    await promise;
  } catch (e) {
    assert.ok(isMoltError(e, ErrorCode.UpgradeRejected), `an UpgradeRejected, not ${String(e)}`);
    return { reason: e.data.reason, message: e.message };
  }
  assert.unreachable('the bundle was accepted');
  throw new Error('unreachable');
}

test('bundle link - a built bundle declares its mark and names every shared package only through it', async () => {
  const built = text(await buildBundle('test/fixtures/counter-v2.ts'));
  const first = built.split('\n', 1)[0]!;
  assert.match(first, /^\/\/ molt-link [0-9a-f]{32}$/);
  const mark = first.slice('// molt-link '.length);
  const marked = [...built.matchAll(new RegExp(`"molt-link-${mark}:([^"]*)"`, 'g'))].map((m) => m[1]);
  assert.ok(marked.includes('xstate'), `xstate is marked (${marked.join(', ')})`);
  assert.ok(marked.some((s) => s === 'molt/runtime/index.ts'), `Molt imported by path is marked (${marked.join(', ')})`);
  assert.not.match(built, /from\s*"(xstate|molt|ts-pattern)(\/[^"]*)?"/, 'no unmarked shared import is left');
});

test('bundle link - the same module builds to the same bytes', async () => {
  const a = await buildBundle('test/fixtures/counter-v2.ts');
  const b = await buildBundle('test/fixtures/counter-v2.ts');
  assert.equal(text(a), text(b));
});

test('bundle link - a marked bundle loads with the node\'s own shared packages', async () => {
  const loaded = await importBundle(await buildBundle('test/fixtures/counter-v2.ts'));
  // found at all only if the bundle's ActorVersion is the node's (bundleExports checks instanceof)
  assert.ok(loaded.version('counter', 2), 'counter@2 is offered');
});

test('bundle link - only strings with the bundle\'s own mark are linked', async () => {
  const mark = markOf('own');
  const other = markOf('other');
  const source = [
    `// molt-link ${mark}`,
    `import { setup } from "molt-link-${mark}:xstate";`,
    `import * as molt from "molt-link-${mark}:molt";`,
    `export const schedules = { probe: { setup: typeof setup, define: typeof molt.defineVersion, foreign: "molt-link-${other}:xstate", escaped: "molt-link-${mark}:\\u0078state" } };`,
    '',
  ].join('\n');
  const probe = (await importBundle(bytesOf(source))).schedules.probe as Record<string, string>;
  assert.equal(probe, { setup: 'function', define: 'function', foreign: `molt-link-${other}:xstate`, escaped: `molt-link-${mark}:xstate` });
});

test('bundle link - a marked import the node cannot provide is refused as bundle-invalid, saying which', async () => {
  const mark = markOf('missing');
  const missingMolt = `// molt-link ${mark}\nimport { x } from "molt-link-${mark}:molt/runtime/no-such-file.ts";\nexport const schedules = { x };\n`;
  let r = await refusal(importBundle(bytesOf(missingMolt)));
  assert.is(r.reason, 'bundle-invalid');
  assert.match(r.message, /molt\/runtime\/no-such-file\.ts.*does not have/);
  const notShared = `// molt-link ${mark}\nimport pad from "molt-link-${mark}:left-pad";\nexport const schedules = { pad };\n`;
  r = await refusal(importBundle(bytesOf(notShared)));
  assert.is(r.reason, 'bundle-invalid');
  assert.match(r.message, /'left-pad', which it does not carry/);
});

test('bundle link - a bundle without a mark is still linked by esbuild, and refused the same way', async () => {
  const unmarked = 'import { setup } from "xstate";\nimport { defineVersion } from "molt";\nexport const schedules = { probe: [typeof setup, typeof defineVersion] };\n';
  assert.equal((await importBundle(bytesOf(unmarked))).schedules.probe, ['function', 'function']);
  const r = await refusal(importBundle(bytesOf('import pad from "left-pad";\nexport const schedules = { pad };\n')));
  assert.is(r.reason, 'bundle-invalid');
  assert.match(r.message, /'left-pad', which it does not carry/);
  // a first line that only looks like a mark is no mark: the whole bundle goes through esbuild
  const r2 = await refusal(importBundle(bytesOf(`// molt-link ${markOf('x').slice(0, 31)}\nimport pad from "left-pad";\nexport const schedules = { pad };\n`)));
  assert.match(r2.message, /'left-pad', which it does not carry/);
});

test.run();
