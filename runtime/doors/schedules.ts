/**
 * `molt/schedules`: scheduling functions, built in and your own.
 *
 * A scheduling function decides when a node upgrades. Write one with
 * {@link defineSchedule} (an xstate machine) or {@link fromSchedulePolicy} (a
 * function of the view), build on the helpers the built-in ones use, and
 * export it from your module in `schedules` to publish with it.
 *
 * @module
 */
export {
  builtInSchedules,
  resolveSchedule,
  validateScheduleParams,
  isBuiltInSchedule,
  scheduleExamples,
  defineSchedule,
  isScheduleMachine,
  fromSchedulePolicy,
  parseWith,
  ParamReader,
  scheduleStatusOf,
  stableOrder,
  rollingGate,
  healthProblem,
  inWindow,
  minutesOfDay,
  parseTimeZone,
  ScheduleTag,
} from '../../actors/schedules/index.ts';
export type {
  BuiltInScheduleName,
  ScheduleDecision,
  ScheduleDescriptor,
  ScheduleEmitted,
  ScheduleEvent,
  ScheduleInput,
  ScheduleMachine,
  ScheduleNodeView,
  SchedulePolicy,
  ScheduleView,
  ScheduleStatus,
  HealthParams,
  GateResult,
  ParseResult,
} from '../../actors/schedules/index.ts';
