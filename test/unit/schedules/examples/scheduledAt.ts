/**
 * Worked example of a custom SF written as a plain xstate machine (quoted in
 * docs/scheduling.md): upgrade once the clock passes `params.at`, an ISO
 * timestamp — "apply this at 03:00 UTC on Sunday".
 *
 * It follows the SF rules by hand: time only from `input.now` and `tick`,
 * nothing decided while paused (`input.paused`, `control: pause`),
 * `control: abort` ends with `abort`, and bad params end with `abort` and a
 * reason instead of throwing.
 */
import { assign, setup } from 'xstate';
import { defineSchedule, type ScheduleDecision, type ScheduleEvent, type ScheduleInput } from '../../../../actors/schedules/index.ts';

export const scheduledAt = defineSchedule(
  setup({
    types: {
      input: {} as ScheduleInput,
      events: {} as ScheduleEvent,
      context: {} as { at: number; now: number; startPaused: boolean; abortReason: string | null },
      output: {} as ScheduleDecision,
    },
    guards: {
      badParams: ({ context }) => Number.isNaN(context.at),
      startPaused: ({ context }) => context.startPaused,
      due: ({ context }) => context.now >= context.at,
      isPause: ({ event }) => event.type === 'control' && event.command === 'pause',
      isResume: ({ event }) => event.type === 'control' && event.command === 'resume',
      isAbort: ({ event }) => event.type === 'control' && event.command === 'abort',
    },
    actions: {
      keepTime: assign({ now: ({ context, event }) => (event.type === 'tick' ? Math.max(context.now, event.now) : context.now) }),
      operatorAbort: assign({ abortReason: 'aborted by the operator' }),
    },
  }).createMachine({
    id: 'scheduledAt',
    context: ({ input }) => ({
      at: typeof input.params.at === 'string' ? Date.parse(input.params.at) : NaN,
      now: input.now,
      startPaused: input.paused === true,
      abortReason: null,
    }),
    initial: 'starting',
    states: {
      starting: {
        always: [
          {
            guard: 'badParams',
            target: 'done',
            actions: assign({ abortReason: 'params.at must be an ISO timestamp such as "2026-03-01T03:00:00Z"' }),
          },
          { guard: 'startPaused', target: 'paused' },
          { target: 'waiting' },
        ],
      },
      waiting: {
        tags: ['waiting'],
        always: { guard: 'due', target: 'done' },
        on: {
          tick: { actions: 'keepTime' },
          control: [
            { guard: 'isPause', target: 'paused' },
            { guard: 'isAbort', target: 'done', actions: 'operatorAbort' },
          ],
        },
      },
      paused: {
        tags: ['paused'],
        on: {
          tick: { actions: 'keepTime' },
          control: [
            { guard: 'isResume', target: 'waiting' },
            { guard: 'isAbort', target: 'done', actions: 'operatorAbort' },
          ],
        },
      },
      done: { type: 'final' },
    },
    output: ({ context }): ScheduleDecision =>
      context.abortReason === null ? { decision: 'upgrade' } : { decision: 'abort', reason: context.abortReason },
  }),
);
