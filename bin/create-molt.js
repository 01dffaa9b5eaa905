#!/usr/bin/env node
// `create-molt [dir] [flags]`, the npm-create style initialiser: the same as `molt new`.
import { launch } from './launch.js';

process.argv.splice(2, 0, 'new');
await launch('runtime/cli/main');
