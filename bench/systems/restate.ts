/**
 * The durable peer: Restate, the durable keyed-actor runtime a TypeScript team
 * would otherwise pick. A virtual object `counter` with one handler,
 * `increment`, keeps its count in Restate's own per-key state (journaled and
 * durable before the call is answered), served by a
 * `@restatedev/restate-sdk` endpoint in the serving agent behind a
 * single-node `restate-server` (`@restatedev/restate-server`) with a store of
 * its own. Callers call it the way a TypeScript service would: HTTP/1.1 with
 * keep-alive to the ingress, `POST /counter/<key>/increment` with the same
 * 100-byte payload as Molt's asks. restate-server's CPU counts as the
 * serving agent's.
 *
 * @module
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { Agent, request } from 'node:http';
import { createRequire } from 'node:module';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { PAYLOAD } from '../fixtures/service.ts';
import { processCpuMicros } from '../harness.ts';
import { callers, childCpu, cleanups, type Command } from './common.ts';

/** A TCP port nobody listens on right now. */
async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const port = (server.address() as { port: number }).port;
      server.close(() => resolve(port));
    });
  });
}

/** The restate-server binary of the installed platform package. */
function serverBinary(): string {
  const require = createRequire(import.meta.url);
  const pkg = require.resolve(`@restatedev/restate-server-${process.platform}-${process.arch === 'x64' ? 'x64' : process.arch}/package.json`);
  return join(dirname(pkg), 'bin', 'restate-server');
}

async function until(what: string, timeoutMs: number, probe: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await probe().catch(() => false)) return;
    if (Date.now() > deadline) throw new Error(`restate: ${what} not within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function http(method: string, url: string, body?: unknown): Promise<{ status: number; text: string }> {
  const response = await fetch(url, { method, ...(body === undefined ? {} : { body: JSON.stringify(body), headers: { 'content-type': 'application/json' } }) });
  return { status: response.status, text: await response.text() };
}

export const commands: Record<string, Command> = {
  /** Starts restate-server and the counter endpoint, registers the endpoint; returns the ingress URL. */
  'restate.serve': async () => {
    // The SDK uses Promise.withResolvers, which Node 20 lacks.
    const P = Promise as unknown as { withResolvers?: <T>() => { promise: Promise<T>; resolve: (v: T) => void; reject: (e: unknown) => void } };
    P.withResolvers ??= <T>() => {
      let resolve!: (v: T) => void;
      let reject!: (e: unknown) => void;
      const promise = new Promise<T>((res, rej) => {
        resolve = res;
        reject = rej;
      });
      return { promise, resolve, reject };
    };
    const restate = await import('@restatedev/restate-sdk');
    const counter = restate.object({
      name: 'counter',
      handlers: {
        increment: async (ctx: import('@restatedev/restate-sdk').ObjectContext, input: { by: number }) => {
          const count = ((await ctx.get<number>('count')) ?? 0) + input.by;
          ctx.set('count', count);
          return count;
        },
      },
    });
    const endpointPort = await freePort();
    await restate.endpoint().bind(counter).listen(endpointPort);

    const [ingress, admin, node, pgsql] = [await freePort(), await freePort(), await freePort(), await freePort()];
    const baseDir = mkdtempSync(join(tmpdir(), 'molt-bench-restate-'));
    const server: ChildProcess = spawn(serverBinary(), ['--no-logo', '--listen-mode', 'tcp'], {
      cwd: baseDir,
      env: {
        ...process.env,
        RESTATE_BASE_DIR: baseDir,
        RESTATE_INGRESS__BIND_ADDRESS: `127.0.0.1:${ingress}`,
        RESTATE_ADMIN__BIND_ADDRESS: `127.0.0.1:${admin}`,
        RESTATE_BIND_ADDRESS: `127.0.0.1:${node}`,
        RESTATE_ADMIN__QUERY_ENGINE__PGSQL_BIND_ADDRESS: `127.0.0.1:${pgsql}`,
        RESTATE_DISABLE_TELEMETRY: 'true',
        RESTATE_LOG_FILTER: 'error',
      },
      stdio: 'ignore',
    });
    cleanups.push(async () => {
      server.kill('SIGKILL');
      rmSync(baseDir, { recursive: true, force: true });
    });
    const pid = server.pid;
    if (pid !== undefined) childCpu.push(() => processCpuMicros(pid));

    const adminUrl = `http://127.0.0.1:${admin}`;
    await until('the admin API', 60_000, async () => (await http('GET', `${adminUrl}/health`)).status === 200);
    await until('the deployment registered', 60_000, async () => {
      const { status } = await http('POST', `${adminUrl}/deployments`, { uri: `http://127.0.0.1:${endpointPort}`, force: true });
      return status >= 200 && status < 300;
    });
    const ingressUrl = `http://127.0.0.1:${ingress}`;
    await until('the ingress serving counter', 60_000, async () => (await http('POST', `${ingressUrl}/counter/probe/increment`, { by: 1 })).status === 200);
    return { ingressUrl };
  },
  /** Registers caller `name`: worker w increments counter `<prefix><w>` through the ingress. */
  'restate.caller': async (args) => {
    const ingress = new URL(String(args.ingressUrl));
    const agent = new Agent({ keepAlive: true, maxSockets: Infinity });
    cleanups.push(async () => agent.destroy());
    const body = Buffer.from(JSON.stringify(PAYLOAD));
    const prefix = String(args.keyPrefix ?? 'r');
    const increment = (key: string) =>
      new Promise<number>((resolve, reject) => {
        const req = request(
          { agent, host: ingress.hostname, port: ingress.port, method: 'POST', path: `/counter/${key}/increment`, headers: { 'content-type': 'application/json', 'content-length': body.length } },
          (res) => {
            const chunks: Buffer[] = [];
            res.on('data', (c: Buffer) => chunks.push(c));
            res.on('end', () => {
              const text = Buffer.concat(chunks).toString('utf8');
              if (res.statusCode === 200) resolve(Number(text));
              else reject(new Error(`restate answered ${res.statusCode}: ${text.slice(0, 200)}`));
            });
            res.on('error', reject);
          },
        );
        req.on('error', reject);
        req.end(body);
      });
    callers.set(String(args.name), { call: (w) => increment(`${prefix}${w}`), callKey: (i) => increment(`${prefix}${i}`) });
    return {};
  },
};
