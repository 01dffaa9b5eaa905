/**
 * Writes docs/conformance/vectors.json: computes the key vectors, runs every
 * call of vectors.ts against a node of test/fixtures/counter.ts (on its own
 * embedded nats-server) and records the replies, after checking each has the
 * status and error code the vector declares.
 *
 *   node --import tsx test/conformance/generate.ts
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { connect } from '@nats-io/transport-node';
import { pathToFileURL } from 'node:url';
import { createNode, silentLogger, startEmbeddedNats, type MoltNode, type ServiceDefinition } from '../../runtime/index.ts';
import { PROTOCOL_VERSION } from '../../runtime/wire/protocol.ts';
import { groupSpecs, invalidKeys, keyVectors, NOTES, runVector, VECTORS_FORMAT, type CallVector, type VectorGroup, type VectorSetup, type Vectors } from './vectors.ts';

const root = new URL('../..', import.meta.url).pathname;
export const VECTORS_FILE = join(root, 'docs/conformance/vectors.json');

/** Starts a node as a group's setup says, on a nats-server of its own. */
export async function startSetupNode(setup: VectorSetup, natsUrl: string): Promise<MoltNode> {
  const mod = (await import(pathToFileURL(join(root, setup.module)).href)) as { default: ServiceDefinition };
  return createNode({ service: mod.default, nats: { servers: natsUrl }, logger: silentLogger, shards: setup.shards, ...(setup.versions ? { versions: setup.versions } : {}) });
}

/** Runs each group's calls on a fresh node and returns the whole document. */
export async function generateVectors(): Promise<Vectors> {
  const groups: VectorGroup[] = [];
  for (const group of groupSpecs()) {
    const nats = await startEmbeddedNats();
    const node = await startSetupNode(group.setup, nats.url);
    const nc = await connect({ servers: nats.url });
    try {
      const calls: CallVector[] = [];
      for (const spec of group.calls) {
        const { expectStatus, expectCode, ...vector } = spec;
        const reply = await runVector(nc, spec.request, 'generate');
        const status = reply.headers['Molt-Status'];
        if (status !== expectStatus || (expectCode !== undefined && reply.error?.code !== expectCode)) {
          throw new Error(`vector '${group.name}/${spec.name}': expected ${expectStatus}${expectCode ? ` ${expectCode}` : ''}, the node answered ${JSON.stringify(reply)}`);
        }
        let expect = reply;
        if (reply.error && spec.unchecked) {
          const error = { ...reply.error } as Record<string, unknown>;
          for (const field of spec.unchecked) delete error[field];
          expect = { ...reply, error: error as CallVector['expect']['error'] };
        }
        calls.push({ ...vector, expect });
      }
      groups.push({ name: group.name, about: group.about, setup: group.setup, calls });
    } finally {
      await nc.close();
      await node.stop();
      await nats.stop();
    }
  }
  return { format: VECTORS_FORMAT, protocol: PROTOCOL_VERSION, notes: NOTES, keys: keyVectors(), invalidKeys: invalidKeys(), groups };
}

if (process.argv[1] && new URL(import.meta.url).pathname === process.argv[1]) {
  const vectors = await generateVectors();
  mkdirSync(dirname(VECTORS_FILE), { recursive: true });
  writeFileSync(VECTORS_FILE, JSON.stringify(vectors, null, 2) + '\n');
  const calls = vectors.groups.reduce((n, g) => n + g.calls.length, 0);
  process.stdout.write(`${vectors.keys.length} key vectors, ${vectors.invalidKeys.length} invalid keys, ${calls} call vectors in ${vectors.groups.length} groups written to ${VECTORS_FILE}\n`);
}
