/**
 * Dissemination (issue 6, item 6): time from publishing an upgrade to its
 * future SO being installed on every node, with 10 and 50 nodes; p50/p99,
 * target p99 ≤ 250 ms.
 *
 * Extension point: needs the upgrade server (signed descriptor + bundle in
 * KV/Object Store) and the upgrade manager that watches for it. When they
 * exist: start N node agents (`molt.serve`), publish with the server's API
 * from the harness, and have each node report when `status().types[t].known`
 * first includes the new version (poll or an agent command that waits).
 *
 * @module
 */
import type { Benchmark } from '../harness.ts';

export const dissemination: Benchmark = {
  name: 'dissemination',
  title: 'publish → future SO installed on every node (10 and 50 nodes)',
  async run(ctx) {
    ctx.pending('dissemination.p99.10-nodes', 'needs the upgrade server and upgrade manager (publish, watch, verify, load), not in the runtime yet');
    ctx.pending('dissemination.p99.50-nodes', 'needs the upgrade server and upgrade manager (publish, watch, verify, load), not in the runtime yet');
  },
};
