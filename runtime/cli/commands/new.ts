/**
 * `molt new [dir] --template <name>`: scaffold a runnable service from a
 * template shipped in this package (no network). Every question has a flag;
 * `--yes` takes the defaults, so scripts never block on a prompt.
 *
 * @module
 */
import { spawnSync } from 'node:child_process';
import { relative } from 'node:path';
import type { Command } from 'commander';
import { ErrorCode, MoltError } from '../../errors.ts';
import type { Question } from '../../../codegen/prompt.ts';
import { checkServiceName, listTemplates, scaffold, serviceNameFrom } from '../../../codegen/scaffold.ts';

interface NewFlags {
  template?: string;
  name?: string;
  yes?: boolean;
  force?: boolean;
  install?: boolean;
  molt?: string;
}

const DEFAULT_DIR = 'molt-service';
const DEFAULT_TEMPLATE = 'counter';

export function registerNewCommand(program: Command): void {
  const templates = listTemplates();
  program
    .command('new [dir]')
    .description('scaffold a runnable service from a template')
    .option('-t, --template <name>', `template: ${templates.map((t) => t.name).join(', ')} (default ${DEFAULT_TEMPLATE})`)
    .option('-n, --name <service>', 'service name used in subjects and buckets (default: from the folder name)')
    .option('-y, --yes', 'ask nothing: take the default for every question not given as a flag')
    .option('--install', 'run `npm install` in the new project')
    .option('--force', 'write into a folder that is not empty')
    .option('--molt <spec>', "the project's dependency on Molt (default: this Molt's version; from a checkout of the repository, file:<its folder>)")
    .addHelpText('after', '\nTemplates:\n' + templates.map((t) => `  ${t.name.padEnd(10)} ${t.description}`).join('\n'))
    .action(async (dirArg: string | undefined, flags: NewFlags) => {
      let dir = dirArg;
      let template = flags.template;
      let name = flags.name;
      // Ask only on a terminal: piped or scripted runs take the defaults.
      const interactive = !flags.yes && process.stdin.isTTY === true;
      if (interactive && (dir === undefined || template === undefined || name === undefined)) {
        // Asked in this order; the name's default follows the folder's answer.
        const questions: Array<[Question, (answer: string) => void]> = [];
        if (dir === undefined) questions.push([{ text: 'Folder for the new service', default: DEFAULT_DIR }, (a) => (dir = a)]);
        if (template === undefined) {
          questions.push([{ text: 'Template', default: DEFAULT_TEMPLATE, choices: templates.map((t) => t.name) }, (a) => (template = a)]);
        }
        if (name === undefined) {
          const folderAnswer = dir === undefined ? 0 : -1;
          questions.push([
            {
              text: 'Service name',
              default: (previous) => serviceNameFrom(folderAnswer === 0 ? previous[0]! : dir!),
              validate: (n) => (isServiceName(n) ? undefined : "use lower-case letters, digits and '-', starting with a letter"),
            },
            (a) => (name = a),
          ]);
        }
        const { ask } = await import('../../../codegen/prompt.ts');
        const answers = await ask(questions.map(([q]) => q), process.stdin, process.stdout);
        questions.forEach(([, set], i) => set(answers[i]!));
      }
      if (!interactive && !flags.yes && (dir === undefined || template === undefined)) {
        process.stderr.write(`molt new: not a terminal, so nothing is asked: using ${dir === undefined ? `folder '${DEFAULT_DIR}'` : ''}${dir === undefined && template === undefined ? ' and ' : ''}${template === undefined ? `template '${DEFAULT_TEMPLATE}'` : ''} (pass them, or --yes to take defaults quietly)\n`);
      }
      dir ??= DEFAULT_DIR;
      template ??= DEFAULT_TEMPLATE;
      const result = scaffold({ dir, template, name, force: flags.force, moltDependency: flags.molt });
      const shown = relative(process.cwd(), result.dir) || '.';
      process.stdout.write(`Created ${shown} (service '${result.name}') from the ${template} template: ${result.files.length} files.\n`);
      if (flags.install) {
        process.stdout.write('Installing dependencies (npm install)...\n');
        const npm = spawnSync('npm', ['install', '--no-audit', '--no-fund'], { cwd: result.dir, stdio: 'inherit' });
        if (npm.status !== 0) {
          throw new MoltError(ErrorCode.Environment, `npm install failed in ${shown} (exit ${npm.status ?? npm.signal}); fix the problem above and run it again there`);
        }
      }
      const steps = [`cd ${shown}`, ...(flags.install ? [] : ['npm install']), 'npm test', 'npx molt dev src/service.ts'];
      process.stdout.write(`\nNext:\n${steps.map((s) => `  ${s}\n`).join('')}\nSee ${shown}/README.md for more.\n`);
    });
}

function isServiceName(name: string): boolean {
  try {
    checkServiceName(name);
    return true;
  } catch {
    return false;
  }
}
