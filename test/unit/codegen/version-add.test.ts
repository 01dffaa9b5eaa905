/**
 * `addVersion` on layouts the templates do not use: inline messages and
 * machine, the chain in its own module, double quotes and `.js` specifiers,
 * versioned names. Each result must type-check.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { addVersion, bumpName, nextFileName } from '../../../codegen/version-add.ts';
import { isMoltError } from '../../../runtime/index.ts';
import { molt, moltRoot, ownTypeErrors, run, tempDir } from '../../support/projects.ts';

const test = suite<{ tmp: ReturnType<typeof tempDir> }>('codegen: version add');

test.before((ctx) => {
  ctx.tmp = tempDir('molt-version-add-');
});
test.after((ctx) => ctx.tmp.remove());

/** A project whose `molt` is this checkout (as a `file:` dependency would make it). */
function project(root: string, name: string, files: Record<string, string>): string {
  const dir = join(root, name);
  mkdirSync(join(dir, 'node_modules'), { recursive: true });
  symlinkSync(moltRoot, join(dir, 'node_modules', 'molt'));
  symlinkSync(join(moltRoot, 'node_modules', 'xstate'), join(dir, 'node_modules', 'xstate'));
  symlinkSync(join(moltRoot, 'node_modules', '@types'), join(dir, 'node_modules', '@types'));
  writeFileSync(join(dir, 'package.json'), JSON.stringify({ name, type: 'module', private: true }));
  writeFileSync(
    join(dir, 'tsconfig.json'),
    JSON.stringify({
      compilerOptions: { target: 'ES2022', module: 'NodeNext', moduleResolution: 'NodeNext', strict: true, noUncheckedIndexedAccess: true, allowImportingTsExtensions: true, noEmit: true, skipLibCheck: true, verbatimModuleSyntax: true, types: ['node'] },
      include: ['src'],
    }),
  );
  for (const [path, text] of Object.entries(files)) {
    mkdirSync(join(dir, path, '..'), { recursive: true });
    writeFileSync(join(dir, path), text);
  }
  return dir;
}

async function typechecks(dir: string): Promise<void> {
  const r = await run(join(moltRoot, 'node_modules', '.bin', 'tsc'), ['--noEmit', '-p', 'tsconfig.json'], dir);
  assert.equal(ownTypeErrors(r.output), [], r.output);
  assert.ok(r.status === 0 || /error TS/.test(r.output), r.output);
}

test('bumpName - moves the version in names that carry it, and only those', () => {
  assert.is(bumpName('counterV1', 1, 2), 'counterV2');
  assert.is(bumpName('v1Messages', 1, 2), 'v2Messages');
  assert.is(bumpName('cartV9Lines', 9, 10), 'cartV10Lines');
  assert.is(bumpName('counterV12', 1, 2), undefined);
  assert.is(bumpName('v1', 1, 2), 'v2');
  assert.is(bumpName('messages', 1, 2), undefined);
  assert.is(bumpName('dev1Helper', 1, 2), undefined);
});

test('nextFileName - v1.ts → v2.ts beside it; other names get a -vN suffix', () => {
  assert.is(nextFileName('/p/src/counter/v1.ts', 1, 2), '/p/src/counter/v2.ts');
  assert.is(nextFileName('/p/src/counter-v9.ts', 9, 10), '/p/src/counter-v10.ts');
  assert.is(nextFileName('/p/src/counter.ts', 1, 2), '/p/src/counter-v2.ts');
});

const inlineV1 = `import { setup, assign } from "xstate";
import { ask, defineVersion, P } from "molt";

/** Shared by every version: exported, so the next one imports it. */
export const unit = "m";

type Reading = { at: number; value: number };

export const meterV1 = defineVersion({
  type: "meter",
  version: 1,
  messages: { record: ask({ at: P.number, value: P.number }, P.number), last: ask({}, P.union(P.number, null)) },
  machine: setup({ types: { context: {} as { readings: Reading[] }, events: {} as { type: "record"; at: number; value: number } | { type: "last" } } }).createMachine({
    context: { readings: [] },
    on: { record: { actions: assign({ readings: ({ context, event }) => [...context.readings, { at: event.at, value: event.value }] }) } },
  }),
  replies: {
    record: ({ snapshot }) => snapshot.context.readings.length,
    last: ({ snapshot }) => snapshot.context.readings.at(-1)?.value ?? null,
  },
});
`;

test('addVersion - inline messages and machine are named in the new file; quotes, .js specifiers and the chain module are respected', async ({ tmp }) => {
  const dir = project(tmp.path, 'inline', {
    'src/meter/meter-v1.ts': inlineV1,
    'src/types.ts': `import { defineActorType } from "molt";\nimport { meterV1 } from "./meter/meter-v1.js";\n\nexport const meter = defineActorType("meter", [meterV1]);\n`,
    'src/service.ts': `import { defineService } from "molt";\nimport { meter } from "./types.js";\n\nexport default defineService("meters", [meter]);\n`,
  });
  const result = addVersion({ cwd: dir, type: 'meter', forward: false });
  assert.is(result.file, join(dir, 'src/meter/meter-v2.ts'));
  assert.is(result.exportName, 'meterV2');
  assert.equal(result.messages, ['record', 'last']);
  const text = readFileSync(result.file, 'utf8');
  assert.match(text, 'import { meterV1 } from "./meter-v1.js";');
  assert.match(text, 'const messages = { record: ask(');
  assert.match(text, 'const machine = setup(');
  assert.match(text, 'type Reading = { at: number; value: number };');
  assert.match(text, /defineVersion\(\{\n  type: "meter",\n  version: 2,\n  messages,\n  machine,\n  replies: \{/);
  assert.match(text, '// record({ at: number, value: number }) → number');
  assert.match(text, '// last() → number | null');
  const chain = readFileSync(join(dir, 'src/types.ts'), 'utf8');
  assert.match(chain, 'import { meterV1 } from "./meter/meter-v1.js";\nimport { meterV2 } from "./meter/meter-v2.js";');
  assert.match(chain, 'defineActorType("meter", [meterV1, meterV2])');
  await typechecks(dir);
});

test('addVersion - names carrying the version move with it; exported helpers are imported, not copied', async ({ tmp }) => {
  const dir = project(tmp.path, 'named', {
    'src/lamp/v1.ts': `import { assign, setup } from 'xstate';
import { ask, defineVersion, tell, P, type EventsOf } from 'molt';

/** Brightness bounds, shared by every version. */
export const MAX = 10;

const clamp = (n: number) => Math.max(0, Math.min(MAX, n));

/** What callers of lamp@1 can send. */
export const v1Messages = { set: tell({ level: P.number }), level: ask({}, P.number) };

const v1Machine = setup({ types: { context: {} as { level: number }, events: {} as EventsOf<typeof v1Messages> } }).createMachine({
  context: { level: 0 },
  on: { set: { actions: assign({ level: ({ event }) => clamp(event.level) }) } },
});

export const lampV1 = defineVersion({ type: 'lamp', version: 1, messages: v1Messages, machine: v1Machine, replies: { level: ({ snapshot }) => snapshot.context.level } });
`,
    'src/service.ts': `import { defineActorType, defineService } from 'molt';\nimport { lampV1 } from './lamp/v1.ts';\n\nexport default defineService('lamps', [defineActorType('lamp', [lampV1])]);\n`,
  });
  const result = addVersion({ cwd: dir, type: 'lamp', forward: true });
  const text = readFileSync(result.file, 'utf8');
  assert.match(text, "import { lampV1, MAX } from './v1.ts';");
  assert.match(text, '/** What callers of lamp@2 can send. */\nexport const v2Messages = {');
  assert.match(text, 'const v2Machine = setup(');
  assert.match(text, 'EventsOf<typeof v2Messages>');
  assert.match(text, 'messages: v2Messages, machine: v2Machine');
  assert.match(text, 'const clamp = (n: number) =>');
  assert.match(text, 'set: ({ request, target }) => target.set(request),');
  assert.not.match(text, 'export const MAX');
  assert.not.match(text, 'v1Messages');
  await typechecks(dir);
});

/** A one-version service of type `dial` (a tell and an ask) in a new project. */
function dialProject(root: string, name: string): string {
  return project(root, name, {
    'src/dial/v1.ts': `import { assign, setup } from 'xstate';
import { ask, defineVersion, tell, P, type EventsOf } from 'molt';

const messages = { turn: tell({ by: P.number.int() }), read: ask({}, P.number), spin: ask({ times: P.number.int().between(0, 3) }, P.number) };

const machine = setup({ types: { context: {} as { at: number }, events: {} as EventsOf<typeof messages> } }).createMachine({
  context: { at: 0 },
  on: {
    turn: { actions: assign({ at: ({ context, event }) => (context.at + event.by) % 12 }) },
    spin: { actions: assign({ at: ({ context, event }) => (context.at + 12 * event.times + 1) % 12 }) },
  },
});

export const dialV1 = defineVersion({ type: 'dial', version: 1, messages, machine, replies: { read: ({ snapshot }) => snapshot.context.at, spin: ({ snapshot }) => snapshot.context.at } });
`,
    'src/service.ts': `import { defineActorType, defineService } from 'molt';\nimport { dialV1 } from './dial/v1.ts';\n\nexport default defineService('dials', [defineActorType('dial', [dialV1])]);\n`,
  });
}

test('addVersion - by default both SOs forward every message, so the new version passes molt verify at once', async ({ tmp }) => {
  const dir = dialProject(tmp.path, 'forwarding');
  const result = addVersion({ cwd: dir, type: 'dial' });
  const text = readFileSync(result.file, 'utf8');
  assert.match(text, 'turn: ({ request, target }) => target.turn(request),');
  assert.match(text, 'read: ({ target }) => target.read(),');
  assert.not.match(text, "disallow('");
  await typechecks(dir);
  const verified = await molt(['verify', 'src/service.ts', '--seed', '3', '--runs', '20'], dir);
  assert.is(verified.status, 0, verified.output);
  assert.match(verified.output, /^✓ dial 1→2: 5 rules hold/m);
});

test('addVersion - forward: false writes a refusing stub per message (molt verify still passes: a refusal is never wrong)', async ({ tmp }) => {
  const dir = dialProject(tmp.path, 'refusing');
  const result = addVersion({ cwd: dir, type: 'dial', forward: false });
  const text = readFileSync(result.file, 'utf8');
  assert.match(text, "turn: disallow('the past SO of dial@2 does not serve it yet'),");
  await typechecks(dir);
  const verified = await molt(['verify', 'src/service.ts', '--seed', '3', '--runs', '20'], dir);
  assert.is(verified.status, 0, verified.output);
  assert.match(verified.output, 'note: dial@1 turn is disallowed on a node at 2');
});

test('addVersion - refuses a version declared in the same module as its chain, saying how to fix it', ({ tmp }) => {
  const dir = project(tmp.path, 'single', {
    'src/service.ts': `import { setup } from 'xstate';
import { ask, defineActorType, defineService, defineVersion, P } from 'molt';
const messages = { get: ask({}, P.number) };
export const boxV1 = defineVersion({ type: 'box', version: 1, messages, machine: setup({}).createMachine({ context: {} }), replies: { get: () => 1 } });
export default defineService('boxes', [defineActorType('box', [boxV1])]);
`,
  });
  try {
    addVersion({ cwd: dir, type: 'box', dryRun: true });
    assert.unreachable();
  } catch (e) {
    assert.ok(isMoltError(e, 'InvalidDefinition'), String(e));
    assert.match((e as Error).message, /move each version to its own module \(e\.g\. src\/box\/v1\.ts\)/);
  }
});

test.run();
