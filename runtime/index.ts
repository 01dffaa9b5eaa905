/**
 * Molt: services that upgrade themselves while they run.
 *
 * The repository's own barrel: everything the package's doors export
 * (`molt`, `molt/node`, `molt/upgrades`, `molt/schedules`; see
 * runtime/doors/), in one place for the tests, benchmarks and demo of this
 * repository. Users import the doors.
 *
 * @module
 */
export * from './doors/molt.ts';
export * from './doors/node.ts';
export * from './doors/upgrades.ts';
export * from './doors/schedules.ts';
