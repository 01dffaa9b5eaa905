/**
 * A service's contract, for callers in any language: per actor type and
 * version, every message's request and reply schema as JSON Schema (derived
 * from the ts-pattern declarations, see ./json-schema.ts), which caller
 * versions a node at each version serves and how (natively, through past SOs,
 * future SOs), and the error codes a caller can meet. `molt contract` writes
 * it; docs/protocol.md says how to read it.
 *
 * Pure: no I/O. The schemas are complete for patterns built with Molt's `P`
 * (runtime/pattern.ts); anything else is listed in `unexpressed`.
 *
 * @module
 */
import { ErrorCode, MoltError } from '../errors.ts';
import type { ActorType, ServiceDefinition } from '../define/service.ts';
import type { MessageSpec } from '../define/messages.ts';
import { routeFor, type TypeVersions } from '../upgrade/layer.ts';
import { DEFAULT_MAX_PAYLOAD, DEFAULT_SHARDS, PROTOCOL_VERSION } from '../wire/protocol.ts';
import { cellFor } from '../../codegen/compat.ts';
import { toJsonSchema, type JsonSchema, type Unexpressed } from './json-schema.ts';

export { toJsonSchema } from './json-schema.ts';
export type { JsonSchema, Unexpressed, ConvertedSchema } from './json-schema.ts';

/** The revision of the contract document's own format. */
export const CONTRACT_FORMAT = 1;

const draft = 'https://json-schema.org/draft/2020-12/schema';

/** One message of one version. */
export interface ContractMessage {
  kind: 'ask' | 'tell';
  /** The payload (`json` of the call body). Fields it does not declare are not rejected. */
  request: JsonSchema;
  /** The reply (`json` of an `ok` reply); for a tell, `null` with superjson's `undefined` annotation. */
  reply: JsonSchema;
  /** The payload may hold NaN and ±Infinity (through superjson `meta`). */
  nonFinite?: boolean;
}

/** How a node serves one caller version. */
export interface ContractRoute {
  /** The caller's `Molt-Version`. */
  version: number;
  /** `native`, `compatible` (a newer version serving the old messages itself), `past` (past SOs, chained) or `future` (future SOs). */
  via: 'native' | 'compatible' | 'past' | 'future';
  /** How many versions the call crosses (0 for native). */
  steps: number;
  /** Future versions are served only once the node has loaded their upgrade. */
  onceLoaded?: true;
  /** Messages of that version the node refuses outright (`Disallowed`), with the reason. */
  disallowed?: Record<string, string>;
  /** Messages of that version the node cannot serve at all (its SO has no handler). */
  unsupported?: string[];
}

/** One version of a type: its messages, and what a node running it serves. */
export interface ContractVersion {
  version: number;
  messages: Record<string, ContractMessage>;
  /** The caller versions a node running this version natively answers, oldest first. */
  serves: ContractRoute[];
}

export interface ContractType {
  name: string;
  /** State in memory only (a reply is sent before anything is stored). */
  volatile: boolean;
  versions: ContractVersion[];
}

/** An error code, as a caller meets it. */
export interface ContractError {
  code: ErrorCode;
  /** `true`, `false`, or `"depends"` (read the reply's `retryable`). */
  retryable: boolean | 'depends';
  /** Who produces it: a node in an error reply, a client library locally, or neither (local to tools). */
  sentBy: Array<'node' | 'client'>;
}

/** A part of a schema the contract cannot express, and where. */
export interface ContractUnexpressed extends Unexpressed {
  type: string;
  version: number;
  message: string;
  part: 'request' | 'reply';
}

export interface Contract {
  contract: typeof CONTRACT_FORMAT;
  protocol: number;
  service: string;
  /** Wire constants: subjects, the shard count nodes start with unless told otherwise, the body limit. */
  wire: { subject: string; defaultShards: number; maxPayload: number };
  types: ContractType[];
  errors: ContractError[];
  /** Schema forms with no JSON Schema equivalent: at these places the schema accepts anything. */
  unexpressed: ContractUnexpressed[];
}

/** Who sends each code, as the error table of docs/protocol.md says. */
const sentBy: Readonly<Record<ErrorCode, ContractError['sentBy']>> = {
  MalformedBody: ['node'],
  UnknownType: ['node'],
  UnknownMessage: ['node'],
  InvalidPayload: ['node'],
  InvalidVersion: ['node'],
  InvalidHeader: ['node'],
  PayloadTooLarge: ['node', 'client'],
  InvalidKey: ['node', 'client'],
  ActorFailed: ['node'],
  Unavailable: ['node', 'client'],
  Timeout: ['client'],
  OutcomeUnknown: ['node', 'client'],
  Overloaded: ['node'],
  VersionUnsupported: ['node'],
  VersionRetired: ['node'],
  Disallowed: ['node'],
  Upgrading: ['node'],
  TransformFailed: ['node'],
  StateTooLarge: ['node'],
  StateUnreadable: ['node'],
  InvalidDefinition: [],
  Environment: [],
  UpgradeRejected: [],
  OperationRefused: [],
  Internal: ['node', 'client'],
};

/** The error codes, in the order of runtime/errors.ts. */
export function contractErrors(): ContractError[] {
  return Object.values(ErrorCode).map((code) => ({
    code,
    retryable: code === ErrorCode.VersionUnsupported ? 'depends' : new MoltError(code, '').retryable,
    sentBy: [...sentBy[code]],
  }));
}

/** What a tell replies: the value undefined, which superjson writes as `null` with an annotation. */
const tellReply: JsonSchema = { $schema: draft, type: 'null', 'x-superjson': 'undefined' };

function typeVersions(type: ActorType, current: number): TypeVersions {
  return { name: type.name, byVersion: new Map(type.versions.map((v) => [v.version, v])), current, retired: new Set() };
}

/** The caller versions a node at `node` serves, when it knows every version of the type. */
function routesOf(type: ActorType, node: number): ContractRoute[] {
  const types = typeVersions(type, node);
  const out: ContractRoute[] = [];
  for (const def of type.versions) {
    const route = routeFor(types, def.version);
    if (route === undefined) continue;
    const entry: ContractRoute = { version: def.version, via: route.kind, steps: route.steps };
    if (route.kind === 'future') entry.onceLoaded = true;
    for (const message of Object.keys(def.messages)) {
      const cell = cellFor(type, def.version, message, node);
      if (cell.support === 'disallowed') (entry.disallowed ??= {})[message] = cell.reason ?? '';
      if (cell.support === 'unsupported') (entry.unsupported ??= []).push(message);
    }
    out.push(entry);
  }
  return out;
}

/** Builds the contract of `service`. */
export function buildContract(service: ServiceDefinition): Contract {
  const unexpressed: ContractUnexpressed[] = [];
  const convert = (pattern: unknown, where: Omit<ContractUnexpressed, keyof Unexpressed>): JsonSchema => {
    const { schema, unexpressed: missing } = toJsonSchema(pattern);
    for (const m of missing) unexpressed.push({ ...where, ...m });
    return { $schema: draft, ...schema };
  };
  const types = service.types.map((type): ContractType => ({
    name: type.name,
    volatile: type.options.volatile === true,
    versions: type.versions.map((def): ContractVersion => {
      const messages: Record<string, ContractMessage> = {};
      for (const [name, spec] of Object.entries(def.messages as Record<string, MessageSpec>)) {
        const where = { type: type.name, version: def.version, message: name };
        const entry: ContractMessage = {
          kind: spec.kind,
          request: convert(spec.request, { ...where, part: 'request' }),
          reply: spec.kind === 'ask' ? convert(spec.reply, { ...where, part: 'reply' }) : { ...tellReply },
        };
        if (spec.nonFinite) entry.nonFinite = true;
        messages[name] = entry;
      }
      return { version: def.version, messages, serves: routesOf(type, def.version) };
    }),
  }));
  return {
    contract: CONTRACT_FORMAT,
    protocol: PROTOCOL_VERSION,
    service: service.name,
    wire: { subject: `molt.${service.name}.<type>.<shard>.<key>`, defaultShards: DEFAULT_SHARDS, maxPayload: DEFAULT_MAX_PAYLOAD },
    types,
    errors: contractErrors(),
    unexpressed,
  };
}
