/**
 * Idempotent calls: an actor remembers the idempotency keys of its recent
 * state-changing calls, with their replies, in its own state record — written
 * by the same compare-and-set write as the change itself. A call that comes
 * again with a remembered key is answered with the remembered reply and not
 * run again: after a node failover (the record moves with the actor), after
 * an upgrade (the remembered calls are carried beside the state, untouched by
 * transform functions), and when the first attempt's outcome was unknown.
 *
 * Only calls that changed the actor are remembered: a call that changed
 * nothing may run again without harm, and remembering it would cost a write.
 * Entries are kept for `windowMs` and at most `limit` per actor, newest kept.
 *
 * Forgetting is tracked too: the record keeps the time of the newest entry
 * dropped for the `limit` (its "floor"). A resend says how long ago its first
 * attempt was sent; if that attempt may be older than the floor (or than the
 * window), the actor cannot tell whether it was applied, and says so rather
 * than run it a second time.
 *
 * @module
 */
import { isPlainJson } from '../wire/codec.ts';

/** One remembered call, as stored in the actor's record (`ik` field). */
export interface RememberedCall {
  /** The idempotency key. */
  k: string;
  /** When it was applied (wall clock, ms). */
  at: number;
  /** Its reply. */
  r: unknown;
}

/** What an actor's record holds of its remembered calls. */
export interface RememberedRecord {
  /** The remembered calls, oldest first. */
  ik: RememberedCall[];
  /** When the newest call dropped for the limit was applied (wall clock, ms), if any was. */
  ikf?: number;
}

/** How long and how many calls an actor remembers. */
export interface RememberOptions {
  windowMs: number;
  limit: number;
}

export const DEFAULT_REMEMBER: RememberOptions = { windowMs: 10 * 60_000, limit: 64 };

/**
 * How far apart two nodes' wall clocks (plus a resend's transit) may be for the
 * forgetting check to hold: a first attempt is taken to be this much older
 * than its resend says. Small on purpose: an actor that drops keys for its
 * limit faster than `limit` per margin (640 keyed changes a second at the
 * default 64) would otherwise answer every resend "forgotten".
 */
export const CLOCK_MARGIN_MS = 100;

/**
 * Each remembered call's JSON text, made once: an actor writes all of its
 * remembered calls with every change, and encoding them again each time
 * would cost more than the change itself. Null for a call whose reply is not
 * plain JSON (the record is then encoded whole).
 */
const jsonTexts = new WeakMap<RememberedCall, string | null>();

function jsonTextOf(entry: RememberedCall): string | null {
  let text = jsonTexts.get(entry);
  if (text === undefined) {
    // The same text JSON.stringify gives the entry, fields in the same order.
    text = isPlainJson(entry.r) && isPlainJson(entry.at) ? `{"k":${JSON.stringify(entry.k)},"at":${JSON.stringify(entry.at)},"r":${JSON.stringify(entry.r)}}` : null;
    jsonTexts.set(entry, text);
  }
  return text;
}

/** The JSON text of `entries` (an array), or undefined if one of them is not plain JSON. */
export function rememberedJson(entries: readonly RememberedCall[]): string | undefined {
  let out = '[';
  for (let i = 0; i < entries.length; i++) {
    const text = jsonTextOf(entries[i]!);
    if (text === null) return undefined;
    out += i === 0 ? text : `,${text}`;
  }
  return `${out}]`;
}

/** The remembered calls of one actor: those stored, and those of a batch not yet stored. */
export class RememberedCalls {
  private stored = new Map<string, RememberedCall>();
  private staged = new Map<string, RememberedCall>();
  private floor: number | undefined;

  constructor(private readonly options: RememberOptions) {}

  /** Replaces what is remembered with what a record holds (anything malformed is ignored). */
  load(record: { ik?: unknown; ikf?: unknown } | undefined): void {
    this.stored = new Map();
    this.staged = new Map();
    this.floor = typeof record?.ikf === 'number' && Number.isFinite(record.ikf) ? record.ikf : undefined;
    const entries = record?.ik;
    if (!Array.isArray(entries)) return;
    for (const e of entries as Array<Partial<RememberedCall>>) {
      if (e && typeof e.k === 'string' && typeof e.at === 'number') this.stored.set(e.k, { k: e.k, at: e.at, r: e.r });
    }
  }

  /** The reply of a remembered (or staged) call with this key. */
  find(key: string): { reply: unknown } | undefined {
    const hit = this.staged.get(key) ?? this.stored.get(key);
    return hit ? { reply: hit.r } : undefined;
  }

  /**
   * Whether a call not remembered, first sent `resendAgeMs` ago, may have been
   * applied and forgotten since: its first attempt may predate the window, or
   * the newest call dropped for the limit.
   */
  mayHaveForgotten(resendAgeMs: number, now: number): boolean {
    if (resendAgeMs + CLOCK_MARGIN_MS >= this.options.windowMs) return true;
    return this.floor !== undefined && now - resendAgeMs - CLOCK_MARGIN_MS <= this.floor;
  }

  /** What this actor keeps, for messages. */
  describe(): string {
    return `the last ${Math.round(this.options.windowMs / 1000)} s of keyed changes, at most ${this.options.limit}`;
  }

  /** Notes a call of the batch being run that changed the actor. */
  stage(key: string, reply: unknown, now: number): void {
    this.staged.set(key, { k: key, at: now, r: reply });
  }

  get hasStaged(): boolean {
    return this.staged.size > 0;
  }

  /** Forgets the calls of a batch that was not stored (it will run again). */
  discardStaged(): void {
    if (this.staged.size > 0) this.staged = new Map();
  }

  /**
   * What to write with the batch's state: stored and staged entries without
   * those older than the window, the newest `limit` of them, and the floor
   * (raised by any entry dropped for the limit). Undefined if nothing.
   */
  toRecord(now: number): RememberedRecord | undefined {
    const cutoff = now - this.options.windowMs;
    const all: RememberedCall[] = [];
    for (const e of this.stored.values()) if (e.at >= cutoff && !this.staged.has(e.k)) all.push(e);
    for (const e of this.staged.values()) all.push(e);
    let floor = this.floor !== undefined && this.floor >= cutoff ? this.floor : undefined;
    let kept = all;
    if (all.length > this.options.limit) {
      const dropped = all.slice(0, all.length - this.options.limit);
      kept = all.slice(all.length - this.options.limit);
      for (const e of dropped) floor = Math.max(floor ?? e.at, e.at);
    }
    if (kept.length === 0 && floor === undefined) return undefined;
    return floor === undefined ? { ik: kept } : { ik: kept, ikf: floor };
  }

  /**
   * For an actor whose record is never written (volatile): the staged calls
   * join the remembered ones in place — the same entries and floor
   * {@link toRecord} then {@link commit} would give, without rebuilding them
   * on every change.
   */
  absorbStaged(now: number): void {
    if (this.staged.size === 0) return;
    for (const e of this.staged.values()) {
      this.stored.delete(e.k);
      this.stored.set(e.k, e);
    }
    this.staged = new Map();
    while (this.stored.size > this.options.limit) {
      const oldest = this.stored.values().next().value!;
      this.stored.delete(oldest.k);
      this.floor = Math.max(this.floor ?? oldest.at, oldest.at);
    }
    const cutoff = now - this.options.windowMs;
    for (const e of this.stored.values()) {
      if (e.at >= cutoff) break;
      this.stored.delete(e.k);
    }
    if (this.floor !== undefined && this.floor < cutoff) this.floor = undefined;
  }

  /** The batch's write was stored: its calls are remembered from now on. */
  commit(written: RememberedRecord | undefined): void {
    const stored = new Map<string, RememberedCall>();
    if (written) for (const e of written.ik) stored.set(e.k, e);
    this.stored = stored;
    if (this.staged.size > 0) this.staged = new Map();
    this.floor = written?.ikf;
  }
}
