import { startEmbeddedNats } from '../test/support/nats.ts';
import { startUpgradableNode, testPublisher, killAll } from '../test/support/upgrades.ts';
const nats = await startEmbeddedNats();
const p = testPublisher();
const t0 = Date.now();
const nodes = await Promise.all(['node-a', 'node-b', 'node-c'].map(async (id) => { const n = await startUpgradableNode(nats.url, id, { trust: [p.publicKey] }); console.log(id, 'up after', Date.now() - t0); return n; })).catch((e) => { console.log('ERR', String(e).slice(0, 2000)); return []; });
await killAll(nodes);
await nats.stop();
