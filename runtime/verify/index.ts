/**
 * `molt/verify`: the correctness rules of simulation objects and transform
 * functions, checked automatically from the version declarations (see
 * docs/verify.md), and the arbitraries derived from message schemas that
 * drive the checks.
 *
 * @module
 */
export { requestArbitrary, messageArbitraries } from './arbitrary.ts';
export type { GeneratorOverrides, RequestArbitraryOptions } from './arbitrary.ts';
export { shapeOf } from '../pattern.ts';
export type { PatternShape, PatternRefinement } from '../pattern.ts';
export { verifyService, verifyType, formatReport, formatFailure, formatCall, VERIFY_RULES, RULE_TEXT } from './check.ts';
export type { VerifyOptions, VerifyReport, VerifyFailure, VerifyRuleResult, VerifyRule, VerifyCall, AlwaysDisallowed } from './check.ts';
export { rehearse } from './rehearse.ts';
export type { RehearseOptions, RehearseReport, RehearsedActor } from './rehearse.ts';
