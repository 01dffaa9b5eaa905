import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { PassThrough } from 'node:stream';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ask } from '../../../codegen/prompt.ts';
import { fillPlaceholders, listTemplates, scaffold, serviceNameFrom } from '../../../codegen/scaffold.ts';
import { isMoltError } from '../../../runtime/index.ts';
import { tempDir } from '../../support/projects.ts';

const test = suite('codegen: scaffold');

test('serviceNameFrom - turns a folder name into a valid service name', () => {
  assert.is(serviceNameFrom('/tmp/My Shop!'), 'my-shop');
  assert.is(serviceNameFrom('./2024-orders'), 'orders');
  assert.is(serviceNameFrom('/tmp/___'), 'molt-service');
});

test('fillPlaceholders - name, Molt dependency and pinned versions; unknown placeholders are template bugs', () => {
  const values = { name: 'shop', moltDependency: 'file:/opt/molt', versions: { xstate: '5.33.3' } };
  assert.is(fillPlaceholders('{{name}} {{moltDependency}} {{version:xstate}}', values, 'f'), 'shop file:/opt/molt 5.33.3');
  assert.throws(() => fillPlaceholders('{{version:left-pad}}', values, 'f'), /does not pin/);
  assert.throws(() => fillPlaceholders('{{nmae}}', values, 'f'), /unknown placeholder \{\{nmae\}\}/);
});

test('listTemplates - each template says what it is and which types it has', () => {
  for (const t of listTemplates()) {
    assert.ok(t.description.length > 10, t.name);
    assert.ok(t.types.length > 0, t.name);
  }
});

test('scaffold - writes the template with placeholders filled, renames _gitignore, leaves template.json behind', () => {
  const tmp = tempDir('molt-scaffold-');
  try {
    const r = scaffold({ dir: join(tmp.path, 'Hello World'), template: 'counter', moltDependency: 'file:/x' });
    assert.is(r.name, 'hello-world');
    assert.ok(r.files.includes('.gitignore'));
    assert.not.ok(r.files.includes('template.json'));
    assert.ok(existsSync(join(r.dir, 'src/counter/v1.ts')));
    assert.is(JSON.parse(readFileSync(join(r.dir, 'package.json'), 'utf8')).dependencies.molt, 'file:/x');
    // A second scaffold into the same (now non-empty) folder is refused.
    try {
      scaffold({ dir: r.dir, template: 'counter' });
      assert.unreachable();
    } catch (e) {
      assert.ok(isMoltError(e, 'InvalidDefinition'));
    }
  } finally {
    tmp.remove();
  }
});

test('ask - takes defaults on Enter, re-asks invalid answers, and computes defaults from earlier answers', async () => {
  const input = new PassThrough();
  const output = new PassThrough();
  let shown = '';
  output.on('data', (d) => (shown += d));
  input.end('my-shop\nnope\ncart\n\n');
  const answers = await ask(
    [
      { text: 'Folder', default: 'molt-service' },
      { text: 'Template', default: 'counter', choices: ['counter', 'cart'] },
      { text: 'Service name', default: (previous) => `${previous[0]}-svc` },
    ],
    input,
    output,
  );
  assert.equal(answers, ['my-shop', 'cart', 'my-shop-svc']);
  assert.match(shown, 'Template (counter, cart) [counter]: ');
  assert.match(shown, 'choose one of: counter, cart');
  assert.match(shown, 'Service name [my-shop-svc]: ');
});

test('ask - input that ends early takes the remaining defaults', async () => {
  const input = new PassThrough();
  input.end('');
  const answers = await ask([{ text: 'Folder', default: 'a' }, { text: 'Template', default: 'counter' }], input, new PassThrough());
  assert.equal(answers, ['a', 'counter']);
});

test.run();
