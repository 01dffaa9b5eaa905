/**
 * Test support: a TCP proxy on loopback between one NATS client and its
 * server, which a test can cut in either direction and heal.
 *
 * A cut stops forwarding without closing anything — as a partition does —
 * and holds what the cut side sent, the way a socket's buffers would; on
 * heal, the held bytes are delivered in order. So a write a node sent into
 * the cut reaches the server late, when the network comes back.
 */
import { createServer, connect, type Server, type Socket } from 'node:net';

/** Which traffic a cut stops: client → server, server → client, or both. */
export type CutDirection = 'to-server' | 'to-client' | 'both';

export interface NatsProxy {
  /** `nats://127.0.0.1:<port>`: give this to the client instead of the server's URL. */
  readonly url: string;
  cut(direction?: CutDirection): void;
  heal(): void;
  /**
   * Closes every connection through the proxy, dropping what a cut held — as
   * a server that restarts, or a link that resets, loses what was in flight.
   * The proxy keeps listening: clients reconnect through it (healed).
   */
  drop(): void;
  /** Bytes held by the current cut, per direction. */
  held(): { toServer: number; toClient: number };
  close(): Promise<void>;
}

interface Link {
  client: Socket;
  server: Socket;
  heldToServer: Buffer[];
  heldToClient: Buffer[];
}

/** Starts a proxy to the nats-server at `target` (`nats://host:port`). */
export async function startNatsProxy(target: string): Promise<NatsProxy> {
  const { hostname, port } = new URL(target.replace(/^nats:/, 'http:'));
  const links = new Set<Link>();
  let toServerCut = false;
  let toClientCut = false;

  const server: Server = createServer((client) => {
    const upstream = connect(Number(port), hostname);
    const link: Link = { client, server: upstream, heldToServer: [], heldToClient: [] };
    links.add(link);
    client.on('data', (chunk) => (toServerCut ? link.heldToServer.push(chunk) : upstream.write(chunk)));
    upstream.on('data', (chunk) => (toClientCut ? link.heldToClient.push(chunk) : client.write(chunk)));
    const end = () => {
      links.delete(link);
      client.destroy();
      upstream.destroy();
    };
    client.on('close', end);
    upstream.on('close', end);
    client.on('error', end);
    upstream.on('error', end);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('proxy did not get a TCP port');

  return {
    url: `nats://127.0.0.1:${address.port}`,
    cut(direction = 'both') {
      if (direction !== 'to-client') toServerCut = true;
      if (direction !== 'to-server') toClientCut = true;
    },
    heal() {
      toServerCut = false;
      toClientCut = false;
      for (const link of links) {
        for (const chunk of link.heldToServer.splice(0)) link.server.write(chunk);
        for (const chunk of link.heldToClient.splice(0)) link.client.write(chunk);
      }
    },
    drop() {
      toServerCut = false;
      toClientCut = false;
      for (const link of links) {
        link.heldToServer.length = 0;
        link.heldToClient.length = 0;
        link.client.destroy();
        link.server.destroy();
      }
      links.clear();
    },
    held() {
      let toServer = 0;
      let toClient = 0;
      for (const link of links) {
        for (const c of link.heldToServer) toServer += c.length;
        for (const c of link.heldToClient) toClient += c.length;
      }
      return { toServer, toClient };
    },
    async close() {
      for (const link of links) {
        link.client.destroy();
        link.server.destroy();
      }
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
