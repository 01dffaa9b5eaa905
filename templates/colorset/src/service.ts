/**
 * The {{name}} service: ColorSet, the running example of Ajmani, Liskov and
 * Shrira's "Automatic Software Upgrades for Distributed Systems".
 *
 * colorset@1 is a set of integers; colorset@2 gives each element a colour.
 * While nodes run different versions, each serves callers of both.
 */
import { defineActorType, defineService } from 'molt';
import { colorsetV1 } from './colorset/v1.ts';
import { colorsetV2 } from './colorset/v2.ts';

/** The colorset actor type: its versions, oldest first. */
export const colorset = defineActorType('colorset', [colorsetV1, colorsetV2]);

export default defineService('{{name}}', [colorset]);
