#!/usr/bin/env node
// `create-molt [dir] [flags]`, the npm-create style initialiser: the same as `molt new`.
import { register } from 'tsx/esm/api';

register();
process.argv.splice(2, 0, 'new');
await import('../runtime/cli/main.ts');
