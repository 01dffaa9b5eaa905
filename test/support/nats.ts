/**
 * Test support: a real nats-server per suite on a free loopback port, and
 * node processes started as separate OS processes (so tests can SIGKILL them).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { startEmbeddedNats, type EmbeddedNats } from '../../runtime/index.ts';

export { startEmbeddedNats, type EmbeddedNats };

const root = new URL('../..', import.meta.url).pathname;

/** A node (or any script) running in its own process. */
export interface ChildNode {
  readonly process: ChildProcess;
  readonly output: () => string;
  /** Resolves when a line of output matches. */
  waitFor(pattern: RegExp, timeoutMs?: number): Promise<string>;
  kill(signal?: NodeJS.Signals): Promise<void>;
}

/** A child's JSON log lines, in order: when (ms since the epoch), the message, and the `owned` count placement logs. */
export function logEvents(node: ChildNode): Array<{ at: number; msg: string; owned?: number }> {
  const out: Array<{ at: number; msg: string; owned?: number }> = [];
  for (const line of node.output().split('\n')) {
    if (!line.startsWith('{')) continue;
    try {
      const rec = JSON.parse(line) as { time: string; msg: string; owned?: number };
      out.push({ at: Date.parse(rec.time), msg: rec.msg, owned: rec.owned });
    } catch {
      // not a log line
    }
  }
  return out;
}

/** Runs `node --import tsx <script> ...args` from the repository root. */
export function spawnScript(script: string, args: string[], env: Record<string, string> = {}): ChildNode {
  const child = spawn(process.execPath, ['--import', 'tsx', script, ...args], {
    cwd: root,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  const waiters: Array<{ pattern: RegExp; resolve: (line: string) => void }> = [];
  const onData = (d: Buffer) => {
    out += d.toString();
    for (const w of waiters.slice()) {
      const m = w.pattern.exec(out);
      if (m) {
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve(m[0]);
      }
    }
  };
  child.stdout!.on('data', onData);
  child.stderr!.on('data', onData);
  return {
    process: child,
    output: () => out,
    waitFor(pattern, timeoutMs = 20_000) {
      const m = pattern.exec(out);
      if (m) return Promise.resolve(m[0]);
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`timed out waiting for ${pattern} in output:\n${out.slice(-3000)}`)), timeoutMs);
        waiters.push({ pattern, resolve: (line) => (clearTimeout(timer), resolve(line)) });
        child.once('exit', (code, signal) => {
          clearTimeout(timer);
          reject(new Error(`process exited (${code ?? signal}) before ${pattern}; output:\n${out.slice(-3000)}`));
        });
      });
    },
    kill(signal = 'SIGTERM') {
      return new Promise((resolve) => {
        if (child.exitCode !== null || child.signalCode !== null) return resolve();
        child.once('exit', () => resolve());
        child.kill(signal);
      });
    },
  };
}

/** Resolves after `ms` milliseconds. */
export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Waits until `check` returns true, polling; throws with `what` after `timeoutMs`. */
export async function eventually(check: () => boolean | Promise<boolean>, what: string, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return;
    if (Date.now() > deadline) throw new Error(`timed out: ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
