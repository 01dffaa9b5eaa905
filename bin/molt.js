#!/usr/bin/env node
// The `molt` command. Molt ships TypeScript sources; tsx compiles them on load.
import { register } from 'tsx/esm/api';

register();
await import('../runtime/cli/main.ts');
