/**
 * Testing helpers for your own upgrades, without NATS: run calls through the
 * upgrade layer exactly as a node does, carry the actor through the TF chain,
 * and check the paper's identity condition.
 *
 * @example
 * ```ts
 * import fc from 'fast-check';
 * import { checkIdentity } from 'molt/testing';
 * fc.assert(fc.property(fc.array(callArbitrary), (calls) =>
 *   checkIdentity({ versions: [v1, v2], from: 1, calls, readsOld, readsNew })));
 * ```
 *
 * @module
 */
import { isMoltError } from './errors.ts';
import type { AnyActorVersion } from './define/version.ts';
import { admit, initialActorState, persist, restore, routeFor, runTurn, type ActorState, type TypeVersions } from './upgrade/layer.ts';

/** One call, through the interface of `version`. */
export interface SimulatedCall {
  version: number;
  message: string;
  request?: Record<string, unknown>;
}

/** What a read answered: its reply, or the marker for a call an SO disallowed. */
export const DISALLOWED = '<disallowed>' as const;

/**
 * One actor of a type on a simulated node: calls go through the upgrade layer
 * (native, the chain of past SOs, future SOs) as they would on a real node at
 * `current`.
 */
export class SimulatedActor {
  private types: TypeVersions;
  private state: ActorState;

  constructor(versions: readonly AnyActorVersion[], current: number) {
    this.types = typeAt(versions, current);
    this.state = initialActorState(this.types);
  }

  /** The node's native version for this actor. */
  get current(): number {
    return this.types.current;
  }

  /** True if the node serves callers of `version` (natively or through SOs). */
  serves(version: number): boolean {
    return routeFor(this.types, version) !== undefined;
  }

  /** Makes one call; throws what a node would answer as an error (Disallowed, InvalidPayload, ...). */
  call(c: SimulatedCall): unknown {
    const request = c.request ?? {};
    const result = runTurn(this.types, this.state, admit(this.types, c.version, c.message, request), c.version, c.message, request);
    this.state = result.state;
    return result.reply;
  }

  /** Makes calls in order; calls an SO disallows change nothing and are skipped. */
  apply(calls: readonly SimulatedCall[]): this {
    for (const c of calls) {
      try {
        this.call(c);
      } catch (e) {
        if (!isMoltError(e, 'Disallowed')) throw e;
      }
    }
    return this;
  }

  /** Answers of `reads` (a disallowed read answers {@link DISALLOWED}); changes nothing. */
  read(reads: readonly SimulatedCall[]): unknown[] {
    const saved = this.state;
    try {
      return reads.map((c) => {
        try {
          return this.call(c);
        } catch (e) {
          if (isMoltError(e, 'Disallowed')) return DISALLOWED;
          throw e;
        }
      });
    } finally {
      this.state = saved;
    }
  }

  /** Carries the actor to `version` through the persisted form and the TF chain, as a node upgrade does. */
  upgradeTo(version: number): this {
    const next = typeAt([...this.types.byVersion.values()], version);
    this.state = restore(next, persist(this.state), 'simulated');
    this.types = next;
    return this;
  }
}

function typeAt(versions: readonly AnyActorVersion[], current: number): TypeVersions {
  const first = versions[0];
  if (!first) throw new Error('no versions given');
  return { name: first.type, byVersion: new Map(versions.map((v) => [v.version, v])), current, retired: new Set() };
}

/** Input of {@link checkIdentity}. */
export interface IdentityCheck {
  /** The type's versions (at least `from` and every version up to `to`). */
  versions: readonly AnyActorVersion[];
  /** Node version before the upgrade. */
  from: number;
  /** Node version after it (default `from + 1`). */
  to?: number;
  /** Calls made before the upgrade, through any interface the node at `from` serves. */
  calls: readonly SimulatedCall[];
  /** Read-only calls of the old interface (or interfaces: any version the node serves before and after). */
  readsOld: readonly SimulatedCall[];
  /** Read-only calls of the new interface (or interfaces). */
  readsNew: readonly SimulatedCall[];
}

/**
 * The identity condition of Ajmani, Liskov and Shrira: after `calls` on a node
 * at `from`, the upgrade to `to` is invisible — each old-interface read
 * answers the same after (through the past SO) as before (natively), and each
 * new-interface read answers the same after (natively) as before (through the
 * future SO). A read disallowed on one side has no answer to compare. Throws
 * an Error naming the first read that differs.
 *
 * With `to` several versions ahead, the actor is carried through the whole TF
 * chain at once, as when a node loads state written long ago; old readers are
 * then served through a chain of past SOs (a v1 read on a v4 node passes the
 * past SOs of v2, v3 and v4).
 */
export function checkIdentity(check: IdentityCheck): void {
  const actor = new SimulatedActor(check.versions, check.from).apply(check.calls);
  const oldBefore = actor.read(check.readsOld);
  const newBefore = actor.read(check.readsNew);
  actor.upgradeTo(check.to ?? check.from + 1);
  const oldAfter = actor.read(check.readsOld);
  const newAfter = actor.read(check.readsNew);
  const compare = (reads: readonly SimulatedCall[], before: unknown[], after: unknown[], label: string) => {
    reads.forEach((read, i) => {
      if (before[i] === DISALLOWED || after[i] === DISALLOWED) return;
      if (JSON.stringify(before[i]) !== JSON.stringify(after[i])) {
        throw new Error(`identity condition broken on the ${label} interface: ${JSON.stringify(read)} answered ${JSON.stringify(before[i])} before the upgrade and ${JSON.stringify(after[i])} after`);
      }
    });
  };
  compare(check.readsOld, oldBefore, oldAfter, 'old');
  compare(check.readsNew, newBefore, newAfter, 'new');
}

/** Input of {@link checkIdentityPath}. */
export interface IdentityPathCheck {
  /** The type's versions (every version from `from` to `to`). */
  versions: readonly AnyActorVersion[];
  /** Node version at the start. */
  from: number;
  /** Node version at the end: the node upgrades one version at a time. */
  to: number;
  /**
   * Calls made on the node at each version before it upgrades: `calls[0]` at
   * `from`, `calls[1]` at `from + 1`, …, through any interface the node serves then.
   */
  calls: readonly (readonly SimulatedCall[])[];
  /** Read-only calls, of any versions. */
  reads: readonly SimulatedCall[];
}

/**
 * The identity condition at every upgrade of a node's way from `from` to
 * `to`, one version at a time, with calls between the upgrades: around each
 * upgrade, every read of a version the node serves both before and after
 * answers the same (a read disallowed on one side has no answer to compare).
 * A resident actor, carried by each node upgrade in turn, as a live node
 * carries it. Throws an Error naming the first read that differs.
 */
export function checkIdentityPath(check: IdentityPathCheck): void {
  const actor = new SimulatedActor(check.versions, check.from);
  for (let at = check.from; at < check.to; at++) {
    actor.apply(check.calls[at - check.from] ?? []);
    const reads = check.reads.filter((r) => actor.serves(r.version));
    const before = actor.read(reads);
    actor.upgradeTo(at + 1);
    const kept = reads.map((r, i) => [r, before[i]] as const).filter(([r]) => actor.serves(r.version));
    const after = actor.read(kept.map(([r]) => r));
    kept.forEach(([read, answer], i) => {
      if (answer === DISALLOWED || after[i] === DISALLOWED) return;
      if (JSON.stringify(answer) !== JSON.stringify(after[i])) {
        throw new Error(`identity condition broken by the upgrade ${at}→${at + 1}: ${JSON.stringify(read)} answered ${JSON.stringify(answer)} before it and ${JSON.stringify(after[i])} after`);
      }
    });
  }
}
