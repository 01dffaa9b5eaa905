/**
 * The {{name}} service: the actor types its nodes run.
 *
 * Run a node with `npx molt dev src/service.ts`. Add a version of a type with
 * `npx molt version add counter`: it writes src/counter/v2.ts and adds it to
 * the chain below.
 */
import { defineActorType, defineService } from 'molt';
import { counterV1 } from './counter/v1.ts';

/** The counter actor type: its versions, oldest first. */
export const counter = defineActorType('counter', [counterV1]);

export default defineService('{{name}}', [counter]);
