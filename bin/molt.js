#!/usr/bin/env node
// The `molt` command (see launch.js for compiled code versus sources).
import { launch } from './launch.js';

await launch('runtime/cli/main');
