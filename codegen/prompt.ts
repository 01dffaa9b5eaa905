/**
 * Questions on a terminal, for the commands that scaffold: one line each, a
 * default in brackets that Enter accepts, and a re-ask on an invalid answer.
 * The streams are parameters so tests can drive it without a terminal.
 *
 * @module
 */
import { createInterface } from 'node:readline/promises';
import type { Readable, Writable } from 'node:stream';

/** One question. */
export interface Question {
  /** What to ask, without the trailing colon. */
  text: string;
  /** Answer taken when the user just presses Enter; a function sees the answers so far. */
  default?: string | ((previous: readonly string[]) => string);
  /** Accepted answers, listed after the question (e.g. template names). */
  choices?: string[];
  /** Returns a problem to show before asking again, or undefined if the answer is fine. */
  validate?: (answer: string) => string | undefined;
}

/** Asks the questions in order on `input`/`output`; returns the answers in the same order. */
export async function ask(questions: Question[], input: Readable, output: Writable): Promise<string[]> {
  const rl = createInterface({ input, output, terminal: false });
  // With piped input, readline may read several lines at once: keep them
  // queued instead of losing the ones that arrive before the next question.
  const lines: string[] = [];
  const waiting: Array<(line: string | undefined) => void> = [];
  let closed = false;
  rl.on('line', (line) => (waiting.length > 0 ? waiting.shift()!(line) : lines.push(line)));
  rl.on('close', () => {
    closed = true;
    for (const w of waiting.splice(0)) w(undefined);
  });
  const next = (): Promise<string | undefined> =>
    lines.length > 0 ? Promise.resolve(lines.shift()) : closed ? Promise.resolve(undefined) : new Promise((r) => waiting.push(r));

  const answers: string[] = [];
  try {
    for (const q of questions) {
      const fallbackAnswer = typeof q.default === 'function' ? q.default(answers) : q.default;
      for (;;) {
        const choices = q.choices ? ` (${q.choices.join(', ')})` : '';
        const fallback = fallbackAnswer !== undefined ? ` [${fallbackAnswer}]` : '';
        output.write(`${q.text}${choices}${fallback}: `);
        const line = await next();
        if (line === undefined) {
          output.write('\n');
          if (fallbackAnswer !== undefined) {
            answers.push(fallbackAnswer);
            break;
          }
          throw new Error(`no answer to "${q.text}" (input ended); pass it as a flag instead`);
        }
        const answer = line.trim() === '' && fallbackAnswer !== undefined ? fallbackAnswer : line.trim();
        const problem = answer === '' ? 'an answer is needed' : q.choices && !q.choices.includes(answer) ? `choose one of: ${q.choices.join(', ')}` : q.validate?.(answer);
        if (problem === undefined) {
          answers.push(answer);
          break;
        }
        output.write(`  ${problem}\n`);
      }
    }
  } finally {
    rl.close();
  }
  return answers;
}
