/**
 * An embedded nats-server for development, the demo and tests: the binary from
 * `NATS_SERVER_BIN` or PATH, on a free loopback port, with JetStream in a
 * temporary directory that is removed when the server stops.
 *
 * @module
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, existsSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { ErrorCode, MoltError } from '../errors.ts';

/** A running nats-server started by Molt. */
export interface EmbeddedNats {
  /** `nats://127.0.0.1:<port>` */
  readonly url: string;
  readonly port: number;
  /** The JetStream store directory. */
  readonly storeDir: string;
  readonly process: ChildProcess;
  /** Stops the server (SIGTERM, then SIGKILL) and removes its store unless `keepStore`. */
  stop(options?: { keepStore?: boolean }): Promise<void>;
}

/** Options of {@link startEmbeddedNats}; all optional (a free port and a temporary store by default). */
export interface EmbeddedNatsOptions {
  /** Port to listen on (default: a free one). */
  port?: number;
  /** JetStream store directory to use (default: a fresh temporary one). */
  storeDir?: string;
  /** Extra configuration file text (cluster routes, accounts, ...). */
  config?: string;
  /** Extra command-line arguments. */
  args?: string[];
  /** Server name (needed in clusters). */
  name?: string;
  /** Print the server's log to this process's stderr. */
  verbose?: boolean;
}

/** Finds the nats-server binary, or throws an Environment error that says how to install one. */
export function findNatsServer(env: NodeJS.ProcessEnv = process.env): string {
  const explicit = env.NATS_SERVER_BIN;
  if (explicit) {
    if (existsSync(explicit)) return explicit;
    throw new MoltError(ErrorCode.Environment, `NATS_SERVER_BIN is set to '${explicit}', but no file is there. Point it at a nats-server binary, or unset it to search PATH.`);
  }
  const dirs = (env.PATH ?? '').split(delimiter).concat(['/usr/sbin', '/usr/local/sbin', '/usr/local/bin']);
  for (const dir of dirs) {
    const candidate = join(dir, 'nats-server');
    if (dir && existsSync(candidate)) return candidate;
  }
  throw new MoltError(
    ErrorCode.Environment,
    'no nats-server binary found on PATH. Install one (Debian/Ubuntu: `apt-get install nats-server`; macOS: `brew install nats-server`; ' +
      'or download from https://github.com/nats-io/nats-server/releases) and put it on PATH or set NATS_SERVER_BIN; ' +
      'or set NATS_URL to use a server you already run.',
  );
}

/** Returns a TCP port on 127.0.0.1 that was free a moment ago. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const address = srv.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

/** Starts a nats-server with JetStream and resolves once it accepts connections. */
export async function startEmbeddedNats(options: EmbeddedNatsOptions = {}): Promise<EmbeddedNats> {
  const bin = findNatsServer();
  const port = options.port ?? (await freePort());
  const ownStore = options.storeDir === undefined;
  const storeDir = options.storeDir ?? mkdtempSync(join(tmpdir(), 'molt-nats-'));
  const args = ['-a', '127.0.0.1', '-p', String(port), '-js', '-sd', storeDir];
  if (options.name) args.push('-n', options.name);
  if (options.config) {
    const configPath = join(storeDir, `server-${port}.conf`);
    writeFileSync(configPath, options.config);
    args.push('-c', configPath);
  }
  args.push(...(options.args ?? []));
  const child = spawn(bin, args, { stdio: ['ignore', 'ignore', 'pipe'] });
  let log = '';
  child.stderr?.on('data', (chunk: Buffer) => {
    const text = chunk.toString();
    if (log.length < 64 * 1024) log += text;
    if (options.verbose) process.stderr.write(text);
  });

  const ready = await new Promise<boolean>((resolve) => {
    const timer = setTimeout(() => resolve(false), 10_000);
    const check = () => {
      if (/Server is ready/.test(log)) {
        clearTimeout(timer);
        resolve(true);
      }
    };
    child.stderr?.on('data', check);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve(false);
    });
  });
  if (!ready) {
    child.kill('SIGKILL');
    if (ownStore) rmSync(storeDir, { recursive: true, force: true });
    throw new MoltError(ErrorCode.Environment, `nats-server did not start on 127.0.0.1:${port}. Its log:\n${log.slice(-2000)}`);
  }

  let stopped: Promise<void> | undefined;
  const server: EmbeddedNats = {
    url: `nats://127.0.0.1:${port}`,
    port,
    storeDir,
    process: child,
    stop({ keepStore = false } = {}) {
      stopped ??= new Promise<void>((resolve) => {
        const done = () => {
          if (ownStore && !keepStore) rmSync(storeDir, { recursive: true, force: true });
          resolve();
        };
        if (child.exitCode !== null || child.signalCode !== null) return done();
        const kill = setTimeout(() => child.kill('SIGKILL'), 3000);
        child.once('exit', () => {
          clearTimeout(kill);
          done();
        });
        child.kill('SIGTERM');
      });
      return stopped;
    },
  };
  return server;
}
