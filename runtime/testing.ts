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
import { admit, initialActorState, persist, restore, runTurn, type ActorState, type TypeVersions } from './upgrade/layer.ts';

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
 * (native, past SO, future SOs) as they would on a real node at `current`.
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
  /** Read-only calls of the old interface. */
  readsOld: readonly SimulatedCall[];
  /** Read-only calls of the new interface. */
  readsNew: readonly SimulatedCall[];
}

/**
 * The identity condition of Ajmani, Liskov and Shrira: after `calls` on a node
 * at `from`, the upgrade to `to` is invisible — each old-interface read
 * answers the same after (through the past SO) as before (natively), and each
 * new-interface read answers the same after (natively) as before (through the
 * future SO). A read disallowed on one side has no answer to compare. Throws
 * an Error naming the first read that differs.
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
