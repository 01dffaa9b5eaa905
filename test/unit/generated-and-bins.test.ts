/**
 * What is generated stays generated, and the package's commands start:
 * docs/api.md matches the TSDoc of the public exports, and the npm-create
 * style initialiser (`create-molt`) scaffolds like `molt new`.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const root = new URL('../..', import.meta.url).pathname;

test('docs/api.md - is regenerated whenever the public exports change', () => {
  const run = spawnSync(process.execPath, ['--import', 'tsx', 'codegen/api-docs.ts', '--check'], { cwd: root, encoding: 'utf8' });
  assert.is(run.status, 0, `${run.stdout}${run.stderr}\nrun: node --import tsx codegen/api-docs.ts`);
});

test('create-molt - scaffolds a service like molt new', () => {
  const dir = mkdtempSync(join(tmpdir(), 'create-molt-'));
  try {
    const run = spawnSync(process.execPath, [join(root, 'bin/create-molt.js'), join(dir, 'shop'), '--template', 'counter', '--yes'], { encoding: 'utf8' });
    assert.is(run.status, 0, run.stderr);
    assert.ok(existsSync(join(dir, 'shop', 'src', 'service.ts')));
    const pkg = JSON.parse(readFileSync(join(dir, 'shop', 'package.json'), 'utf8')) as { dependencies: Record<string, string> };
    assert.match(pkg.dependencies.molt ?? '', /^file:/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test.run();
