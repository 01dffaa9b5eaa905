/**
 * The NATS permissions of a service's four roles, as a nats-server
 * `authorization` block (`molt permissions`; docs/permissions.md explains
 * each line):
 *
 * - **operator** (`molt setup`, `status`, `pause|resume|abort|retire|rollback`,
 *   `prune`): creates and changes the service's streams, writes the UDB's
 *   `control`, `rollouts` and `retired` keys, purges the UDB's old history;
 * - **publisher** (`molt publish`): writes descriptors, bundles, and the UDB's
 *   `rollouts` and `control` keys (a rollout published paused);
 * - **node** (`molt node`), one user per node id when ids are given: serves
 *   calls, writes actor state and, in the UDB, only keys carrying its own id
 *   (its record, its progress, its reports, its halts, its caller evidence)
 *   plus the rollouts' counts;
 * - **caller**: sends calls, reads its replies.
 *
 * Every rule is an allow-list: what a role is not given, the server refuses.
 * Each role also gets its own reply-subject prefix, so that no other role can
 * read or forge its replies (nodes `_MOLT_NODE.<id>`, tools `_MOLT_TOOLS`,
 * callers `_INBOX`).
 *
 * @module
 */
import { serviceBuckets } from '../udb/buckets.ts';
import { DEFAULT_CALLER_INBOX_PREFIX, nodeInboxPrefix } from '../node/reply-subject.ts';
import { discoveryVerbs, SRV_PREFIX } from '../node/discovery.ts';

/** Options of {@link permissionsConfig}. */
export interface PermissionsOptions {
  service: string;
  /** Node ids: one user per node, allowed only its own UDB keys. Default: one `node` user for every node. */
  nodes?: readonly string[];
  /** Caller names: one user each, reading replies under `_INBOX.<name>` only. Default: one `caller` user. */
  callers?: readonly string[];
  /** Other services whose UDB this service's `after` schedules read. */
  after?: readonly string[];
  /** Prefix of the operator's and publisher's reply subjects (default `_MOLT_TOOLS`). */
  toolsInboxPrefix?: string;
}

/** A group of subjects a role may publish to, and why. */
export interface SubjectGroup {
  why: string;
  subjects: string[];
}

/** One user of the block. */
export interface RoleUser {
  role: 'operator' | 'publisher' | 'node' | 'caller';
  user: string;
  /** Environment variable the server reads the password from. */
  passwordVariable: string;
  /** The reply-subject prefix this user must connect with. */
  inboxPrefix: string;
  publish: SubjectGroup[];
  subscribe: string[];
  comment: string;
}

const NAME = /^[A-Za-z0-9_-]{1,128}$/;
const SERVICE = /^[a-z][a-z0-9-]{0,62}$/;

function variableFor(user: string): string {
  return `MOLT_${user.toUpperCase().replace(/[^A-Z0-9]/g, '_')}_PASSWORD`;
}

/** The JetStream API subjects that read a stream: info, message gets, and the consumers that list and watch keys. */
function readStream(stream: string): string[] {
  return [
    `$JS.API.STREAM.INFO.${stream}`,
    `$JS.API.STREAM.MSG.GET.${stream}`,
    `$JS.API.DIRECT.GET.${stream}`,
    `$JS.API.DIRECT.GET.${stream}.>`,
    `$JS.API.CONSUMER.CREATE.${stream}`,
    `$JS.API.CONSUMER.CREATE.${stream}.>`,
    `$JS.API.CONSUMER.DELETE.${stream}.>`,
    `$JS.API.CONSUMER.INFO.${stream}.>`,
    `$JS.API.CONSUMER.MSG.NEXT.${stream}.>`,
    `$JS.FC.${stream}.>`,
  ];
}

/** The users of the four roles, with their permissions. */
export function roleUsers(options: PermissionsOptions): RoleUser[] {
  const { service } = options;
  if (!SERVICE.test(service)) throw new TypeError(`'${service}' is not a service name`);
  for (const name of [...(options.nodes ?? []), ...(options.callers ?? [])]) {
    if (!NAME.test(name)) throw new TypeError(`'${name}' is not a node id or caller name (letters, digits, '_' and '-')`);
  }
  for (const other of options.after ?? []) if (!SERVICE.test(other)) throw new TypeError(`'${other}' is not a service name`);
  const b = serviceBuckets(service);
  const streams = [b.state, b.udb, b.upgrades, b.bundles];
  const udb = `$KV.${b.udb.name}`;
  const tools = options.toolsInboxPrefix ?? '_MOLT_TOOLS';
  const readGroup = (why: string, specs: Array<{ stream: string }>): SubjectGroup => ({ why, subjects: ['$JS.API.INFO', ...specs.flatMap((s) => readStream(s.stream))] });

  const operator: RoleUser = {
    role: 'operator',
    user: 'operator',
    passwordVariable: variableFor('operator'),
    inboxPrefix: tools,
    comment: 'molt setup, status, pause, resume, abort, retire, rollback, prune',
    publish: [
      { why: 'create the buckets and change their replicas (molt setup)', subjects: streams.flatMap((s) => [`$JS.API.STREAM.CREATE.${s.stream}`, `$JS.API.STREAM.UPDATE.${s.stream}`]) },
      { why: 'find the services on this NATS', subjects: ['$JS.API.STREAM.NAMES', '$JS.API.STREAM.LIST'] },
      readGroup('read every bucket', streams),
      { why: 'command rollouts, retire versions', subjects: [`${udb}.control.*`, `${udb}.rollouts.*`, `${udb}.retired.>`] },
      { why: 'remove the history of gone nodes and finished rollouts (molt prune)', subjects: [`$JS.API.STREAM.PURGE.${b.udb.stream}`] },
    ],
    subscribe: [`${tools}.>`],
  };
  const publisher: RoleUser = {
    role: 'publisher',
    user: 'publisher',
    passwordVariable: variableFor('publisher'),
    inboxPrefix: tools,
    comment: 'molt publish: the only role that writes descriptors and bundles',
    publish: [
      readGroup('read the upgrade database, descriptors and bundles', [b.udb, b.upgrades, b.bundles]),
      { why: 'see that the service is set up', subjects: [`$JS.API.STREAM.INFO.${b.state.stream}`] },
      { why: 'write descriptors and bundles (replacing a bundle purges its old chunks)', subjects: [`$KV.${b.upgrades.name}.>`, `$O.${b.bundles.name}.>`, `$JS.API.STREAM.PURGE.${b.bundles.stream}`] },
      { why: 'create rollouts, start them paused', subjects: [`${udb}.rollouts.*`, `${udb}.control.*`] },
    ],
    subscribe: [`${tools}.>`],
  };
  // The services protocol: every service, this service, one node of it (by id).
  const discovery = (id: string) => [...discoveryVerbs.map((verb) => `${SRV_PREFIX}.${verb}`), `${SRV_PREFIX}.*.${service}`, `${SRV_PREFIX}.*.${service}.${id}`];
  const nodeUser = (id: string | undefined): RoleUser => {
    const own = id ?? '*';
    const user = id === undefined ? 'node' : `node-${id}`;
    return {
      role: 'node',
      user,
      passwordVariable: variableFor(user),
      inboxPrefix: nodeInboxPrefix(id ?? '<id>'),
      comment: id === undefined ? 'molt node, every node' : `molt node --id ${id}`,
      publish: [
        readGroup('read every bucket', streams),
        ...((options.after ?? []).length > 0 ? [{ why: 'read the services its `after` schedules follow', subjects: (options.after ?? []).flatMap((other) => readStream(serviceBuckets(other).udb.stream)) }] : []),
        { why: 'write actor state', subjects: [`$KV.${b.state.name}.>`] },
        {
          why: id === undefined ? 'write node-owned UDB keys (any node\'s: give --nodes to restrict each to its own) and rollout counts' : 'write its own UDB keys (record, progress, reports, halts, caller evidence) and rollout counts',
          subjects: [`${udb}.nodes.${own}`, `${udb}.progress.*.${own}`, `${udb}.reports.${own}.>`, `${udb}.control.*.${own}`, `${udb}.callers.*.${own}`, `${udb}.rollouts.*`],
        },
        { why: 'reply to callers (only to reply subjects under _INBOX, docs/protocol.md)', subjects: [`${DEFAULT_CALLER_INBOX_PREFIX}.>`] },
      ],
      subscribe: [`molt.${service}.>`, id === undefined ? '_MOLT_NODE.>' : `${nodeInboxPrefix(id)}.>`, ...discovery(own)],
    };
  };
  const callerUser = (name: string | undefined): RoleUser => {
    const user = name === undefined ? 'caller' : `caller-${name}`;
    const inbox = name === undefined ? DEFAULT_CALLER_INBOX_PREFIX : `${DEFAULT_CALLER_INBOX_PREFIX}.${name}`;
    return {
      role: 'caller',
      user,
      passwordVariable: variableFor(user),
      inboxPrefix: inbox,
      comment: name === undefined ? 'application callers' : `caller ${name}, reading only its own replies`,
      publish: [
        { why: 'call actors', subjects: [`molt.${service}.>`] },
        { why: 'discover the service: $SRV.PING, INFO and STATS (docs/protocol.md)', subjects: discovery('*') },
      ],
      subscribe: [`${inbox}.>`],
    };
  };
  const nodes = options.nodes?.length ? options.nodes.map((id) => nodeUser(id)) : [nodeUser(undefined)];
  const callers = options.callers?.length ? options.callers.map((n) => callerUser(n)) : [callerUser(undefined)];
  return [operator, publisher, ...nodes, ...callers];
}

const quote = (s: string) => JSON.stringify(s);

/** Subjects on lines of at most about 100 characters. */
function wrap(subjects: string[], indent: string): string[] {
  const lines: string[] = [];
  let line = '';
  for (const s of subjects.map(quote)) {
    if (line && line.length + s.length + 2 > 100) {
      lines.push(`${indent}${line}`);
      line = '';
    }
    line = line ? `${line}, ${s}` : s;
  }
  if (line) lines.push(`${indent}${line}`);
  return lines;
}

/** The nats-server `authorization { users = [...] }` block of the service's roles. */
export function permissionsConfig(options: PermissionsOptions): string {
  const lines = [
    `# NATS users of Molt service '${options.service}', printed by \`molt permissions\` (docs/permissions.md).`,
    '# Passwords come from the server\'s environment; nkey or JWT users take the same permissions.',
    'authorization {',
    '  users = [',
  ];
  for (const u of roleUsers(options)) {
    lines.push(`    # ${u.role}: ${u.comment}. Connects with inbox prefix ${u.inboxPrefix}.`);
    lines.push(`    { user: ${quote(u.user)}, password: $${u.passwordVariable}, permissions: {`);
    lines.push('        publish: { allow: [');
    for (const group of u.publish) {
      lines.push(`          # ${group.why}`);
      lines.push(...wrap(group.subjects, '          '));
    }
    lines.push('        ] }');
    lines.push(`        subscribe: { allow: [${u.subscribe.map(quote).join(', ')}] }`);
    lines.push('    } }');
  }
  lines.push('  ]', '}', '');
  return lines.join('\n');
}
