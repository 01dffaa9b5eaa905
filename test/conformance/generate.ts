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
import { createNode, silentLogger, startEmbeddedNats } from '../../runtime/index.ts';
import { PROTOCOL_VERSION } from '../../runtime/wire/protocol.ts';
import service from '../fixtures/counter.ts';
import { callSpecs, invalidKeys, keyVectors, runVector, SETUP, VECTORS_FORMAT, type CallVector, type Vectors } from './vectors.ts';

const root = new URL('../..', import.meta.url).pathname;
export const VECTORS_FILE = join(root, 'docs/conformance/vectors.json');

/** Runs the calls on a fresh node and returns the whole document. */
export async function generateVectors(): Promise<Vectors> {
  const nats = await startEmbeddedNats();
  const node = await createNode({ service, nats: { servers: nats.url }, logger: silentLogger });
  const nc = await connect({ servers: nats.url });
  try {
    const calls: CallVector[] = [];
    for (const spec of callSpecs()) {
      const { expectStatus, expectCode, ...vector } = spec;
      const reply = await runVector(nc, spec.request, 'generate');
      const status = reply.headers['Molt-Status'];
      if (status !== expectStatus || (expectCode !== undefined && reply.error?.code !== expectCode)) {
        throw new Error(`vector '${spec.name}': expected ${expectStatus}${expectCode ? ` ${expectCode}` : ''}, the node answered ${JSON.stringify(reply)}`);
      }
      let expect = reply;
      if (reply.error && spec.unchecked) {
        const error = { ...reply.error } as Record<string, unknown>;
        for (const field of spec.unchecked) delete error[field];
        expect = { ...reply, error: error as CallVector['expect']['error'] };
      }
      calls.push({ ...vector, expect });
    }
    return { format: VECTORS_FORMAT, protocol: PROTOCOL_VERSION, setup: SETUP, keys: keyVectors(), invalidKeys: invalidKeys(), calls };
  } finally {
    await nc.close();
    await node.stop();
    await nats.stop();
  }
}

if (process.argv[1] && new URL(import.meta.url).pathname === process.argv[1]) {
  const vectors = await generateVectors();
  mkdirSync(dirname(VECTORS_FILE), { recursive: true });
  writeFileSync(VECTORS_FILE, JSON.stringify(vectors, null, 2) + '\n');
  process.stdout.write(`${vectors.keys.length} key vectors, ${vectors.invalidKeys.length} invalid keys, ${vectors.calls.length} call vectors written to ${VECTORS_FILE}\n`);
}
